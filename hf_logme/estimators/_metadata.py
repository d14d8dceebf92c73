"""Metadata statistics (kind ``"metadata"``): the candidate's parameter count, no data."""

from __future__ import annotations

from typing import Any

import torch

from ._protocol import Statistics, check_regression, register_statistics, validated_batch
from ._validation import check_int


@register_statistics
class MetadataStatistics(Statistics):
    """The number of parameters of the model the features come from.

    Args:
        regression: recorded for symmetry with the other kinds; the size baseline ignores it.
        num_parameters: the model's parameter count (an int >= 1), or None until known.

    ``update`` validates a batch and counts its rows (``n``), nothing else; ``merge`` requires
    both sides to record the same parameter count.
    """

    kind = "metadata"

    def __init__(self, *, regression: bool = False, num_parameters: int | None = None) -> None:
        self.regression = check_regression(regression)
        self.num_parameters = (
            None if num_parameters is None else check_int("num_parameters", num_parameters)
        )
        self.n = 0
        self._dim: int | None = None

    def options(self) -> dict[str, Any]:
        return {"num_parameters": self.num_parameters}

    def update(self, features: Any, labels: Any) -> MetadataStatistics:
        tensor, _ = validated_batch(
            features, labels, regression=self.regression, dim=self._dim, num_targets=None
        )
        self._dim = tensor.shape[1]
        self.n += tensor.shape[0]
        return self

    def merge(self, other: MetadataStatistics) -> MetadataStatistics:
        self._check_mergeable(other)
        self.n += other.n
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "regression": self.regression, "n": self.n, **self.options()}

    @classmethod
    def from_state_dict(
        cls, state: dict[str, Any], device: str | torch.device = "cpu"
    ) -> MetadataStatistics:
        stats = cls(regression=bool(state["regression"]), num_parameters=state["num_parameters"])
        stats.n = int(state["n"])
        return stats
