"""H-score (Bao et al., "An Information-Theoretic Approach to Transferability in Task Transfer
Learning", ICIP 2019).

    H(f) = tr( cov(f)^+  cov(E[f | y]) )

with cov(f) the covariance of the features and cov(E[f | y]) that of each row's class mean (the
between-class covariance). Both come from the Gram statistics: with centred Gram matrix
G_c = F^T F - n m m^T and class means m_k of n_k rows,

    H = sum_k n_k (m_k - m)^T G_c^+ (m_k - m),

the 1/(n-1) normalisations of the reference code cancelling. G_c^+ is the pseudo-inverse over the
eigenvalues above float64 round-off (relative to the largest). Consumes ``"gram"``: O(n D^2) to
gather (shared with LogME), O(D^3 + K D^2) to compute. Invariant to any invertible affine map of
the features (scale, rotation, offset) while G_c has full rank. Classification only: E[f | y] needs
discrete labels.
"""

from __future__ import annotations

import torch

from ._statistics import GramStatistics
from .base import GramEstimator, register

_EPS = torch.finfo(torch.float64).eps


def class_deviations(stats: GramStatistics) -> torch.Tensor:
    """(K, D) rows sqrt(n_k) (m_k - m): B = dev^T dev is the between-class scatter."""
    counts = stats.target_sum
    mean = stats.feature_sum / stats.n
    return (stats.cross / counts[:, None] - mean) * counts.sqrt()[:, None]


def centred_spectrum(stats: GramStatistics) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of the centred Gram matrix G_c."""
    gram, _, _ = stats.centred()
    if gram.device.type == "cpu":  # numpy's LAPACK shares the BLAS threads (see logme._eigh)
        import numpy as np

        sigma, vecs = np.linalg.eigh(gram.numpy())
        return torch.from_numpy(sigma), torch.from_numpy(vecs)
    return torch.linalg.eigh(gram)


def significant(sigma: torch.Tensor, n: int) -> torch.Tensor:
    """Mask of eigenvalues above float64 round-off of the largest."""
    return sigma > max(n, sigma.shape[0]) * _EPS * float(sigma[-1].clamp(min=0))


@register
class HScore(GramEstimator):
    """Streaming H-score (higher predicts better transfer).

    With no more rows than features plus one, the pseudo-inverse makes every feature matrix
    score K - 1: the score saturates, and rankings give it no error bars there.

    Args:
        regression: must be False (H-score is defined for class labels).

    Example:
        >>> import numpy as np
        >>> from hf_logme import score
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 300)
        >>> f = rng.normal(size=(300, 8)) + 2.0 * np.eye(3, 8)[y]
        >>> round(score(f, y, method="hscore"), 4)
        1.1446
    """

    name = "hscore"
    saturates_below_dim = True

    def compute(self) -> float:
        stats = self._require_data()
        sigma, vecs = centred_spectrum(stats)
        keep = significant(sigma, stats.n)
        projected = class_deviations(stats) @ vecs[:, keep]  # (K, r)
        return float((projected.square() / sigma[keep]).sum())
