"""Streaming sufficient statistics of a linear-Gaussian model, accumulated in float64.

For features F (n x D) and targets Y (n x K) the statistics are

    n,  F^T F (D x D),  F^T 1 (D),  Y^T F (K x D),  Y^T 1 (K),  diag(Y^T Y) (K).

For classification Y is the one-hot matrix of the labels, so Y^T F holds the per-class feature sums
and Y^T 1 = diag(Y^T Y) the class counts; it is never materialised. Every statistic is a sum over
rows, so two accumulators combine by addition, and the result does not depend on how the rows were
batched or ordered beyond float64 round-off. Memory is O(D^2 + K*D), independent of n.

Two fourth-moment sums ride along, sum_i ||f_i||^4 and sum_i ||f_i||^2 f_i (O(n D) to gather, next
to the O(n D^2) Gram matrix): with the others they give the Ledoit-Wolf shrinkage of the centred
covariance (the shrinkage H-score). States saved before they existed load with them missing.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._labels import ClassEncoder
from ._protocol import Statistics, check_regression, register_statistics, validated_batch

# Features are converted to float64 in row chunks of at most this many bytes, so the float64 copy
# of a large float32/bfloat16 matrix never has to exist at once.
CHUNK_BYTES = 128 * 2**20


@register_statistics
@dataclass
class GramStatistics(Statistics):
    """Sums over rows of features and targets (kind ``"gram"``): create, ``update``, ``merge``.

    No gather options. ``add_classification`` / ``add_regression`` are the unvalidated batch
    paths behind ``update``.
    """

    kind = "gram"
    regression: bool
    n: int = 0
    gram: torch.Tensor | None = None  # F^T F, (D, D)
    cross: torch.Tensor | None = None  # Y^T F, (K, D)
    target_sum: torch.Tensor | None = None  # Y^T 1, (K,)
    # Regression only; for one-hot targets both follow from the per-class sums and counts.
    feature_sum_regression: torch.Tensor | None = None  # F^T 1, (D,)
    target_sq_regression: torch.Tensor | None = None  # diag(Y^T Y), (K,)
    encoder: ClassEncoder = field(default_factory=ClassEncoder)  # classification only
    norm4_sum: torch.Tensor | None = None  # sum_i ||f_i||^4, () ; None in states saved before it
    norm2_feature_sum: torch.Tensor | None = None  # sum_i ||f_i||^2 f_i, (D,)

    def __post_init__(self) -> None:
        self.regression = check_regression(self.regression)

    def options(self) -> dict[str, Any]:
        return {}

    def update(self, features: Any, labels: Any) -> GramStatistics:
        """Validate a batch (see ``validated_batch``) and fold it in; returns self."""
        tensor, labels = validated_batch(
            features,
            labels,
            regression=self.regression,
            dim=self.dim,
            num_targets=self.num_targets if self.regression else None,
        )
        if self.regression:
            self.add_regression(tensor, labels)
        else:
            self.add_classification(tensor, labels)
        return self

    @property
    def has_fourth_moments(self) -> bool:
        """Whether the fourth-moment sums were gathered (False for states saved before them)."""
        return self.gram is None or self.norm4_sum is not None

    @property
    def feature_sum(self) -> torch.Tensor | None:
        """F^T 1; for one-hot targets, the sum of the per-class sums."""
        if self.regression or self.cross is None:
            return self.feature_sum_regression
        return self.cross.sum(0)

    @property
    def target_sq(self) -> torch.Tensor | None:
        """diag(Y^T Y); for one-hot targets that is the class counts, i.e. ``target_sum``."""
        return self.target_sq_regression if self.regression else self.target_sum

    @property
    def dim(self) -> int | None:
        return None if self.gram is None else self.gram.shape[0]

    @property
    def num_targets(self) -> int | None:
        return None if self.cross is None else self.cross.shape[0]

    @property
    def device(self) -> torch.device | None:
        return None if self.gram is None else self.gram.device

    def _allocate(self, dim: int, num_targets: int, device: torch.device) -> None:
        def zeros(*shape):
            return torch.zeros(shape, dtype=torch.float64, device=device)
        self.gram = zeros(dim, dim)
        self.cross, self.target_sum = zeros(num_targets, dim), zeros(num_targets)
        self.norm4_sum, self.norm2_feature_sum = zeros(), zeros(dim)
        if self.regression:
            self.feature_sum_regression, self.target_sq_regression = zeros(dim), zeros(num_targets)

    def _grow_classes(self, num_classes: int) -> None:
        """Append zero rows for classes first seen now."""
        extra = num_classes - self.cross.shape[0]
        if extra > 0:
            self.cross = torch.cat([self.cross, self.cross.new_zeros(extra, self.cross.shape[1])])
            self.target_sum = torch.cat([self.target_sum, self.target_sum.new_zeros(extra)])

    def add_classification(self, features: torch.Tensor, labels: np.ndarray) -> None:
        """Fold in a batch of features (n, D) and 1-D class labels (validated by the caller)."""
        index = torch.from_numpy(self.encoder.encode(labels))
        if self.gram is None:
            self._allocate(features.shape[1], 0, features.device)
        self._grow_classes(len(self.encoder))
        index = index.to(self.gram.device)
        counts = torch.bincount(index, minlength=self.cross.shape[0]).to(torch.float64)
        tmp = gram_workspace(self.gram)
        for start, chunk in float64_row_chunks(features, self.gram.device):
            with _single_thread_on_cpu(chunk.device):
                self.cross.index_add_(0, index[start : start + chunk.shape[0]], chunk)
            add_gram_(self.gram, chunk, tmp)
            self._add_fourth_moments(chunk)
        self.target_sum += counts
        self.n += features.shape[0]

    def add_regression(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        """Fold in a batch of features (n, D) and float64 targets (n, K), checked by the caller."""
        if self.gram is None:
            self._allocate(features.shape[1], targets.shape[1], features.device)
        targets = targets.to(self.gram.device)
        tmp = gram_workspace(self.gram)
        for start, chunk in float64_row_chunks(features, self.gram.device):
            self.cross.addmm_(targets[start : start + chunk.shape[0]].T, chunk)
            self.feature_sum_regression += chunk.sum(0)
            add_gram_(self.gram, chunk, tmp)
            self._add_fourth_moments(chunk)
        self.target_sum += targets.sum(0)
        self.target_sq_regression += (targets * targets).sum(0)
        self.n += features.shape[0]

    def _add_fourth_moments(self, chunk: torch.Tensor) -> None:
        if self.norm4_sum is None:  # loaded from a state saved without them: stay missing
            return
        sq_norms = torch.linalg.vector_norm(chunk, dim=1).square_()
        self.norm4_sum += sq_norms.dot(sq_norms)
        self.norm2_feature_sum.addmv_(chunk.T, sq_norms)

    def merge(self, other: GramStatistics) -> GramStatistics:
        """Add another accumulator's sums into this one (classes are matched by label)."""
        self._check_mergeable(other)
        if other.gram is None:
            return self
        if self.dim is not None and self.dim != other.dim:
            raise ValueError(
                f"Cannot merge statistics of {other.dim}-dimensional features into "
                f"{self.dim}-dimensional ones; both must come from the same model and layer."
            )
        if self.regression and self.gram is not None and self.num_targets != other.num_targets:
            raise ValueError(
                f"Cannot merge {other.num_targets} regression targets into {self.num_targets}."
            )
        if self.gram is None:
            self._allocate(other.dim, other.num_targets if self.regression else 0, other.device)
        device = self.gram.device
        self.gram += other.gram.to(device)
        if self.norm4_sum is not None and other.norm4_sum is not None:
            self.norm4_sum += other.norm4_sum.to(device)
            self.norm2_feature_sum += other.norm2_feature_sum.to(device)
        else:
            self.norm4_sum = self.norm2_feature_sum = None
        if self.regression:
            self.feature_sum_regression += other.feature_sum_regression.to(device)
            self.cross += other.cross.to(device)
            self.target_sum += other.target_sum.to(device)
            self.target_sq_regression += other.target_sq_regression.to(device)
        else:
            positions = torch.tensor(
                [self.encoder.add(label) for label in other.encoder.classes], dtype=torch.long
            ).to(device)
            self._grow_classes(len(self.encoder))
            self.cross.index_add_(0, positions, other.cross.to(device))
            self.target_sum.index_add_(0, positions, other.target_sum.to(device))
        self.n += other.n
        return self

    def state_dict(self) -> dict[str, Any]:
        """The sums as CPU tensors and plain lists (for caches and for other processes)."""
        state: dict[str, Any] = {"kind": self.kind, "regression": self.regression, "n": self.n}
        if self.gram is not None:
            state.update(
                gram=self.gram.cpu(), cross=self.cross.cpu(), target_sum=self.target_sum.cpu()
            )
            if self.norm4_sum is not None:
                state.update(
                    norm4_sum=self.norm4_sum.cpu(), norm2_feature_sum=self.norm2_feature_sum.cpu()
                )
            if self.regression:
                state["feature_sum"] = self.feature_sum_regression.cpu()
                state["target_sq"] = self.target_sq_regression.cpu()
            else:
                state["classes"] = list(self.encoder.classes)
        return state

    @classmethod
    def from_state_dict(
        cls, state: dict[str, Any], device: str | torch.device = "cpu"
    ) -> GramStatistics:
        """Rebuild statistics saved with ``state_dict()``, placed on ``device``."""
        stats = cls(regression=bool(state["regression"]), n=int(state["n"]))
        if "gram" in state:
            def to(t):
                return torch.as_tensor(t, dtype=torch.float64).to(device)
            stats.gram, stats.cross = to(state["gram"]), to(state["cross"])
            stats.target_sum = to(state["target_sum"])
            if "norm4_sum" in state:
                stats.norm4_sum = to(state["norm4_sum"])
                stats.norm2_feature_sum = to(state["norm2_feature_sum"])
            if stats.regression:
                stats.feature_sum_regression = to(state["feature_sum"])
                stats.target_sq_regression = to(state["target_sq"])
            else:
                stats.encoder = ClassEncoder(state["classes"])
        return stats

    def centred(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(F_c^T F_c, Y_c^T F_c, diag(Y_c^T Y_c)) for column-centred F and Y, from the sums."""
        n = float(self.n)
        feature_sum = self.feature_sum
        gram = self.gram - torch.outer(feature_sum, feature_sum) / n
        cross = self.cross - torch.outer(self.target_sum, feature_sum) / n
        target_sq = self.target_sq - self.target_sum * self.target_sum / n
        return 0.5 * (gram + gram.T), cross, target_sq


@contextmanager
def _single_thread_on_cpu(device: torch.device):
    """Run torch CPU ops on one thread for a moment (no-op on accelerators).

    After each BLAS call OpenBLAS keeps a worker thread spinning; multi-threaded torch ops
    competing with it on a small machine ran up to 6x slower (``index_add_``) than on one thread.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def float64_row_chunks(features: torch.Tensor, device: torch.device):
    """Yield ``(start, chunk)`` with float64 row chunks of ``features`` on ``device``.

    Converts through one reused buffer, so a float32 (n, D) input costs O(CHUNK_BYTES) of extra
    memory rather than an (n, D) float64 copy.
    """
    n, dim = features.shape
    rows = max(1, min(n, CHUNK_BYTES // (8 * dim)))
    if features.dtype == torch.float64 and features.device == device and features.is_contiguous():
        for start in range(0, n, rows):
            yield start, features[start : start + rows]
        return
    buffer = torch.empty((rows, dim), dtype=torch.float64, device=device)
    for start in range(0, n, rows):
        part = features[start : start + rows]
        chunk = buffer[: part.shape[0]]
        with _single_thread_on_cpu(device):
            # Asynchronous only towards an accelerator: a CPU chunk is read by numpy right away.
            chunk.copy_(part, non_blocking=device.type != "cpu")
        yield start, chunk


def gram_workspace(gram: torch.Tensor) -> np.ndarray | None:
    """Scratch space for ``add_gram_`` (reused across chunks: no page faults per chunk)."""
    return np.empty(gram.shape) if gram.device.type == "cpu" else None


def add_gram_(gram: torch.Tensor, chunk: torch.Tensor, workspace: np.ndarray | None) -> None:
    """gram += chunk^T chunk, in place.

    On the CPU numpy's matmul recognises ``a.T @ a`` and calls BLAS ``syrk``, half the flops of the
    general ``gemm`` that torch uses; elsewhere torch's ``addmm_`` runs on the device.
    """
    if workspace is not None:
        a, g = chunk.numpy(), gram.numpy()
        np.matmul(a.T, a, out=workspace)
        g += workspace
    else:
        gram.addmm_(chunk.T, chunk)
