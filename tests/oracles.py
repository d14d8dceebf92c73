"""Independent formulations of LogME for the tests.

The package computes LogME from the eigendecomposition of F^T F and a one-dimensional profile. The
oracle here shares none of that: it evaluates the n-dimensional Gaussian marginal likelihood
``y ~ N(0, F F^T / alpha + I / beta)`` with dense matrices (slogdet and solve) and maximises it
over (log alpha, log 1/beta) with Nelder-Mead from several starts, plus the noise-free boundary
``1/beta = 0`` when F F^T is invertible (n <= D). Fine for n up to a few hundred.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

_BOX = 60.0  # |log alpha|, |log 1/beta| beyond this are outside any test's optimum


def dense_log_evidence(features: np.ndarray, y: np.ndarray, log_a: float, noise: float) -> float:
    """log N(y; 0, exp(log_a) F F^T + noise I), where exp(log_a) = 1/alpha and noise = 1/beta."""
    n = len(y)
    cov = np.exp(log_a) * features @ features.T + noise * np.eye(n)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return -np.inf
    return -0.5 * (n * np.log(2 * np.pi) + logdet + y @ np.linalg.solve(cov, y))


def _maximise(fun, starts) -> float:
    best = -np.inf
    for x0 in starts:
        res = minimize(
            lambda p: np.inf if np.max(np.abs(p)) > _BOX else -fun(p),
            x0,
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 40000, "maxfev": 40000},
        )
        best = max(best, -res.fun)
    return best


def oracle_target(features: np.ndarray, y: np.ndarray) -> float:
    """max over (alpha, beta) of the log evidence of one target, divided by n."""
    features = np.asarray(features, dtype=np.float64)
    n = len(y)
    starts = [(0, 0), (-6, 0), (6, 0), (0, -6), (0, 6), (-12, -12), (12, -12)]
    best = _maximise(lambda p: dense_log_evidence(features, y, p[0], np.exp(p[1])), starts)
    if np.linalg.matrix_rank(features) == n:  # the beta -> inf boundary is finite
        boundary = _maximise(
            lambda p: dense_log_evidence(features, y, p[0], 0.0), [(0,), (-10,), (10,)]
        )
        best = max(best, boundary)
    # The profile in alpha alone (beta free) at the alpha -> inf boundary: y ~ N(0, noise I).
    best = max(best, -0.5 * n * (np.log(2 * np.pi * (y @ y) / n) + 1))
    return best / n


def oracle_logme(features: np.ndarray, targets: np.ndarray) -> float:
    """Mean over target columns of ``oracle_target``."""
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim == 1:
        targets = targets[:, None]
    return float(np.mean([oracle_target(features, t) for t in targets.T]))


def one_hot(labels: np.ndarray) -> np.ndarray:
    classes = np.unique(labels)
    return (np.asarray(labels)[:, None] == classes[None, :]).astype(np.float64)


def centre_by_contrasts(features: np.ndarray, targets: np.ndarray):
    """Project onto the n-1 contrasts orthogonal to the all-ones vector: explicit centring.

    The evidence of these n-1 "samples" is the evidence with a flat-prior intercept integrated out.
    """
    n = features.shape[0]
    basis = np.linalg.svd(np.eye(n) - 1.0 / n)[0][:, : n - 1]
    return basis.T @ np.asarray(features, np.float64), basis.T @ np.asarray(targets, np.float64)
