"""k-nearest-neighbour leave-one-out accuracy (as in Sorkhei et al., 2025, where it beat 23
transferability estimators).

Each sampled row is classified by a majority vote of its k nearest other rows (itself left out,
exact duplicates of it kept), and the score is the fraction classified correctly:

    kNN = (1/m) sum_i [ mode{ y_j : j in N_k(i) } = y_i ],

ties in the vote going to the smallest class in sorted label order (scikit-learn's rule).
Distances: ``"cosine"`` (1 - cosine similarity, rows L2-normalised) or ``"euclidean"``. Consumes
``"rows"``: O(max_rows D) memory; computing is O(m^2 D) in blocked matrix products on the
features' device (no m x m matrix is held), in the sample's dtype (float32 unless the features
came in float64). Invariant to feature scale (both metrics) and rotations; cosine also to each
row's norm. Classification only.
"""

from __future__ import annotations

import torch

from ._rows import DEFAULT_MAX_ROWS
from ._validation import check_choice, check_int
from .base import RowEstimator, register

_BLOCK_ELEMENTS = 2**24  # similarities computed per block: block rows x m <= this


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
        self.k = check_int(k, "k")
        self.metric = check_choice(metric, "metric", ("cosine", "euclidean"))

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
    """Leave-one-out k-NN majority votes (m,) for rows (m, D) with class codes (m,)."""
    m = features.shape[0]
    if metric == "cosine":
        features = features / torch.linalg.vector_norm(features, dim=1, keepdim=True).clamp(
            min=torch.finfo(features.dtype).tiny
        )
        sq_norms = None
    else:
        sq_norms = torch.linalg.vector_norm(features, dim=1).square()
    block = max(1, _BLOCK_ELEMENTS // m)
    votes = torch.empty(m, dtype=torch.long, device=features.device)
    for start in range(0, m, block):
        rows = features[start : start + block]
        # Larger is closer: cosine similarity, or -(squared distance) up to the row's own norm.
        closeness = rows @ features.T
        if sq_norms is not None:
            closeness.mul_(2.0).sub_(sq_norms[None, :])
        index = torch.arange(start, start + rows.shape[0], device=features.device)
        closeness[index - start, index] = -torch.inf  # leave the row itself out
        neighbours = closeness.topk(k, dim=1).indices
        counts = torch.zeros(rows.shape[0], num_classes, device=features.device)
        counts.scatter_add_(1, codes[neighbours], torch.ones_like(neighbours, dtype=counts.dtype))
        votes[start : start + rows.shape[0]] = counts.argmax(dim=1)
    return votes
