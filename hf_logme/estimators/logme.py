"""LogME: the log of the maximum Bayesian evidence of the labels given the features.

Model (You et al., ICML 2021; JMLR 2022): for each target column y, ``y = F w + e`` with
``w ~ N(0, I / alpha)`` and ``e ~ N(0, I / beta)``. LogME is ``max over (alpha, beta) of
log p(y | F, alpha, beta) / n``, averaged over targets (one-hot columns for classification).

How it is computed here, exactly and from streaming statistics only:

1. One symmetric eigendecomposition ``F^T F = V diag(sigma) V^T``; eigenvalues below round-off
   (relative to the largest) are exact zeros of a rank-deficient F and are dropped, and at most
   ``n`` are kept, the rank of F.
2. In the eigenbasis, target k has energies ``c_ik = (V^T F^T y_k)_i^2 / sigma_i`` along the
   column space of F and a residual ``R_k = y_k^T y_k - sum_i c_ik`` orthogonal to it (exactly 0
   when F has rank n, i.e. n <= D).
3. The n-dimensional view ``y ~ N(0, F F^T / alpha + I / beta)`` gives, with ``lambda = beta /
   alpha`` and the optimal ``beta`` in closed form, a one-dimensional profile

       g(lambda) = -n/2 log Q(lambda) - 1/2 sum_i log(1 + sigma_i lambda),
       Q(lambda) = R + sum_i c_i / (1 + sigma_i lambda),

   so the evidence is ``g + n/2 (log n - 1 - log 2 pi)`` at ``beta = n / Q``. Its supremum over
   ``lambda in [0, inf]`` is found for all targets at once: a grid over ``log lambda`` covering
   every scale where g can change (one matrix product), golden-section refinement of the best
   bracket to 1e-9, and the two limits: ``lambda -> 0`` (features carry no signal) and
   ``lambda -> inf`` (``beta -> inf``; finite only when F has rank n, which is where the evidence
   of the n <= D case may peak).

The profile depends on the features only through the eigenvalues, so the score is invariant to
feature scale, rotations and appended zero columns, and no iteration cap or epsilon can change it.

Small samples (``prior=nu``). For n <= D the supremum is the noise-free limit, and with a
rank-deficient F (duplicate rows) it is ``+inf``. A weak conjugate prior on the noise precision,
``beta ~ Gamma(nu / 2, nu s^2 / 2)`` with ``s^2 = y^T y / n`` (the no-signal noise level, so scale
invariance is kept), is worth ``nu`` pseudo-observations that the features cannot explain: the
maximum a posteriori (alpha, beta) maximises the same profile with ``n -> n + nu`` and
``R -> R + nu s^2``, which has ``R > 0`` and so always an interior maximum or the no-signal limit.
The score is the log evidence at that (alpha, beta), divided by n: finite, never above the exact
LogME, continuous in the data (no jump at n = D), and within O(1 / n^2) of the exact value as n
grows. No prior is put on alpha, so the no-signal limit (alpha -> inf) stays exact and detectable
(``LogMEResult.no_signal``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ._statistics import GramStatistics
from ._validation import as_feature_tensor, check_bool
from .base import GramEstimator, register

_GRID_STEP = 0.25  # spacing of the log-lambda grid; g varies on a scale of ~1 in log lambda
_GRID_MARGIN = 12.0  # beyond this many e-folds past the spectrum, g is monotone
_NEWTON_TOL = 1e-12  # relative step size in log lambda at which Newton has converged
# Bisection alone shrinks the bracket below the tolerance in ~40 steps, so the cap is never reached.
_MAX_NEWTON = 100
_EPS = torch.finfo(torch.float64).eps
# The prior rankings use: pseudo-observations of the noise precision's Gamma prior, chosen on
# real features by benchmarks/study_small_samples.py (README, "Small samples").
RANKING_PRIOR = 2.0
#: The LogME every user-facing entry point scores with unless told otherwise (rank_models,
#: select_checkpoint, LogMECallback, ``hf-logme score``, the evaluate metric): an intercept
#: and the small-sample prior. ``logme()`` and ``LogME()`` themselves stay the exact maximum
#: evidence of the paper's model, which ``PAPER_OPTIONS`` (``--paper``) names.
DEFAULT_OPTIONS: dict[str, Any] = {"intercept": True, "prior": RANKING_PRIOR}
PAPER_OPTIONS: dict[str, Any] = {"intercept": False, "prior": None}


@dataclass
class LogMEResult:
    """Everything LogME determines at the maximum of the evidence.

    Attributes:
        score: the LogME score, mean of ``scores``; higher predicts better transfer.
        scores: (n_targets,) per-target log evidence divided by the degrees of freedom.
        targets: the class label (classification, in sorted order) or the column index
            (regression) of each target.
        alpha: (n_targets,) prior precision of the weights at the maximum (``inf`` when the
            evidence peaks with the features ignored).
        beta: (n_targets,) noise precision at the maximum (``inf`` when the supremum is the
            noise-free limit, possible only when n <= rank of the features).
        weights: (n_features, n_targets) posterior mean of the weights.
        bias: (n_targets,) the intercept (posterior mean; zeros when ``intercept=False``).
        num_samples: number of samples seen.
        rank: numerical rank of the (centred, with ``intercept=True``) feature matrix.
        no_signal_targets: (n_targets,) bool, True where the maximum is the no-signal limit
            (alpha = inf: the features are ignored and the score is the same for any features).
        no_signal: every target is at that limit: the score says nothing about the features
            (common with a few dozen rows); a ranking should report it rather than a tie.
    """

    score: float
    scores: torch.Tensor
    targets: list[Hashable]
    alpha: torch.Tensor
    beta: torch.Tensor
    weights: torch.Tensor
    bias: torch.Tensor
    num_samples: int
    rank: int
    no_signal_targets: torch.Tensor
    no_signal: bool


@register
class LogME(GramEstimator):
    """Streaming LogME: ``update`` batches, ``merge`` shards, ``compute`` the score.

    Args:
        regression: False (default) for class labels, scored on their one-hot columns. True for
            float targets of shape (n,) or (n, n_targets); multi-label tasks pass their 0/1
            label matrix with ``regression=True``.
        intercept: False (default) is the paper's model. True integrates out an unpenalised
            intercept per target under a flat prior: equivalently, features and targets are
            centred and the evidence has n - 1 degrees of freedom. Use it when features share a
            large common offset (common for mean-pooled transformer states), which otherwise
            counts against a model.
        prior: None (default) is the exact maximum evidence of the paper; for n <= D it is the
            noise-free supremum, ``+inf`` when rows repeat. A positive float ``nu`` maximises
            the posterior of (alpha, beta) under a weak Gamma prior on the noise precision worth
            ``nu`` pseudo-observations at the no-signal noise level, and scores the evidence
            there: finite for every n and every feature matrix, continuous across n = D, and
            converging to the exact value as n grows. ``RANKING_PRIOR`` is the value for
            rankings (see the module docstring and the README's "Small samples").

    Memory is O(D^2 + D K) whatever the number of samples. Results do not depend on batch sizes,
    batch order or device beyond float64 round-off.

    Example:
        >>> import numpy as np
        >>> from hf_logme import LogME
        >>> rng = np.random.default_rng(0)
        >>> labels = rng.integers(0, 3, 500)
        >>> features = rng.normal(size=(500, 16)) + 2.0 * np.eye(3, 16)[labels]
        >>> metric = LogME()
        >>> for rows in np.array_split(np.arange(500), 4):
        ...     _ = metric.update(features[rows], labels[rows])
        >>> round(metric.compute(), 4)
        -0.5073
        >>> metric.result.targets
        [0, 1, 2]
    """

    name = "logme"
    supports_regression = True

    def __init__(
        self, *, regression: bool = False, intercept: bool = False, prior: float | None = None
    ) -> None:
        super().__init__(regression=regression)
        self.intercept = check_bool("intercept", intercept)
        self.prior = _check_prior(prior)
        self._result: LogMEResult | None = None

    def get_params(self) -> dict[str, Any]:
        return {"regression": self.regression, "intercept": self.intercept, "prior": self.prior}

    def _changed(self) -> None:
        self._result = None

    def compute(self) -> float:
        """The LogME score of everything seen so far (higher predicts better transfer)."""
        return self.result.score

    @property
    def result(self) -> LogMEResult:
        """The full :class:`LogMEResult`; computed on first access after a change."""
        if self._result is None:
            self._result = _solve(self._require_data(), self.intercept, self.prior)
        return self._result

    def predict(self, features: Any) -> torch.Tensor | np.ndarray:
        """Posterior-mean predictions of the Bayesian linear model for new features.

        Returns:
            Regression: a float64 tensor (n_samples, n_targets). Classification: a numpy array of
            class labels, the target with the largest predicted one-hot value.
        """
        result = self.result
        tensor = as_feature_tensor(features).to(result.weights.device, torch.float64)
        if tensor.shape[1] != result.weights.shape[0]:
            raise ValueError(
                f"features has {tensor.shape[1]} columns; the model was fitted on "
                f"{result.weights.shape[0]}."
            )
        outputs = tensor @ result.weights + result.bias
        if self.regression:
            return outputs
        labels = np.empty(len(result.targets), dtype=object)
        labels[:] = result.targets
        return labels[outputs.argmax(dim=1).cpu().numpy()]


def logme(
    features: Any,
    labels: Any,
    *,
    regression: bool = False,
    intercept: bool = False,
    prior: float | None = None,
) -> float:
    """LogME of features for labels, in one call: ``LogME(...).update(features, labels).compute()``.

    Args:
        features: (n_samples, n_features) array or tensor, any float dtype, any device.
        labels: (n_samples,) class labels of any hashable kind, or with ``regression=True`` float
            targets (n_samples,) or (n_samples, n_targets) (a 0/1 matrix for multi-label).
        regression: score continuous targets instead of classes.
        intercept: integrate out a per-target intercept (see :class:`LogME`).
        prior: None for the exact maximum evidence; a positive float for the small-sample
            score under a weak prior on the noise precision (see :class:`LogME`).

    Returns:
        The LogME score; higher predicts better transfer. Compare it only across models scored on
        the same data.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> from hf_logme import logme
        >>> X, y = load_iris(return_X_y=True)
        >>> round(logme(X.astype("float32"), y), 8)
        -0.16006026
    """
    estimator = LogME(regression=regression, intercept=intercept, prior=prior)
    return estimator.update(features, labels).compute()


# ---------------------------------------------------------------------------------------------
# The exact solver


@dataclass
class _Spectrum:
    """The data reduced to what the evidence depends on (see the module docstring)."""

    n: float  # degrees of freedom: samples, minus one with an intercept (+ nu with a prior)
    sigma: torch.Tensor  # (r,) nonzero eigenvalues of the Gram matrix, ascending
    vecs: torch.Tensor  # (D, r) their eigenvectors
    proj: torch.Tensor  # (K, r) V^T F^T y per target
    energy: torch.Tensor  # (K, r) proj^2 / sigma
    resid: torch.Tensor  # (K,) residual sum of squares orthogonal to the column space
    full_rank: bool  # rank == n: the noise-free limit beta -> inf is finite
    log_sigma: torch.Tensor  # (r,) log of sigma, used by every evaluation of the profile


def _solve(stats: GramStatistics, intercept: bool, prior: float | None) -> LogMEResult:
    if intercept:
        gram, cross, target_sq = stats.centred()
        n = stats.n - 1
    else:
        gram, cross, target_sq = stats.gram, stats.cross, stats.target_sq
        n = stats.n
    # Round-off in the Gram matrix is relative to its uncentred magnitude.
    scale = float(stats.gram.diagonal().max())
    _check_targets(stats, target_sq, intercept)
    spectrum = _spectrum(gram, cross, target_sq, n, scale, warn=prior is None)
    if prior is None:
        u_best, alpha, beta, scores = _exact_maximum(spectrum)
    else:
        u_best, alpha, beta, scores = _posterior_mode(spectrum, target_sq, prior)
    # Posterior mean weights: V diag(1 / (sigma + 1/lambda)) V^T F^T y.
    coef = 1.0 / (spectrum.sigma[None, :] + torch.exp(-u_best)[:, None])  # (K, r)
    weights = spectrum.vecs @ (coef * spectrum.proj).T  # (D, K)
    if intercept:
        bias = (stats.target_sum - stats.feature_sum @ weights) / stats.n
    else:
        bias = torch.zeros_like(stats.target_sum)

    if stats.regression:
        order, targets = list(range(stats.num_targets)), list(range(stats.num_targets))
    else:
        order = stats.encoder.sorted_order()
        targets = [stats.encoder.classes[i] for i in order]
    idx = torch.tensor(order, device=scores.device)
    return LogMEResult(
        score=float(scores.mean()),
        scores=scores[idx],
        targets=targets,
        alpha=alpha[idx],
        beta=beta[idx],
        weights=weights[:, idx],
        bias=bias[idx],
        num_samples=stats.n,
        rank=int(spectrum.sigma.shape[0]),
        no_signal_targets=torch.isneginf(u_best)[idx],
        no_signal=bool(torch.isneginf(u_best).all()),
    )


def _exact_maximum(spec: _Spectrum) -> tuple[torch.Tensor, ...]:
    """(u, alpha, beta, score) per target at the supremum of the evidence (the paper's LogME)."""
    n = spec.n
    u_best, g_best = _maximize_profile(spec)
    scores = g_best / n + 0.5 * (math.log(n) - 1.0 - math.log(2.0 * math.pi))
    # lambda = beta / alpha = exp(u); beta = n / Q at the optimum, alpha = beta / lambda.
    q_best = _q_at(spec, u_best)
    beta = n / q_best
    alpha = n / (torch.exp(u_best) * q_best)
    noise_free = torch.isposinf(u_best)
    alpha = torch.where(noise_free, n / (spec.energy / spec.sigma).sum(1), alpha)
    beta = torch.where(noise_free, torch.full_like(beta, math.inf), beta)
    alpha = torch.where(torch.isneginf(u_best), torch.full_like(alpha, math.inf), alpha)
    return u_best, alpha, beta, scores


def _posterior_mode(
    spec: _Spectrum, target_sq: torch.Tensor, prior: float
) -> tuple[torch.Tensor, ...]:
    """(u, alpha, beta, score) per target at the posterior mode under the noise prior.

    With ``beta ~ Gamma(nu / 2, nu s^2 / 2)``, ``s^2 = y^T y / n``, the log posterior of
    (log alpha, log beta) is the log evidence plus ``nu / 2 log beta - nu s^2 beta / 2``: the
    evidence of n + nu samples with nu s^2 more residual. Its profile is maximised by the same
    solver; the score is the evidence of the actual data at that mode, per sample.
    """
    pseudo = prior * target_sq / spec.n  # nu s^2
    tilted = replace(spec, n=spec.n + prior, resid=spec.resid + pseudo, full_rank=False)
    u_best, _ = _maximize_profile(tilted)
    q_best = _q_at(spec, u_best)
    beta = (spec.n + prior) / (q_best + pseudo)
    alpha = beta / torch.exp(u_best)  # inf at the no-signal limit u = -inf
    return u_best, alpha, beta, _log_evidence(spec, u_best, beta, q_best) / spec.n


def _log_evidence(
    spec: _Spectrum, u: torch.Tensor, beta: torch.Tensor, q: torch.Tensor
) -> torch.Tensor:
    """log p(y | F, alpha = beta / exp(u), beta) per target, from the spectrum (Q = Q(exp(u)))."""
    t = spec.log_sigma[None, :] + u[:, None]
    log_det = torch.nn.functional.softplus(t).sum(1)  # sum log(1 + sigma lambda); 0 at u = -inf
    return 0.5 * (spec.n * (beta.log() - math.log(2.0 * math.pi)) - log_det - beta * q)


def _check_prior(prior: Any) -> float | None:
    """``prior`` is None or a positive, finite number of pseudo-observations."""
    if prior is None:
        return None
    if isinstance(prior, bool) or not isinstance(prior, (int, float)):
        raise TypeError(
            f"prior must be None (exact maximum evidence) or a positive number of "
            f"pseudo-observations such as {RANKING_PRIOR}; got {type(prior).__name__} {prior!r}."
        )
    if not (math.isfinite(prior) and prior > 0):
        raise ValueError(
            f"prior must be a positive, finite number of pseudo-observations such as "
            f"{RANKING_PRIOR}, or None for the exact maximum evidence; got {prior!r}."
        )
    return float(prior)


def _check_targets(stats: GramStatistics, target_sq: torch.Tensor, intercept: bool) -> None:
    """Regression targets must vary (a constant target is fitted exactly: infinite evidence)."""
    if not stats.regression:
        return
    zero = (target_sq <= _EPS * stats.target_sq).nonzero().flatten().tolist()
    if zero:
        what = "constant" if intercept else "all zero"
        raise ValueError(
            f"regression target column(s) {zero} are {what}; the evidence of a target with no "
            f"variation is unbounded. Drop those columns."
        )


def _spectrum(
    gram: torch.Tensor,
    cross: torch.Tensor,
    target_sq: torch.Tensor,
    n: int,
    scale: float,
    *,
    warn: bool,
) -> _Spectrum:
    sigma, vecs = _eigh(gram)
    dim = gram.shape[0]
    tol = max(n, dim) * _EPS * max(float(sigma[-1]), scale)
    rank = min(int((sigma > tol).sum()), n)  # F has at most n nonzero singular values
    sigma, vecs = sigma[dim - rank :], vecs[:, dim - rank :]
    proj = cross @ vecs
    energy = proj * proj / sigma
    if rank == n:
        resid = torch.zeros_like(target_sq)
    else:
        resid = torch.clamp(target_sq - energy.sum(1), min=0.0)
        interpolated = resid <= max(n, dim) * _EPS * target_sq
        if warn and bool(interpolated.any()):
            warnings.warn(
                f"{int(interpolated.sum())} target(s) are exact linear functions of the features "
                f"(residual at float64 round-off): their evidence is unbounded and LogME is +inf. "
                f"LogME(prior={RANKING_PRIOR}) gives a finite score.",
                RuntimeWarning,
                stacklevel=5,
            )
            resid = torch.where(interpolated, torch.zeros_like(resid), resid)
    return _Spectrum(n, sigma, vecs, proj, energy, resid, rank == n, sigma.log())


def _eigh(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric eigendecomposition, ascending. On the CPU through numpy: its LAPACK shares the
    BLAS threads that just built the Gram matrix instead of competing with them."""
    if gram.device.type == "cpu":
        sigma, vecs = np.linalg.eigh(gram.numpy())
        return torch.from_numpy(sigma), torch.from_numpy(vecs)
    return torch.linalg.eigh(gram)


def _profile(spec: _Spectrum, u: torch.Tensor) -> torch.Tensor:
    """g at one log-lambda per target: u of shape (K,) -> (K,)."""
    t = spec.log_sigma[None, :] + u[:, None]
    return -0.5 * spec.n * _q_at(spec, u).log() - 0.5 * torch.nn.functional.softplus(t).sum(1)


def _profile_derivatives(spec: _Spectrum, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """g'(u) and g''(u) per target. With h_i = sigma_i lambda / (1 + sigma_i lambda):

    g' = n/2 P/Q - 1/2 sum h_i,   g'' = n/2 (P_u/Q + (P/Q)^2) - 1/2 sum h_i (1 - h_i),
    P = sum c_i h_i (1 - h_i),    P_u = sum c_i h_i (1 - h_i) (1 - 2 h_i).
    """
    t = spec.log_sigma[None, :] + u[:, None]
    h, w = torch.sigmoid(t), torch.sigmoid(-t)  # w = 1 - h, accurate when h is near 1
    hw = h * w
    q = spec.resid + (spec.energy * w).sum(1)
    p = (spec.energy * hw).sum(1) / q
    p_u = (spec.energy * hw * (w - h)).sum(1) / q
    slope = 0.5 * spec.n * p - 0.5 * h.sum(1)
    curvature = 0.5 * spec.n * (p_u + p * p) - 0.5 * hw.sum(1)
    return slope, curvature


def _profile_grid(spec: _Spectrum, u: torch.Tensor) -> torch.Tensor:
    """g on a grid shared by all targets: u of shape (G,) -> (G, K), as one matrix product."""
    t = spec.log_sigma[None, :] + u[:, None]
    q = spec.resid[None, :] + torch.sigmoid(-t) @ spec.energy.T
    return -0.5 * spec.n * q.log() - 0.5 * torch.nn.functional.softplus(t).sum(1, keepdim=True)


def _q_at(spec: _Spectrum, u: torch.Tensor) -> torch.Tensor:
    """Q(lambda) per target at u = log lambda, including the limits u = -inf and u = +inf."""
    t = spec.log_sigma[None, :] + u[:, None]
    return spec.resid + (spec.energy * torch.sigmoid(-t)).sum(1)


def _maximize_profile(spec: _Spectrum) -> tuple[torch.Tensor, torch.Tensor]:
    """Supremum of g over log lambda in [-inf, +inf] per target: (argmax u, max g)."""
    num_targets = spec.energy.shape[0]
    like = spec.resid
    # lambda -> 0: the features are ignored and y ~ N(0, I / beta).
    g_low = -0.5 * spec.n * (spec.resid + spec.energy.sum(1)).log()
    candidates_u = [torch.full_like(like, -math.inf)]
    candidates_g = [g_low]
    if spec.sigma.numel() == 0:
        return candidates_u[0], g_low

    # lambda -> inf (beta -> inf): finite only when F has full row rank; +inf when a target is
    # an exact linear function of the features, -inf otherwise.
    log_sigma = spec.log_sigma
    q_inf = (spec.energy / spec.sigma).sum(1)
    if spec.full_rank:
        g_high = -0.5 * spec.n * q_inf.log() - 0.5 * log_sigma.sum()
    else:
        g_high = torch.where(spec.resid == 0, math.inf, -math.inf).to(like)
    candidates_u.append(torch.full_like(like, math.inf))
    candidates_g.append(g_high)

    # The grid spans every scale where g can change: each sigma_i * lambda crossing 1, and for a
    # residual R the turn-over near lambda ~ n q / R (see the module docstring).
    u_low = -float(log_sigma[-1]) - _GRID_MARGIN
    u_high = -float(log_sigma[0])
    positive = spec.resid > 0
    if bool(positive.any()):
        turn = (q_inf[positive] / spec.resid[positive]).log() + math.log(spec.n)
        u_high = max(u_high, float(turn.max()))
    u_high += _GRID_MARGIN
    points = math.ceil((u_high - u_low) / _GRID_STEP) + 1
    grid = torch.linspace(u_low, u_high, points, dtype=torch.float64, device=like.device)
    values = _profile_grid(spec, grid)  # (G, K)
    best = values.argmax(dim=0)
    candidates_u.append(grid[best])
    candidates_g.append(values[best, torch.arange(num_targets, device=like.device)])

    # Safeguarded Newton on g'(u) = 0 inside the bracket around each target's best grid point:
    # a Newton step when g is concave there and the step stays inside, else bisection.
    lo = grid[(best - 1).clamp(min=0)]
    hi = grid[(best + 1).clamp(max=points - 1)]
    u = grid[best]
    for _ in range(_MAX_NEWTON):
        slope, curvature = _profile_derivatives(spec, u)
        lo = torch.where(slope > 0, u, lo)
        hi = torch.where(slope < 0, u, hi)
        newton = u - slope / curvature
        tolerance = _NEWTON_TOL * (1.0 + u.abs())
        # A target whose maximum is at the grid's edge (where the limit candidates take over)
        # has a bracket that shrinks onto it without a zero of g': done once it is that narrow.
        converged = ((newton - u).abs() <= tolerance) | ((hi - lo) <= tolerance)
        bisect = ~converged & ((curvature >= 0) | (newton <= lo) | (newton >= hi))
        u = torch.where(bisect, 0.5 * (lo + hi), newton)
        if bool(converged.all()):
            break
    candidates_u.append(u)
    candidates_g.append(_profile(spec, u))

    all_u, all_g = torch.stack(candidates_u), torch.stack(candidates_g)  # (C, K)
    pick = all_g.argmax(dim=0)
    cols = torch.arange(num_targets, device=like.device)
    return all_u[pick, cols], all_g[pick, cols]
