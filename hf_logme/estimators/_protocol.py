"""The statistics protocol: what one pass over a candidate's features gathers for its estimators.

Each kind of statistics (``STATISTICS[kind]``) is a mergeable accumulator with the same verbs:

    stats = Kind(regression=False, **gather_options)   # empty
    stats.update(features, labels)                      # fold a batch in (validated here)
    stats.merge(other)                                  # as if other's batches had come here
    stats.n                                             # rows seen
    stats.options()                                     # gather options (cache keys, merging)
    state = stats.state_dict()                          # plain tensors / lists, torch.save-able
    Kind.from_state_dict(state, device="cpu")           # or load_statistics(state)

so a ranking gathers one object per (kind, gather options) per layer and feeds every estimator that
consumes it (``Estimator.from_statistics``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from ._validation import as_class_labels, as_feature_tensor, as_regression_targets, check_bool

S = TypeVar("S", bound="Statistics")

# Every kind an estimator may consume (``Estimator.consumes``).
KINDS = ("gram", "class_statistics", "rows", "source_predictions", "metadata")

STATISTICS: dict[str, type[Statistics]] = {}


def register_statistics(cls: type[S]) -> type[S]:
    """Class decorator: make a statistics class the one for ``cls.kind``."""
    if cls.kind not in KINDS:
        raise ValueError(f"Unknown statistics kind {cls.kind!r}; expected one of {KINDS}.")
    STATISTICS[cls.kind] = cls
    return cls


def load_statistics(state: dict[str, Any], device: str | torch.device = "cpu") -> Statistics:
    """Rebuild any statistics from its ``state_dict()`` (states without a kind are Gram ones)."""
    kind = state.get("kind", "gram")
    if kind not in STATISTICS:
        raise ValueError(f"state has unknown statistics kind {kind!r}; expected one of {KINDS}.")
    return STATISTICS[kind].from_state_dict(state, device)


class Statistics(ABC):
    """Base of every statistics kind (see the module docstring for the protocol).

    Subclasses set ``kind``, accept ``regression`` and their gather options as keyword-only
    constructor arguments, and implement ``update``, ``merge``, ``options``, ``state_dict`` and
    ``from_state_dict``.
    """

    kind: ClassVar[str]
    regression: bool
    n: int

    @abstractmethod
    def update(self: S, features: Any, labels: Any) -> S:
        """Fold a batch of features (n_samples, n_features) and labels in; returns self."""

    @abstractmethod
    def merge(self: S, other: S) -> S:
        """Fold another accumulator of the same kind and options in; returns self."""

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """The gather options (constructor keywords other than ``regression``)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, numbers and lists, with ``kind``, ``regression`` and ``n``."""

    @classmethod
    @abstractmethod
    def from_state_dict(
        cls: type[S], state: dict[str, Any], device: str | torch.device = "cpu"
    ) -> S:
        """Rebuild statistics saved with ``state_dict()``, placed on ``device``."""

    def _check_mergeable(self, other: Statistics) -> None:
        if type(other) is not type(self):
            raise TypeError(
                f"Can only merge {type(self).__name__} into {type(self).__name__}; "
                f"got {type(other).__name__}."
            )
        if other.regression != self.regression or other.options() != self.options():
            raise ValueError(
                f"Cannot merge {type(self).__name__} gathered with regression={other.regression}, "
                f"{other.options()} into one with regression={self.regression}, {self.options()}; "
                f"gather both with the same options."
            )


def check_regression(regression: Any) -> bool:
    return check_bool("regression", regression)


def validated_batch(
    features: Any, labels: Any, *, regression: bool, dim: int | None, num_targets: int | None
) -> tuple[torch.Tensor, np.ndarray | torch.Tensor]:
    """Check one batch at the boundary: features (n, D) and labels (classes) or targets (n, T).

    ``dim`` and ``num_targets`` are those of earlier batches (None before the first).

    Returns:
        The feature tensor (on its own device, its own float dtype) and either a 1-D numpy array
        of class labels or a float64 (n, T) target tensor.
    """
    tensor = as_feature_tensor(features)
    if dim is not None and tensor.shape[1] != dim:
        raise ValueError(
            f"features has {tensor.shape[1]} columns but earlier batches had {dim}; "
            f"every batch must come from the same model, layer and pooling."
        )
    if not regression:
        return tensor, as_class_labels(labels, tensor.shape[0])
    targets = as_regression_targets(labels, tensor.shape[0])
    if num_targets is not None and targets.shape[1] != num_targets:
        raise ValueError(
            f"labels has {targets.shape[1]} target columns but earlier batches had "
            f"{num_targets}; every batch must carry the same targets."
        )
    return tensor, targets
