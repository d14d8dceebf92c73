"""LEEP, the Log Expected Empirical Prediction (Nguyen et al., "LEEP: A New Measure to Evaluate
Transferability of Learned Representations", ICML 2020).

With theta_i = softmax of the source model's logits for row i (over its own Z classes) and the
empirical joint P(y, z) = (1/n) sum_i [y_i = y] theta_iz,

    LEEP = (1/n) sum_i log sum_z P(y_i | z) theta_iz,   P(y | z) = P(y, z) / P(z).

Consumes ``"source_predictions"``: the joint over every row (mergeable, O(K Z)) and a row sample of
the logits (``max_rows``) for the outer average, which is exact when n <= max_rows and an unbiased
sample average otherwise; O(m K Z) to compute. Invariant to permutations of the source classes
and to a constant added to a row's logits. Classification only; a candidate without a
classification head has no source predictions.
"""

from __future__ import annotations

from typing import Any

import torch

from ._rows import DEFAULT_MAX_ROWS
from ._validation import check_int
from .base import Estimator, _single_class_error, register


class SourceEstimator(Estimator):
    """Base for estimators over the source model's predictions (:class:`SourcePredictions`)."""

    consumes = "source_predictions"

    def __init__(
        self, *, regression: bool = False, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
    ) -> None:
        super().__init__(regression=regression)
        self.max_rows = check_int("max_rows", max_rows, minimum=2)
        self.seed = check_int("seed", seed, minimum=0)

    def gather_options(self) -> dict[str, Any]:
        return {"max_rows": self.max_rows, "seed": self.seed}

    def _joints(self) -> tuple[list[Any], torch.Tensor, torch.Tensor]:
        stats = self._require_samples(2)
        classes, soft, hard = stats.joints()
        if len(classes) < 2:
            raise _single_class_error(classes[0])
        return classes, soft, hard


@register
class LEEP(SourceEstimator):
    """LEEP from the source model's logits (higher is better; a log-likelihood, <= 0).

    Args:
        regression: must be False.
        max_rows: logit rows kept for the outer average (default 10000).
        seed: selects those rows.

    Example:
        >>> import numpy as np
        >>> from hf_logme import score
        >>> logits = np.log([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7]])
        >>> round(score(logits, ["cat", "cat", "dog", "dog"], method="leep"), 4)
        -0.3426
    """

    name = "leep"

    def compute(self) -> float:
        classes, soft, _ = self._joints()
        stats = self.statistics
        conditional = soft / soft.sum(0).clamp(min=torch.finfo(soft.dtype).tiny)  # P(y | z)
        sampled_classes, codes = stats.labels()
        # The sample's codes index the classes present in it; map them to all classes.
        present = [classes.index(c) for c in sampled_classes]
        codes = torch.tensor(present, device=codes.device)[codes]
        theta = torch.softmax(stats.features.to(torch.float64), dim=1)
        likelihood = (theta * conditional[codes.to(conditional.device)]).sum(1)
        return float(likelihood.log().mean())
