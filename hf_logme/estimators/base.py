"""The streaming estimator interface and the registry behind ``hf_logme.score``.

Every estimator folds batches in with ``update``, combines with another instance through ``merge``
(batches, processes, machines, a cache) and turns its state into a score with ``compute``. Estimators
whose state is the Gram statistics of ``_statistics`` share everything but ``compute``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import torch

from ._statistics import GramStatistics
from ._validation import (
    as_class_labels,
    as_feature_tensor,
    as_regression_targets,
    check_bool,
    check_statistics,
)

E = TypeVar("E", bound="Estimator")

ESTIMATORS: dict[str, type[Estimator]] = {}


def register(cls: type[E]) -> type[E]:
    """Class decorator: make an estimator available to ``score(method=cls.name)`` and rankings."""
    ESTIMATORS[cls.name] = cls
    return cls


def get_estimator(method: str) -> type[Estimator]:
    """The estimator class registered under ``method``; the error lists the valid names."""
    try:
        return ESTIMATORS[method]
    except KeyError:
        raise ValueError(
            f"Unknown method {method!r}; choose one of {sorted(ESTIMATORS)}."
        ) from None


class Estimator(ABC):
    """A transferability score accumulated over batches.

    Attributes:
        name: registry key, as used in ``score(method=...)`` and in rankings.
        higher_is_better: whether a larger score predicts better transfer.
        supports_regression: whether ``regression=True`` is accepted.
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    supports_regression: ClassVar[bool] = False

    def __init__(self, *, regression: bool = False) -> None:
        regression = check_bool("regression", regression)
        if regression and not self.supports_regression:
            raise ValueError(f"{type(self).__name__} does not support regression=True.")
        self.regression = regression

    @abstractmethod
    def update(self: E, features: Any, labels: Any) -> E:
        """Fold a batch of features (n_samples, n_features) and labels into the state."""

    @abstractmethod
    def merge(self: E, other: E) -> E:
        """Fold another estimator's state into this one, as if its batches had been updated here."""

    @abstractmethod
    def compute(self) -> float:
        """The score of everything seen so far."""

    @abstractmethod
    def reset(self) -> None:
        """Forget all batches."""


class GramEstimator(Estimator):
    """Base for estimators that need only the streaming Gram statistics of features and targets.

    Holds a :class:`GramStatistics`, validates each batch at the boundary, and implements
    ``update``, ``merge``, ``reset``, ``state_dict`` and ``load_state_dict`` once. Subclasses
    implement ``compute`` from ``self.statistics``.
    """

    def __init__(self, *, regression: bool = False) -> None:
        super().__init__(regression=regression)
        self.statistics = GramStatistics(regression=self.regression)

    def get_params(self) -> dict[str, Any]:
        """The constructor options (as keyword arguments); two instances merge only if they agree."""
        return {"regression": self.regression}

    def _changed(self) -> None:
        """Hook: the statistics changed (subclasses drop cached results)."""

    def update(self: E, features: Any, labels: Any) -> E:
        """Fold a batch into the statistics.

        Args:
            features: array or tensor of shape (n_samples, n_features), float16, bfloat16,
                float32 or float64, on any device. Batches after the first are moved to the
                device of the first.
            labels: classification: shape (n_samples,) of any hashable kind (ints with gaps,
                strings, bools); classes first seen in a later batch are fine. Regression: floats
                of shape (n_samples,) or (n_samples, n_targets).

        Returns:
            self, so calls chain: ``LogME().update(f, y).compute()``.
        """
        stats = self.statistics
        tensor = as_feature_tensor(features)
        if stats.dim is not None and tensor.shape[1] != stats.dim:
            raise ValueError(
                f"features has {tensor.shape[1]} columns but earlier batches had {stats.dim}; "
                f"every batch must come from the same model, layer and pooling."
            )
        if self.regression:
            targets = as_regression_targets(labels, tensor.shape[0])
            if stats.num_targets is not None and targets.shape[1] != stats.num_targets:
                raise ValueError(
                    f"labels has {targets.shape[1]} target columns but earlier batches had "
                    f"{stats.num_targets}; every batch must carry the same targets."
                )
            stats.add_regression(tensor, targets)
        else:
            stats.add_classification(tensor, as_class_labels(labels, tensor.shape[0]))
        self._changed()
        return self

    def merge(self: E, other: E) -> E:
        """Add ``other``'s statistics to this one's (other is left unchanged).

        Equivalent to having updated this estimator with all of ``other``'s batches: use it to
        combine shards computed on several devices or processes.
        """
        if type(other) is not type(self):
            raise TypeError(
                f"Can only merge {type(self).__name__} with {type(self).__name__}; "
                f"got {type(other).__name__}."
            )
        if other is self:
            raise ValueError(
                f"Cannot merge a {type(self).__name__} into itself (that would count every batch "
                f"twice); merge a copy (copy.deepcopy) if that is what you mean."
            )
        if other.get_params() != self.get_params():
            raise ValueError(
                f"Cannot merge {type(self).__name__} with options {other.get_params()} into one "
                f"with {self.get_params()}; create both with the same options."
            )
        mine, theirs = self.statistics, other.statistics
        if mine.dim is not None and theirs.dim is not None and mine.dim != theirs.dim:
            raise ValueError(
                f"Cannot merge statistics of {theirs.dim}-dimensional features into "
                f"{mine.dim}-dimensional ones; both must come from the same model and layer."
            )
        if (
            self.regression
            and mine.num_targets is not None
            and theirs.num_targets is not None
            and mine.num_targets != theirs.num_targets
        ):
            raise ValueError(
                f"Cannot merge {theirs.num_targets} regression targets into {mine.num_targets}."
            )
        mine.merge(theirs)
        self._changed()
        return self

    def reset(self) -> None:
        self.statistics = GramStatistics(regression=self.regression)
        self._changed()

    def _require_data(self) -> GramStatistics:
        stats = self.statistics
        if stats.n == 0:
            raise ValueError(
                f"{type(self).__name__}.compute() called before any data: call "
                f"update(features, labels) with at least 2 samples first."
            )
        if stats.n < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples; got {stats.n}."
            )
        if not self.regression and stats.num_targets < 2:
            raise ValueError(
                f"labels hold a single class ({stats.encoder.classes[0]!r}); a transferability "
                f"score needs at least 2 classes. Check the label column and the subsample."
            )
        check_statistics(stats, type(self).__name__)
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Options and statistics as plain tensors and lists (for caches and other processes)."""
        return {"options": self.get_params(), "statistics": self.statistics.state_dict()}

    def load_state_dict(self, state: dict[str, Any], device: str | torch.device = "cpu") -> None:
        """Replace the statistics with those of ``state_dict()``, placed on ``device``."""
        if state["options"] != self.get_params():
            raise ValueError(
                f"State was saved with options {state['options']}, this estimator has "
                f"{self.get_params()}."
            )
        self.statistics = GramStatistics.from_state_dict(state["statistics"], device)
        self._changed()
