"""k-nearest-neighbour leave-one-out accuracy (as in Sorkhei et al., 2025, where it beat 23
transferability estimators).

Each sampled row is classified by a majority vote of its k nearest other rows (itself left out,
exact duplicates of it kept), and the score is the fraction classified correctly:

    kNN = (1/m) sum_i [ mode{ y_j : j in N_k(i) } = y_i ],

ties in the vote going to the smallest class in sorted label order (scikit-learn's rule).
Distances: ``"cosine"`` (1 - cosine similarity, rows L2-normalised) or ``"euclidean"``. Consumes
``"rows"``: O(max_rows D) memory; computing is O(m^2 D / 2) in blocked matrix products on the
features' device (each block of the symmetric m x m matrix once; none of it is held), in the
sample's dtype (float32 unless the features came in float64). Invariant to feature scale (both
metrics) and rotations; cosine also to each row's norm. Classification only.
"""

from __future__ import annotations

import torch

from ._rows import DEFAULT_MAX_ROWS
from ._validation import check_choice, check_int
from .base import RowEstimator, register

_BLOCK_ROWS = 2048  # rows per side of a block of the closeness matrix


@register
class KNN(RowEstimator):
    """Leave-one-out accuracy of a k-nearest-neighbour classifier (higher is better).

    Args:
        regression: must be False.
        k: neighbours that vote (an int >= 1, default 5).
        metric: ``"cosine"`` (default) or ``"euclidean"``.
        max_rows: rows sampled (default 10000); cost grows with its square.
        seed: selects the sample.
    """

    name = "knn"

    def __init__(
        self,
        *,
        regression: bool = False,
        k: int = 5,
        metric: str = "cosine",
        max_rows: int = DEFAULT_MAX_ROWS,
        seed: int = 0,
    ) -> None:
        super().__init__(regression=regression, max_rows=max_rows, seed=seed)
        self.k = check_int("k", k)
        self.metric = check_choice("metric", metric, ("cosine", "euclidean"))

    def get_params(self) -> dict:
        return {**super().get_params(), "k": self.k, "metric": self.metric}

    def compute(self) -> float:
        classes, codes = self._sample_classes()
        features = self.statistics.features
        m = features.shape[0]
        if self.k >= m:
            raise ValueError(f"k={self.k} needs more than k sampled rows; got {m}. Lower k.")
        predicted = knn_loo_predictions(features, codes, len(classes), self.k, self.metric)
        return float((predicted == codes).double().mean())


def knn_loo_predictions(
    features: torch.Tensor, codes: torch.Tensor, num_classes: int, k: int, metric: str
) -> torch.Tensor:
    """Leave-one-out k-NN majority votes (m,) for rows (m, D) with class codes (m,).

    The m x m closeness matrix is visited in square blocks, each computed once for the pair
    (i <= j) and used for both row blocks (half the flops of the full product); every row keeps a
    running top k. Memory O(m k + block^2).
    """
    m = features.shape[0]
    if metric == "cosine":
        features = features / torch.linalg.vector_norm(features, dim=1, keepdim=True).clamp(
            min=torch.finfo(features.dtype).tiny
        )
        sq_norms = None
    else:
        sq_norms = torch.linalg.vector_norm(features, dim=1).square()
    block = max(k + 1, min(m, _BLOCK_ROWS))
    device = features.device
    best = torch.full((m, k), -torch.inf, dtype=features.dtype, device=device)
    best_index = torch.zeros((m, k), dtype=torch.long, device=device)
    starts = list(range(0, m, block))

    def fold_in(rows: slice, closeness: torch.Tensor, first_column: int) -> None:
        values, index = closeness.topk(min(k, closeness.shape[1]), dim=1)
        values = torch.cat([best[rows], values], dim=1)
        index = torch.cat([best_index[rows], index + first_column], dim=1)
        top = values.topk(k, dim=1)
        best[rows], best_index[rows] = top.values, index.gather(1, top.indices)

    for a, i in enumerate(starts):
        rows_i = slice(i, min(i + block, m))
        for j in starts[a:]:
            rows_j = slice(j, min(j + block, m))
            # Larger is closer: cosine similarity, or -(squared distance) + const per row.
            closeness = features[rows_i] @ features[rows_j].T
            if sq_norms is not None:
                closeness.mul_(2.0)
                closeness_t = closeness.T - sq_norms[rows_i][None, :]
                closeness.sub_(sq_norms[rows_j][None, :])
            else:
                closeness_t = closeness.T.clone()
            if i == j:  # leave each row itself out
                closeness.fill_diagonal_(-torch.inf)
                fold_in(rows_i, closeness, j)
                continue
            fold_in(rows_i, closeness, j)
            fold_in(rows_j, closeness_t, i)
    counts = torch.zeros(m, num_classes, device=device)
    counts.scatter_add_(1, codes[best_index], torch.ones_like(best_index, dtype=counts.dtype))
    return counts.argmax(dim=1)
