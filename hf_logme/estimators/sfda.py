"""SFDA, Self-challenging Fisher Discriminant Analysis (Shao et al., "Not All Models Are Equal:
Predicting Model Transferability in a Self-challenging Fisher Space", ECCV 2022).

As in the authors' code, on the sampled rows X with class priors p_k = m_k / m:

1. Regularised Fisher space: the within-class covariance S_w = sum_k p_k cov_k (biased) shrunk
   to S = (1 - a) S_w + a (tr S_w / D) I with a = max(exp(-5 lambda), 1e-10), lambda the largest
   eigenvalue of S_w by three power-iteration steps from S_w 1 (the reference's estimate). The
   reference projects on all D generalised eigenvectors V of (S_b, S) and classifies with
   mu_k V V^T; as V^T S V = I, V V^T = S^{-1}, so the classifier is linear discriminant analysis
   with covariance S: logits_ik = x_i^T S^{-1} mu_k - 1/2 mu_k^T S^{-1} mu_k + log p_k, solved
   here by one Cholesky factorisation.
2. Self-challenge (ConfMix): with q_i = softmax(softmax(logits_i))_{y_i} (the reference applies
   softmax to the probabilities again), each row moves towards the mean of the other classes'
   means: x_i <- q_i x_i + (1 - q_i) mean_{k != y_i} mu_k.
3. Refit step 1 on the mixed rows with the same a; SFDA = (1/m) sum_i p(y_i | x_i), the mean
   probability of the true class (the reference drops the log).

Consumes ``"rows"``; O(m D K + D^3). Invariant to feature offsets. Not to rotations or scale:
the three power-iteration steps start from S_w 1, which depends on the basis, and a depends on the
scale of the eigenvalue. Classification only.
"""

from __future__ import annotations

import math

import torch

from .base import RowEstimator, register


def _fisher_logits(
    x: torch.Tensor, codes: torch.Tensor, num_classes: int, shrinkage: float | None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(logits (m, K), class means (K, D), shrinkage) of shrunk LDA on rows x."""
    m, dim = x.shape
    counts = torch.bincount(codes, minlength=num_classes).to(x.dtype)
    means = x.new_zeros(num_classes, dim).index_add_(0, codes, x) / counts[:, None]
    within = x - means[codes]
    cov = within.T @ within / m  # sum_k p_k cov_k
    trace = float(cov.diagonal().sum())
    if trace <= 1e-12 * float((x * x).sum()) / m:
        # No row differs from its class mean beyond round-off (e.g. the [CLS] embedding before
        # any layer: one vector for every row). A covariance of round-off would blow the logits
        # up to ~1e30 and lose the priors; take the identity instead.
        cov = torch.eye(dim, dtype=x.dtype, device=x.device)
        trace = float(dim)
    if shrinkage is None:
        shrinkage = max(math.exp(-5.0 * _largest_eigenvalue(cov)), 1e-10)
    shrunk = (1.0 - shrinkage) * cov
    shrunk.diagonal().add_(shrinkage * trace / dim)
    chol = torch.linalg.cholesky(shrunk)
    coef = torch.cholesky_solve(means.T, chol).T  # (K, D): mu_k^T S^{-1}
    intercept = -0.5 * (coef * means).sum(1) + (counts / m).log()
    return x @ coef.T + intercept, means, shrinkage


def _largest_eigenvalue(cov: torch.Tensor) -> float:
    """The reference's estimate of S_w's largest eigenvalue: three power-iteration steps from
    S_w 1 (0 when that start vector is 0, e.g. features whose deviations sum to zero)."""
    v = cov.sum(1)
    for _ in range(3):
        u = cov @ v
        norm = torch.linalg.vector_norm(u)
        if not norm > 0:
            return 0.0
        u = u / norm
        v = cov @ u
        v = v / torch.linalg.vector_norm(v)
    return float(v @ cov @ u)


@register
class SFDA(RowEstimator):
    """SFDA score of a row sample (higher is better, in (0, 1]).

    Args:
        regression: must be False.
        max_rows: rows sampled (default 10000).
        seed: selects the sample.
    """

    name = "sfda"

    def compute(self) -> float:
        x, codes, classes = self._class_rows()
        k = len(classes)
        logits, means, shrinkage = _fisher_logits(x, codes, k, None)
        confidence = torch.softmax(torch.softmax(logits, dim=1), dim=1)
        q = confidence.gather(1, codes[:, None])  # (m, 1)
        others = (means.sum(0) - means) / (k - 1)  # mean of the other classes' means
        mixed = q * x + (1.0 - q) * others[codes]
        logits, _, _ = _fisher_logits(mixed, codes, k, shrinkage)
        return float(torch.softmax(logits, dim=1).gather(1, codes[:, None]).mean())
