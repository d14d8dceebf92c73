"""Small dense helpers of the row estimators: PCA of a sample, k-means, a full-covariance GMM.

float64 torch on the sample's device, deterministic for a seed. The GMM follows scikit-learn's
``GaussianMixture(covariance_type="full")`` step for step (same M-step regularisation
``reg_covar``, same convergence test on the mean log-likelihood, a final E-step), so with the
same initial parameters it reaches the same posteriors.
"""

from __future__ import annotations

import math

import torch

_TINY = 10 * torch.finfo(torch.float64).eps


def pca(x: torch.Tensor, n_components: float) -> torch.Tensor:
    """Rows of ``x`` (m, D) projected on their principal axes (m, r), centred.

    ``n_components``: an int (that many axes, at most rank) or a float in (0, 1): the fewest axes
    whose explained variance ratio exceeds it (scikit-learn's rule for ``PCA(n_components=0.8)``).
    Axes are signed as scikit-learn signs them (largest-magnitude entry positive), so
    sign-sensitive scores (PARC) match its ``PCA``.
    """
    centred = x - x.mean(0)
    if centred.shape[0] < centred.shape[1]:  # thin: eigen-decompose the m x m Gram matrix
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        variances, axes = s.square(), vh.T
    else:
        variances, axes = torch.linalg.eigh(centred.T @ centred)
        variances, axes = variances.flip(0).clamp(min=0), axes.flip(1)
    if isinstance(n_components, float):
        ratio = torch.cumsum(variances, 0) / variances.sum()
        count = (
            int(
                torch.searchsorted(
                    ratio,
                    torch.tensor(n_components, dtype=ratio.dtype, device=ratio.device),
                    right=True,
                )
            )
            + 1
        )
    else:
        count = n_components
    count = min(count, axes.shape[1])
    axes = axes[:, :count]
    # scikit-learn's sign convention: each axis's largest-magnitude entry is positive.
    signs = torch.sign(axes.gather(0, axes.abs().argmax(0, keepdim=True)))
    return centred @ (axes * signs)


def kmeans_labels(x: torch.Tensor, k: int, *, seed: int, max_iter: int = 100) -> torch.Tensor:
    """Lloyd's k-means from a seeded k-means++ start; returns (m,) cluster indices."""
    generator = torch.Generator().manual_seed(seed)
    m = x.shape[0]
    sq = x.square().sum(1)
    centres = [x[int(torch.randint(m, (1,), generator=generator))]]
    closest = (sq - 2 * x @ centres[0] + centres[0].square().sum()).clamp(min=0)
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct rows than clusters: repeat a row
            pick = int(torch.randint(m, (1,), generator=generator))
        else:
            pick = int(torch.multinomial((closest / total).cpu(), 1, generator=generator))
        centres.append(x[pick])
        closest = torch.minimum(
            closest, (sq - 2 * x @ x[pick] + x[pick].square().sum()).clamp(min=0)
        )
    centres_t = torch.stack(centres)
    labels = torch.full((m,), -1, dtype=torch.long, device=x.device)
    for _ in range(max_iter):
        distances = sq[:, None] - 2 * x @ centres_t.T + centres_t.square().sum(1)[None, :]
        new = distances.argmin(1)
        if torch.equal(new, labels):
            break
        labels = new
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        sums = x.new_zeros(k, x.shape[1]).index_add_(0, labels, x)
        filled = counts > 0
        centres_t[filled] = sums[filled] / counts[filled, None]
    return labels


def _m_step(x: torch.Tensor, resp: torch.Tensor, reg_covar: float):
    nk = resp.sum(0) + _TINY
    means = resp.T @ x / nk[:, None]
    covs = []
    for j in range(resp.shape[1]):
        diff = x - means[j]
        cov = (resp[:, j, None] * diff).T @ diff / nk[j]
        cov.diagonal().add_(reg_covar)
        covs.append(cov)
    return nk / nk.sum(), means, torch.stack(covs)


def _precision_cholesky(covs: torch.Tensor) -> torch.Tensor:
    chol, info = torch.linalg.cholesky_ex(covs)
    if bool((info != 0).any()):
        raise ValueError(
            "a Gaussian mixture component collapsed (singular covariance); use fewer components "
            "(component_ratio) or more rows."
        )
    eye = torch.eye(covs.shape[1], dtype=covs.dtype, device=covs.device).expand_as(covs)
    return torch.linalg.solve_triangular(chol, eye, upper=False).transpose(1, 2)


def _e_step(x, weights, means, prec_chol):
    d = x.shape[1]
    log_det = prec_chol.diagonal(dim1=1, dim2=2).log().sum(1)
    maha = torch.stack(
        [
            ((x @ prec_chol[j]) - means[j] @ prec_chol[j]).square().sum(1)
            for j in range(len(weights))
        ],
        dim=1,
    )
    weighted = -0.5 * (d * math.log(2 * math.pi) + maha) + log_det + weights.log()
    norm = torch.logsumexp(weighted, dim=1)
    return float(norm.mean()), weighted - norm[:, None]


def gmm_posteriors(
    x: torch.Tensor,
    num_components: int,
    *,
    seed: int,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    init: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Posteriors p(z | x_i) (m, C) of a full-covariance Gaussian mixture fitted by EM.

    Args:
        init: (weights (C,), means (C, d), covariances (C, d, d)) to start from; by default the
            parameters of a seeded k-means partition (scikit-learn's ``init_params="kmeans"``).
    """
    if init is None:
        labels = kmeans_labels(x, num_components, seed=seed)
        resp = torch.nn.functional.one_hot(labels, num_components).to(x.dtype)
        weights, means, covs = _m_step(x, resp, reg_covar)
    else:
        weights, means, covs = init
    prec_chol = _precision_cholesky(covs)
    lower = -math.inf
    for _ in range(max_iter):
        previous = lower
        lower, log_resp = _e_step(x, weights, means, prec_chol)
        weights, means, covs = _m_step(x, log_resp.exp(), reg_covar)
        prec_chol = _precision_cholesky(covs)
        if abs(lower - previous) < tol:
            break
    return _e_step(x, weights, means, prec_chol)[1].exp()
