"""Shrinkage (regularised) H-score (Ibrahim et al., "Newer is not always better: Rethinking
transferability metrics, their peculiarities, stability and performance", ICLR 2022).

The H-score with the feature covariance replaced by its Ledoit-Wolf shrinkage estimate:

    H_a = tr( S_a^{-1} (1 - a) cov(E[f | y]) ),   S_a = (1 - a) S + a (tr S / D) I,

S the biased (1/n) covariance, cov(E[f | y]) = B / (n - 1) as in the authors' code (B the
between-class scatter), and a the Ledoit-Wolf shrinkage (scikit-learn's ``ledoit_wolf_shrinkage``
of the centred features), which needs, besides the Gram statistics, sum_i ||f_i - m||^4; that is
expanded exactly from the fourth-moment sums ``GramStatistics`` gathers. Consumes ``"gram"``:
O(n D^2) to gather (shared with LogME), O(D^3 + K D^2) to compute. Invariant to feature scale,
rotations and offsets (S_a, B and a all transform together). Classification only.
"""

from __future__ import annotations

import torch

from ._statistics import GramStatistics
from .base import GramEstimator, register
from .hscore import centred_spectrum, class_deviations


def ledoit_wolf_shrinkage(stats: GramStatistics, sigma: torch.Tensor) -> float:
    """Ledoit-Wolf shrinkage of the centred features, from sums (``sigma``: eigenvalues of G_c)."""
    n, dim = float(stats.n), sigma.shape[0]
    if dim == 1:
        return 0.0
    mean = stats.feature_sum / n
    mean_sq = float(mean.dot(mean))
    # sum_i ||f_i - m||^4 with c_i = a_i - 2 b_i + |m|^2, a_i = ||f_i||^2, b_i = f_i . m
    sum_a = float(stats.gram.diagonal().sum())
    sum_b2 = float(mean @ stats.gram @ mean)
    sum_ab = float(stats.norm2_feature_sum.dot(mean))
    beta_raw = (
        float(stats.norm4_sum)
        + 4.0 * sum_b2
        + n * mean_sq**2
        - 4.0 * sum_ab
        + 2.0 * mean_sq * sum_a
        - 4.0 * mean_sq * n * mean_sq
    )
    cov_eigs = sigma.clamp(min=0) / n
    trace = float(cov_eigs.sum())
    mu = trace / dim
    delta_raw = float(cov_eigs.square().sum())  # ||S||_F^2
    beta = (beta_raw / n - delta_raw) / (dim * n)
    delta = (delta_raw - 2.0 * mu * trace + dim * mu**2) / dim
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


@register
class ShrinkageHScore(GramEstimator):
    """Streaming shrinkage H-score (higher predicts better transfer).

    Args:
        regression: must be False.

    Raises:
        ValueError: from ``compute()`` on statistics saved before the fourth-moment sums were
            gathered (gather them again).
    """

    name = "shrinkage_hscore"

    def compute(self) -> float:
        stats = self._require_data()
        if not stats.has_fourth_moments:
            raise ValueError(
                "shrinkage_hscore needs the fourth-moment sums, which these statistics (saved by "
                "an older version) lack; gather them again (e.g. rank with --no-cache)."
            )
        sigma, vecs = centred_spectrum(stats)
        alpha = ledoit_wolf_shrinkage(stats, sigma)
        n = stats.n
        shrunk = (1.0 - alpha) * sigma.clamp(min=0) / n + alpha * float(
            sigma.clamp(min=0).sum()
        ) / (n * sigma.shape[0])
        keep = shrunk > 0
        projected = class_deviations(stats) @ vecs[:, keep]
        between = (projected.square() / shrunk[keep]).sum() / (n - 1)
        return float((1.0 - alpha) * between)
