"""NLEEP, Gaussian-mixture LEEP (Li et al., "Ranking Neural Checkpoints", CVPR 2021).

LEEP with the source classifier replaced by a Gaussian mixture fitted to the features: the rows are
projected by PCA onto the fewest axes keeping ``variance`` (80%) of the variance, a full-covariance
GMM with ``component_ratio * K`` components gives posteriors p(z | x_i), and with the empirical
joint P(y, z) = (1/m) sum_i [y_i = y] p(z | x_i),

    NLEEP = (1/m) sum_i log sum_z P(y_i | z) p(z | x_i).

(The variant in the SFDA authors' code drops the log; this is the paper's definition.) Consumes
``"rows"``; costs O(m d^2 C) per EM iteration (d kept axes, C components, at most 100 iterations).
Invariant to feature scale and rotations up to the GMM's ``reg_covar``. Deterministic for a seed
(k-means++ start). Classification only.
"""

from __future__ import annotations

from ._gmm import gmm_posteriors, pca
from ._rows import DEFAULT_MAX_ROWS
from ._validation import check_float, check_int
from .base import RowEstimator, register


@register
class NLEEP(RowEstimator):
    """Gaussian-mixture LEEP (higher is better; a log-likelihood, so <= 0).

    Args:
        regression: must be False.
        component_ratio: mixture components per class (an int >= 1, default 5, as in the paper).
        variance: fraction of variance the PCA keeps (in (0, 1], default 0.8).
        max_rows: rows sampled (default 10000).
        seed: selects the sample and the k-means++ start.
    """

    name = "nleep"

    def __init__(
        self,
        *,
        regression: bool = False,
        component_ratio: int = 5,
        variance: float = 0.8,
        max_rows: int = DEFAULT_MAX_ROWS,
        seed: int = 0,
    ) -> None:
        super().__init__(regression=regression, max_rows=max_rows, seed=seed)
        self.component_ratio = check_int("component_ratio", component_ratio)
        self.variance = check_float("variance", variance)
        if self.variance > 1:
            raise ValueError(f"variance must be in (0, 1]; got {variance}.")

    def get_params(self) -> dict:
        return {
            **super().get_params(),
            "component_ratio": self.component_ratio,
            "variance": self.variance,
        }

    def compute(self) -> float:
        features, codes, classes = self._class_rows()
        components = self.component_ratio * len(classes)
        if components > features.shape[0]:
            raise ValueError(
                f"NLEEP fits {components} mixture components (component_ratio x classes) but the "
                f"sample has {features.shape[0]} rows; lower component_ratio or pass more rows."
            )
        reduced = pca(features, self.variance if self.variance < 1 else features.shape[1])
        posteriors = gmm_posteriors(reduced, components, seed=self.seed)
        return leep_from_posteriors(posteriors, codes, len(classes))


def leep_from_posteriors(posteriors, codes, num_classes: int) -> float:
    """(1/m) sum_i log sum_z P(y_i | z) p(z | x_i) for posteriors (m, Z) and codes (m,)."""
    joint = posteriors.new_zeros(num_classes, posteriors.shape[1]).index_add_(0, codes, posteriors)
    conditional = joint / joint.sum(0).clamp(min=1e-300)  # P(y | z)
    likelihood = (posteriors * conditional[codes]).sum(1)
    return float(likelihood.log().mean())
