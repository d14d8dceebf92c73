"""Cross-validated linear probe: the baseline users trust most.

On the sampled rows, standardised per feature (mean and scale of the whole sample):

* classification: multinomial logistic regression with an unpenalised intercept, minimising
  ``C * sum_i CE_i + ||W||^2 / 2`` (scikit-learn's objective) by L-BFGS in float64, for each ``C``
  of a grid (warm-started from the previous one) on ``folds`` stratified folds; the score is the
  best mean held-out accuracy over the grid (what ``LogisticRegressionCV(scoring="accuracy")``
  selects by).
* regression: ridge regression with an unpenalised intercept, scored by exact leave-one-out
  (the closed form ``RidgeCV`` uses) for each ``alpha`` of a grid; the score is the mean over
  targets of the leave-one-out R^2 at the alpha of least mean squared error.

Implemented in torch rather than through scikit-learn: scikit-learn is not a dependency of the
package, the probe then runs on the features' device, and its folds follow the seeded row sample.
Folds: within each class, the sampled rows (in their seeded hash order) are dealt to the folds in
turn. Consumes ``"rows"``. Cost: classification O(|grid| folds iterations m D K); regression one
O(m D min(m, D)) eigendecomposition for the whole grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._rows import DEFAULT_MAX_ROWS
from ._validation import check_float, check_int
from .base import RowEstimator, register

DEFAULT_CS = (0.01, 0.1, 1.0, 10.0)
DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def stratified_folds(codes: torch.Tensor, folds: int) -> torch.Tensor:
    """Fold index (m,) for each row: class by class, rows are dealt to folds 0, 1, ..., folds-1."""
    fold = torch.empty_like(codes)
    for k in torch.unique(codes):
        rows = torch.nonzero(codes == k).flatten()
        fold[rows] = torch.arange(rows.shape[0], device=codes.device) % folds
    return fold


def standardise(x: torch.Tensor) -> torch.Tensor:
    scale = x.std(0, unbiased=False)
    return (x - x.mean(0)) / torch.where(scale > 0, scale, 1.0)


def fit_logistic(
    x: torch.Tensor,
    codes: torch.Tensor,
    num_classes: int,
    c: float,
    *,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    max_iter: int = 500,
    tol: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression (weights (D, K), intercept (K,)) minimising
    ``c * sum CE + ||W||^2 / 2``, by L-BFGS with a strong-Wolfe line search, until the largest
    gradient entry of that objective divided by ``c m`` is below ``tol`` (scikit-learn's test)."""
    m, dim = x.shape
    if start is None:
        weights = x.new_zeros(dim, num_classes)
        bias = x.new_zeros(num_classes)
    else:
        weights, bias = start[0].clone(), start[1].clone()
    weights.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weights, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    penalty = 1.0 / (2.0 * c * m)  # the objective divided by c m, for conditioning

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (
            torch.nn.functional.cross_entropy(x @ weights + bias, codes)
            + penalty * weights.square().sum()
        )
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weights.detach(), bias.detach()


def ridge_loo_errors(x: torch.Tensor, y: torch.Tensor, alphas: Sequence[float]) -> torch.Tensor:
    """Leave-one-out squared errors (len(alphas), m, T) of ridge with an unpenalised intercept.

    With centred X, y: H = 1 1^T / m + X (X^T X + alpha I)^{-1} X^T and e_i = r_i / (1 - H_ii).
    """
    m = x.shape[0]
    xc, yc = x - x.mean(0), y - y.mean(0)
    if x.shape[1] <= m:
        eigvals, vecs = torch.linalg.eigh(xc.T @ xc)
        proj = xc @ vecs  # (m, r): columns X v_j, squared norms eigvals
    else:
        eigvals, u = torch.linalg.eigh(xc @ xc.T)
        proj = u * eigvals.clamp(min=0).sqrt()
    eigvals = eigvals.clamp(min=0)
    coords = proj.T @ yc  # (r, T)
    errors = []
    for alpha in alphas:
        shrink = 1.0 / (eigvals + alpha)
        fitted = proj @ (shrink[:, None] * coords)
        leverage = 1.0 / m + (proj.square() * shrink).sum(1)
        errors.append(((yc - fitted) / (1.0 - leverage)[:, None]).square())
    return torch.stack(errors)


@register
class LinearProbe(RowEstimator):
    """Cross-validated linear probe accuracy (classification) or leave-one-out R^2 (regression).

    Args:
        regression: False: logistic regression over ``Cs``; True: ridge over ``alphas``.
        Cs: inverse regularisation strengths tried (default 0.01, 0.1, 1, 10).
        alphas: ridge penalties tried (default 0.1, 1, 10, 100, 1000).
        folds: stratified folds for classification (an int >= 2, default 5).
        max_iter: L-BFGS iterations per fit (default 500).
        tol: gradient tolerance of each fit (default 1e-4, scikit-learn's).
        max_rows: rows sampled (default 10000).
        seed: selects the sample (and so the folds).
    """

    name = "linear_probe"
    supports_regression = True

    def __init__(
        self,
        *,
        regression: bool = False,
        Cs: Sequence[float] = DEFAULT_CS,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        folds: int = 5,
        max_iter: int = 500,
        tol: float = 1e-4,
        max_rows: int = DEFAULT_MAX_ROWS,
        seed: int = 0,
    ) -> None:
        super().__init__(regression=regression, max_rows=max_rows, seed=seed)
        self.Cs = _grid(Cs, "Cs")
        self.alphas = _grid(alphas, "alphas")
        self.folds = check_int("folds", folds, minimum=2)
        self.max_iter = check_int("max_iter", max_iter)
        self.tol = check_float("tol", tol)

    def get_params(self) -> dict:
        return {
            **super().get_params(),
            "Cs": self.Cs,
            "alphas": self.alphas,
            "folds": self.folds,
            "max_iter": self.max_iter,
            "tol": self.tol,
        }

    def compute(self) -> float:
        if self.regression:
            return self._ridge_score()
        x, codes, classes = self._class_rows(minimum_per_class=self.folds)
        x = standardise(x)
        fold = stratified_folds(codes, self.folds)
        accuracy = torch.zeros(len(self.Cs), self.folds, dtype=torch.float64)
        for f in range(self.folds):
            train, test = fold != f, fold == f
            start = None
            for i, c in enumerate(sorted(self.Cs)):
                start = fit_logistic(
                    x[train],
                    codes[train],
                    len(classes),
                    c,
                    start=start,
                    max_iter=self.max_iter,
                    tol=self.tol,
                )
                predicted = (x[test] @ start[0] + start[1]).argmax(1)
                accuracy[i, f] = (predicted == codes[test]).double().mean()
        return float(accuracy.mean(1).max())

    def _ridge_score(self) -> float:
        stats = self._require_samples(3)
        x = standardise(stats.features.to(torch.float64))
        y = stats.targets.to(x.device)
        variance = y.var(0, unbiased=False)
        if bool((variance == 0).any()):
            raise ValueError("a regression target is constant over the sampled rows; drop it.")
        errors = ridge_loo_errors(x, y, self.alphas)  # (A, m, T)
        best = int(errors.mean((1, 2)).argmin())
        return float((1.0 - errors[best].mean(0) / variance).mean())


def _grid(values: Sequence[float], name: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty sequence of positive numbers; got {values!r}.")
    return tuple(check_float(f"{name}[{i}]", v) for i, v in enumerate(values))
