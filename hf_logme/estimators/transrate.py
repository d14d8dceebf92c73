"""TransRate (Huang et al., "Frustratingly Easy Transferability Estimation", ICML 2022).

The coding-rate gain of the features given the labels, on globally centred rows Z (m x D):

    R(Z) = 1/2 log det(I + Z^T Z / (m eps)),
    TransRate = R(Z) - (1/K) sum_k R(Z_k),   Z_k the rows of class k (with m_k in place of m),

``eps`` = 1e-4 as in the authors' code (which also averages the class terms with weight 1/K, not
m_k / m). Each log-determinant is taken on the smaller side (D x D or m_k x m_k, the same value by
Sylvester's identity) through a Cholesky factorisation. Consumes ``"rows"`` (per-class D x D
covariances would not fit in streamed statistics: K=100, D=1024 is 800 MB); O(m D min(m, D) +
K min(m_k, D)^3). Invariant to rotations and feature offsets; ``eps`` is absolute, so it depends
on the feature scale. Classification only.
"""

from __future__ import annotations

import torch

from ._rows import DEFAULT_MAX_ROWS
from ._validation import check_float
from .base import RowEstimator, register


def coding_rate(z: torch.Tensor, eps: float) -> torch.Tensor:
    """1/2 log det(I + z^T z / (m eps)) for rows z (m, D), on the smaller side."""
    m, dim = z.shape
    gram = z.T @ z if dim <= m else z @ z.T
    gram = gram / (m * eps)
    gram.diagonal().add_(1.0)
    return torch.linalg.cholesky(gram).diagonal().log().sum()


@register
class TransRate(RowEstimator):
    """TransRate of a row sample (higher is better).

    Args:
        regression: must be False.
        eps: the distortion of the coding rate (default 1e-4).
        max_rows: rows sampled (default 10000).
        seed: selects the sample.
    """

    name = "transrate"

    def __init__(
        self,
        *,
        regression: bool = False,
        eps: float = 1e-4,
        max_rows: int = DEFAULT_MAX_ROWS,
        seed: int = 0,
    ) -> None:
        super().__init__(regression=regression, max_rows=max_rows, seed=seed)
        self.eps = check_float("eps", eps)

    def get_params(self) -> dict:
        return {**super().get_params(), "eps": self.eps}

    def compute(self) -> float:
        features, codes, classes = self._class_rows()
        z = features - features.mean(0)
        total = coding_rate(z, self.eps)
        within = sum(coding_rate(z[codes == k], self.eps) for k in range(len(classes)))
        return float(total - within / len(classes))
