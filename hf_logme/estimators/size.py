"""``num_parameters``: the model-size baseline (bigger models often transfer better).

Score = the candidate's parameter count. Consumes ``"metadata"`` only: no features, O(1). It is
the baseline a transferability estimator has to beat on a model zoo; it is meaningless for
comparing layers of one model (every layer gets the same score).
"""

from __future__ import annotations

from typing import Any

from ._metadata import MetadataStatistics
from .base import Estimator, register


@register
class NumParameters(Estimator):
    """The size baseline: ``compute()`` returns the parameter count as a float.

    Args:
        regression: accepted and ignored (size does not depend on the task).
        num_parameters: the model's parameter count; a ranking fills it in from the checkpoint.

    Example:
        >>> NumParameters(num_parameters=4_400_000).compute()
        4400000.0
    """

    name = "num_parameters"
    consumes = "metadata"
    supports_regression = True

    def __init__(self, *, regression: bool = False, num_parameters: int | None = None) -> None:
        super().__init__(regression=regression)
        self._statistics = MetadataStatistics(
            regression=self.regression, num_parameters=num_parameters
        )

    def gather_options(self) -> dict[str, Any]:
        return self.statistics.options()

    def reset(self) -> None:
        """Forget the rows seen; the parameter count stays."""
        self._statistics = MetadataStatistics(
            regression=self.regression, num_parameters=self.statistics.num_parameters
        )

    def compute(self) -> float:
        count = self.statistics.num_parameters
        if count is None:
            raise ValueError(
                "num_parameters is unknown: pass num_parameters=<the model's parameter count> "
                "(e.g. sum(p.numel() for p in model.parameters()))."
            )
        return float(count)
