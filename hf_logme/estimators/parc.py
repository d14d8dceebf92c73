"""PARC, Pairwise Annotation Representation Comparison (Bolya et al., "Scalability vs. Utility:
Do We Have to Sacrifice One for the Other in Data Importance Quantification?" / "Revisiting
transferability", NeurIPS 2021).

How similarly the features and the labels arrange the sampled rows: with features reduced by PCA
to ``n_components`` (32) axes and standardised per dimension, and labels one-hot (or the target
matrix, for regression),

    PARC = 100 * Spearman( lowtri(1 - corr(F_rows)), lowtri(1 - corr(Y_rows)) ),

corr the m x m Pearson correlation between rows and lowtri the m (m - 1) / 2 entries above the
diagonal, as in the authors' code (which computes the one-hot correlations in floating point, so
same-class pairs can differ by round-off and their Spearman ties break at random; here they are
exact ties). Consumes ``"rows"``; the pairwise matrices cost O(m^2) memory,
so PARC uses the first ``num_rows`` (2000) rows of the sample, which are themselves the sample a
cap of ``num_rows`` would have drawn (rows are kept in hash order). O(m^2 (r + log m)). Invariant
to feature scale and offsets; row correlations depend on the PCA axes' signs, fixed by
scikit-learn's convention. Regression takes a target matrix of
at least 2 columns (the correlation between two rows of a single target is undefined).
"""

from __future__ import annotations

import torch

from ._gmm import pca
from ._rows import DEFAULT_MAX_ROWS
from ._validation import check_int
from .base import RowEstimator, register


def _rank(values: torch.Tensor) -> torch.Tensor:
    """Average ranks (1-based) of a 1-D tensor, ties sharing their mean rank (scipy's rankdata)."""
    order = values.argsort()
    sorted_values = values[order]
    new_group = torch.ones_like(sorted_values, dtype=torch.bool)
    new_group[1:] = sorted_values[1:] != sorted_values[:-1]
    group = torch.cumsum(new_group, 0) - 1
    starts = torch.nonzero(new_group).flatten()
    ends = torch.cat([starts[1:], starts.new_tensor([values.shape[0]])])
    mean_rank = (starts + ends - 1).to(torch.float64) / 2 + 1
    ranks = torch.empty_like(mean_rank[group])
    ranks[order] = mean_rank[group]
    return ranks


def _row_dissimilarity(x: torch.Tensor) -> torch.Tensor:
    """The entries above the diagonal of 1 - corrcoef(rows of x); a constant row correlates 0
    with every row (numpy's corrcoef would give NaN, whose ranks are arbitrary)."""
    centred = x - x.mean(1, keepdim=True)
    norm = torch.linalg.vector_norm(centred, dim=1, keepdim=True)
    normed = centred / torch.where(norm > 0, norm, 1.0)
    upper = torch.triu_indices(x.shape[0], x.shape[0], 1, device=x.device)
    corr = normed @ normed.T
    return 1.0 - corr[upper[0], upper[1]]


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation; 0 when either side is constant (no arrangement to agree with)."""
    a, b = a - a.mean(), b - b.mean()
    norms = torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b)
    return float((a @ b) / norms) if norms > 0 else 0.0


@register
class PARC(RowEstimator):
    """PARC of a row sample (higher is better, in [-100, 100]).

    Args:
        regression: False for class labels; True for a target matrix of >= 2 columns.
        n_components: PCA axes kept before comparing (default 32; None keeps all).
        num_rows: rows of the sample compared pairwise (default 2000, at most ``max_rows``).
        max_rows: rows sampled (default 10000).
        seed: selects the sample.
    """

    name = "parc"
    supports_regression = True

    def __init__(
        self,
        *,
        regression: bool = False,
        n_components: int | None = 32,
        num_rows: int = 2000,
        max_rows: int = DEFAULT_MAX_ROWS,
        seed: int = 0,
    ) -> None:
        super().__init__(regression=regression, max_rows=max_rows, seed=seed)
        self.n_components = (
            None if n_components is None else check_int("n_components", n_components)
        )
        self.num_rows = check_int("num_rows", num_rows, minimum=3)

    def get_params(self) -> dict:
        return {
            **super().get_params(),
            "n_components": self.n_components,
            "num_rows": self.num_rows,
        }

    def compute(self) -> float:
        stats = self._require_samples(3)
        if not self.regression:
            self._sample_classes()
        rows = min(self.num_rows, stats.num_rows)
        features = stats.features[:rows].to(torch.float64)
        if self.regression:
            targets = stats.targets[:rows]
            if targets.shape[1] < 2:
                raise ValueError(
                    "PARC with regression=True needs at least 2 target columns (the correlation "
                    "of two rows of one target is undefined); use another method for a single "
                    "target."
                )
        else:
            codes = stats.labels()[1][:rows]
            if len(torch.unique(codes)) < 2:
                raise ValueError("PARC needs at least 2 classes among the compared rows.")
        size = float(features.square().mean().sqrt())  # what round-off is relative to
        if self.n_components is not None and self.n_components < features.shape[1]:
            features = pca(features, self.n_components)
        scale = features.std(0, unbiased=False)
        # A dimension that varies only by round-off is constant: scaled up, its noise would
        # arrange the rows at random.
        varies = scale > 1e-12 * size
        features = torch.where(varies, (features - features.mean(0)) / scale, 0.0)
        if self.regression:
            label_dissimilarity = _row_dissimilarity(targets)
        else:  # one-hot rows: 0 within a class, 1 + 1/(K-1) across, exactly (ties stay ties)
            upper = torch.triu_indices(rows, rows, 1, device=codes.device)
            label_dissimilarity = (codes[upper[0]] != codes[upper[1]]).to(torch.float64)
        return 100.0 * _pearson(_rank(_row_dissimilarity(features)), _rank(label_dissimilarity))
