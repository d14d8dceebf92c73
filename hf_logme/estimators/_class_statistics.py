"""Per-class counts, means and per-dimension variances, streamed and mergeable.

Kind ``"class_statistics"``.

Each batch is reduced to per-class counts, means and sums of squared deviations, and combined with
the running ones by Chan et al.'s pairwise update (numerically stable: no E[x^2] - E[x]^2
cancellation however large the features' offset). Memory is O(K D). A per-class D x D scatter is
deliberately not kept: at K=100 classes and D=1024 it would take 800 MB; estimators that need
per-class covariances (TransRate, SFDA) consume the row sample instead.
"""

from __future__ import annotations

from typing import Any

import torch

from ._labels import ClassEncoder
from ._protocol import Statistics, check_regression, register_statistics, validated_batch
from ._statistics import float64_row_chunks


@register_statistics
class ClassStatistics(Statistics):
    """Per-class count, mean and per-dimension sum of squared deviations (classification only).

    Attributes:
        n: rows seen.
        counts: (K,) float64 rows per class, classes in order of first appearance.
        means: (K, D) float64 per-class means.
        sq_dev: (K, D) float64 per-class sums of squared deviations from the class mean
            (``sq_dev / counts`` is the biased per-dimension variance).
        encoder: the labels of the K classes.
    """

    kind = "class_statistics"

    def __init__(self, *, regression: bool = False) -> None:
        if check_regression(regression):
            raise ValueError(
                "class statistics need class labels; regression=True is not supported. Use an "
                "estimator that supports regression (e.g. method='logme')."
            )
        self.regression = False
        self.n = 0
        self.counts: torch.Tensor | None = None
        self.means: torch.Tensor | None = None
        self.sq_dev: torch.Tensor | None = None
        self.encoder = ClassEncoder()

    def options(self) -> dict[str, Any]:
        return {}

    @property
    def dim(self) -> int | None:
        return None if self.means is None else self.means.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.encoder)

    def update(self, features: Any, labels: Any) -> ClassStatistics:
        tensor, labels = validated_batch(
            features, labels, regression=False, dim=self.dim, num_targets=None
        )
        index = torch.from_numpy(self.encoder.encode(labels))
        device = tensor.device if self.means is None else self.means.device
        index = index.to(device)
        for start, chunk in float64_row_chunks(tensor, device):
            rows = index[start : start + chunk.shape[0]]
            num = len(self.encoder)
            counts = torch.bincount(rows, minlength=num).to(torch.float64)
            sums = chunk.new_zeros(num, chunk.shape[1]).index_add_(0, rows, chunk)
            means = sums / counts.clamp(min=1.0)[:, None]
            deviation = chunk - means[rows]
            sq_dev = chunk.new_zeros(num, chunk.shape[1]).index_add_(0, rows, deviation * deviation)
            self._combine(counts, means, sq_dev)
            self.n += chunk.shape[0]
        return self

    def _combine(self, counts: torch.Tensor, means: torch.Tensor, sq_dev: torch.Tensor) -> None:
        """Chan et al.'s pairwise combination, aligned class by class (same encoder order)."""
        if self.means is None:
            self.counts, self.means, self.sq_dev = counts, means, sq_dev
            return
        extra = counts.shape[0] - self.counts.shape[0]
        if extra > 0:
            self.counts = torch.cat([self.counts, self.counts.new_zeros(extra)])
            self.means = torch.cat([self.means, self.means.new_zeros(extra, self.dim)])
            self.sq_dev = torch.cat([self.sq_dev, self.sq_dev.new_zeros(extra, self.dim)])
        total = self.counts + counts
        weight = (counts / total.clamp(min=1.0))[:, None]
        delta = means - self.means
        self.means = self.means + delta * weight
        self.sq_dev = self.sq_dev + sq_dev + delta * delta * (self.counts[:, None] * weight)
        self.counts = total

    def merge(self, other: ClassStatistics) -> ClassStatistics:
        self._check_mergeable(other)
        if other.means is None:
            return self
        if self.dim is not None and self.dim != other.dim:
            raise ValueError(
                f"Cannot merge class statistics of {other.dim}-dimensional features into "
                f"{self.dim}-dimensional ones; both must come from the same model and layer."
            )
        device = other.means.device if self.means is None else self.means.device
        positions = torch.tensor(
            [self.encoder.add(label) for label in other.encoder.classes], dtype=torch.long
        ).to(device)
        num = len(self.encoder)
        dim = other.dim
        counts = torch.zeros(num, dtype=torch.float64, device=device)
        means = torch.zeros(num, dim, dtype=torch.float64, device=device)
        sq_dev = torch.zeros(num, dim, dtype=torch.float64, device=device)
        counts[positions] = other.counts.to(device)
        means[positions] = other.means.to(device)
        sq_dev[positions] = other.sq_dev.to(device)
        self._combine(counts, means, sq_dev)
        self.n += other.n
        return self

    def sorted(self) -> tuple[list[Any], torch.Tensor, torch.Tensor, torch.Tensor]:
        """(classes, counts, means, sq_dev) in sorted label order, independent of batch order."""
        order = self.encoder.sorted_order()
        idx = torch.tensor(order, device=self.means.device)
        classes = [self.encoder.classes[i] for i in order]
        return classes, self.counts[idx], self.means[idx], self.sq_dev[idx]

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"kind": self.kind, "regression": False, "n": self.n}
        if self.means is not None:
            state.update(
                counts=self.counts.cpu(),
                means=self.means.cpu(),
                sq_dev=self.sq_dev.cpu(),
                classes=list(self.encoder.classes),
            )
        return state

    @classmethod
    def from_state_dict(
        cls, state: dict[str, Any], device: str | torch.device = "cpu"
    ) -> ClassStatistics:
        stats = cls(regression=bool(state["regression"]))
        stats.n = int(state["n"])
        if "means" in state:
            def to(t):
                return torch.as_tensor(t, dtype=torch.float64).to(device)
            stats.counts, stats.means = to(state["counts"]), to(state["means"])
            stats.sq_dev = to(state["sq_dev"])
            stats.encoder = ClassEncoder(state["classes"])
        return stats
