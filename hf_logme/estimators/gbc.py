"""GBC, the Gaussian Bhattacharyya Coefficient (Pandy et al., "Transferability Estimation using
Bhattacharyya Class Separability", CVPR 2022).

Each class k is a Gaussian with mean mu_k and per-dimension variance s_k (biased, floored at
``variance_floor`` = 1e-4 as in the authors' code); with s = (s_i + s_j) / 2 the Bhattacharyya
distance of two classes is

    D_B(i, j) = 1/8 sum_d (mu_i - mu_j)_d^2 / s_d + 1/2 [ sum_d log s_d - 1/2 sum_d log s_i,d
                                                          - 1/2 sum_d log s_j,d ],

and GBC = - sum_{i != j} exp(-D_B(i, j)) (<= 0; higher means better separated classes).
``gaussian_type="spherical"`` replaces each s_k by its mean over dimensions, and, as in the
reference code, its log terms are then single scalars (not multiplied by D).

Consumes ``"class_statistics"``: per-class counts, means and variances in O(K D) memory, streamed
and mergeable; computing is O(K^2 D). Deliberately no PCA first: a PCA basis is only known once
every row is seen, and per-class variances in it would need per-class D x D scatter (K=100,
D=1024: 800 MB). Invariant to permutations of the feature dimensions and to feature offsets; the
variance floor makes it scale-dependent. Classification only.
"""

from __future__ import annotations

import torch

from ._validation import check_choice, check_float
from .base import Estimator, _single_class_error, register


@register
class GBC(Estimator):
    """Gaussian Bhattacharyya Coefficient over streamed per-class statistics.

    Args:
        regression: must be False.
        gaussian_type: ``"diagonal"`` (default) or ``"spherical"`` class covariances.
        variance_floor: per-dimension variances below it are raised to it (default 1e-4, the
            authors' value, which assumes features of order 1).
    """

    name = "gbc"
    consumes = "class_statistics"

    def __init__(
        self,
        *,
        regression: bool = False,
        gaussian_type: str = "diagonal",
        variance_floor: float = 1e-4,
    ) -> None:
        super().__init__(regression=regression)
        self.gaussian_type = check_choice("gaussian_type", gaussian_type, ("diagonal", "spherical"))
        self.variance_floor = check_float("variance_floor", variance_floor)

    def get_params(self) -> dict:
        return {
            **super().get_params(),
            "gaussian_type": self.gaussian_type,
            "variance_floor": self.variance_floor,
        }

    def compute(self) -> float:
        stats = self._require_samples(2)
        classes, counts, means, sq_dev = stats.sorted()
        if len(classes) < 2:
            raise _single_class_error(classes[0])
        variances = (sq_dev / counts[:, None]).clamp(min=self.variance_floor)
        if self.gaussian_type == "spherical":
            variances = variances.mean(1, keepdim=True)
        log_var = variances.log().sum(1)  # (K,)
        total = 0.0
        for i in range(len(classes)):  # one row of the K x K distance matrix at a time: O(K D)
            avg = 0.5 * (variances[i] + variances)  # (K, D) or (K, 1)
            diff = means[i] - means
            distance = (diff.square() / avg).sum(1) / 8 + 0.5 * (
                avg.log().sum(1) - 0.5 * log_var[i] - 0.5 * log_var
            )
            coefficient = torch.exp(-distance)
            coefficient[i] = 0.0
            total += float(coefficient.sum())
        return -total
