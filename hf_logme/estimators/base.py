"""The estimator interface, what each estimator consumes, and the registry behind ``score``.

The contract between estimators and whatever gathers their input (a ranking, a Trainer callback):

* ``Estimator.consumes`` names the statistics kind an estimator is computed from:

  - ``"gram"``: :class:`GramStatistics`, n, F^T F, F^T Y and sums (LogME, H-score, shrinkage
    H-score). O(D^2 + K D).
  - ``"class_statistics"``: :class:`ClassStatistics`, per-class count, mean and per-dimension
    variance (GBC). O(K D): per-class D x D scatter is deliberately not kept (K=100, D=1024 would
    be 800 MB); estimators that need per-class covariances compute them from rows.
  - ``"rows"``: :class:`RowSample`, the feature rows themselves up to ``max_rows``, sampled by a
    seeded hash of each row's content, so the sample does not depend on batching, order or
    sharding (kNN, NLEEP, PARC, TransRate, SFDA, linear probe). O(max_rows D).
  - ``"source_predictions"``: :class:`SourcePredictions`, the source model's logits over its own
    label space: a row sample of them plus the joint label/prediction counts over all rows
    (LEEP, NCE). O(max_rows Z + K Z).
  - ``"metadata"``: :class:`MetadataStatistics`, the parameter count (the size baseline).

* Every statistics kind follows one protocol (``_protocol.Statistics``): ``Kind(regression=...,
  **gather_options)``, ``update(features, labels)``, ``merge(other)``, ``n``, ``options()``,
  ``state_dict()`` / ``Kind.from_state_dict(state, device)`` (or ``load_statistics(state)``).
* ``Estimator.new_statistics(regression=..., **gather_options)`` returns the empty statistics an
  estimator consumes, ``estimator.gather_options()`` the options its own instance gathers with,
  and ``Estimator.from_statistics(statistics, **options)`` builds an estimator over statistics
  gathered elsewhere (shared, not copied: several estimators may read one object). So a ranking
  gathers one statistics object per (kind, gather options) per layer and scores every method
  that consumes it.
* Estimators keep the streaming API: ``update`` / ``merge`` / ``compute`` / ``reset`` /
  ``state_dict`` / ``load_state_dict``, written once here; a subclass writes ``compute``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import torch

from ._class_statistics import ClassStatistics
from ._metadata import MetadataStatistics
from ._protocol import STATISTICS, Statistics, check_regression, load_statistics
from ._rows import DEFAULT_MAX_ROWS, RowSample, SourcePredictions
from ._statistics import GramStatistics
from ._validation import check_statistics

E = TypeVar("E", bound="Estimator")

ESTIMATORS: dict[str, type[Estimator]] = {}


def register(cls: type[E]) -> type[E]:
    """Class decorator: make an estimator available to ``score(method=cls.name)`` and rankings."""
    if cls.consumes not in STATISTICS:
        raise ValueError(
            f"{cls.__name__}.consumes={cls.consumes!r} is not one of {sorted(STATISTICS)}."
        )
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
    """A transferability score accumulated over batches into the statistics it consumes.

    Attributes:
        name: registry key, as used in ``score(method=...)`` and in rankings.
        consumes: the statistics kind it is computed from (see the module docstring).
        higher_is_better: whether a larger score predicts better transfer.
        supports_regression: whether ``regression=True`` is accepted.
        saturates_below_dim: whether the score is one constant when rows <= features + 1 (then a
            ranking reports it without error bars).
    """

    name: ClassVar[str]
    consumes: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    supports_regression: ClassVar[bool] = False
    saturates_below_dim: ClassVar[bool] = False

    def __init__(self, *, regression: bool = False) -> None:
        regression = check_regression(regression)
        if regression and not self.supports_regression:
            raise ValueError(
                f"{type(self).__name__} ({self.name!r}) does not support regression=True; it is "
                f"defined for class labels only. Regression methods: "
                f"{sorted(n for n, c in ESTIMATORS.items() if c.supports_regression)}."
            )
        self.regression = regression
        self._statistics: Statistics | None = None

    # --- the contract with gatherers ------------------------------------------------------

    @classmethod
    def new_statistics(cls, *, regression: bool = False, **gather_options: Any) -> Statistics:
        """Empty statistics of the kind this estimator consumes, gathered with these options."""
        return STATISTICS[cls.consumes](regression=regression, **gather_options)

    @classmethod
    def from_statistics(cls: type[E], statistics: Statistics, **options: Any) -> E:
        """An estimator over statistics gathered elsewhere (held, not copied).

        Args:
            statistics: of the kind ``cls.consumes``; its ``regression`` flag and gather options
                become the estimator's.
            **options: the estimator's other options (e.g. ``intercept`` for LogME, ``k`` for
                kNN); a gather option or ``regression`` that disagrees with the statistics is a
                ValueError.
        """
        expected = STATISTICS[cls.consumes]
        if not isinstance(statistics, expected):
            raise TypeError(
                f"{cls.__name__} consumes {expected.__name__} ({cls.consumes!r}); got "
                f"{type(statistics).__name__}."
            )
        given = {"regression": statistics.regression, **statistics.options()}
        for key, value in given.items():
            if key in options and options[key] != value:
                raise ValueError(
                    f"{key}={options[key]!r} disagrees with the statistics, gathered with "
                    f"{key}={value!r}; drop the option or gather again."
                )
        estimator = cls(**{**options, **given})
        estimator._statistics = statistics
        return estimator

    def gather_options(self) -> dict[str, Any]:
        """The options this estimator's statistics are gathered with (none by default)."""
        return {}

    def get_params(self) -> dict[str, Any]:
        """The constructor options (keyword arguments); two instances merge only if they agree."""
        return {"regression": self.regression, **self.gather_options()}

    @property
    def statistics(self) -> Statistics:
        """The statistics accumulated so far (read-only; build from others: ``from_statistics``)."""
        if self._statistics is None:
            self._statistics = self.new_statistics(
                regression=self.regression, **self.gather_options()
            )
        return self._statistics

    # --- streaming API -----------------------------------------------------------------------

    def _changed(self) -> None:
        """Hook: the statistics changed (subclasses drop cached results)."""

    def update(self: E, features: Any, labels: Any) -> E:
        """Fold a batch into the statistics.

        Args:
            features: array or tensor of shape (n_samples, n_features), float16, bfloat16,
                float32 or float64, on any device (for source-prediction estimators: the source
                model's logits, (n_samples, n_source_classes)). Batches after the first are
                moved to the device of the first.
            labels: classification: shape (n_samples,) of any hashable kind (ints with gaps,
                strings, bools); classes first seen in a later batch are fine. Regression: floats
                of shape (n_samples,) or (n_samples, n_targets).

        Returns:
            self, so calls chain: ``LogME().update(f, y).compute()``.
        """
        self.statistics.update(features, labels)
        self._changed()
        return self

    def merge(self: E, other: E) -> E:
        """Fold ``other``'s statistics into this one's (other is left unchanged).

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
        self.statistics.merge(other.statistics)
        self._changed()
        return self

    @abstractmethod
    def compute(self) -> float:
        """The score of everything seen so far."""

    def reset(self) -> None:
        """Forget all batches."""
        self._statistics = None
        self._changed()

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
        statistics = load_statistics({"kind": self.consumes, **state["statistics"]}, device)
        self._statistics = statistics
        self._changed()

    def _require_samples(self, minimum: int = 2) -> Statistics:
        """The statistics, or a ValueError saying what ``compute()`` is missing."""
        stats = self.statistics
        if stats.n == 0:
            raise ValueError(
                f"{type(self).__name__}.compute() called before any data: call "
                f"update(features, labels) with at least {minimum} samples first."
            )
        if stats.n < minimum:
            raise ValueError(
                f"{type(self).__name__} needs at least {minimum} samples; got {stats.n}."
            )
        return stats


def _single_class_error(label: Any) -> ValueError:
    return ValueError(
        f"labels hold a single class ({label!r}); a transferability score needs at least 2 "
        f"classes. Check the label column and the subsample."
    )


class GramEstimator(Estimator):
    """Base for estimators that need only the streaming Gram statistics of features and targets.

    Subclasses implement ``compute`` from ``self.statistics`` (a :class:`GramStatistics`).
    """

    consumes = "gram"

    def _require_data(self) -> GramStatistics:
        stats = self._require_samples(2)
        if not self.regression and stats.num_targets < 2:
            raise _single_class_error(stats.encoder.classes[0])
        check_statistics(stats, type(self).__name__)
        return stats


__all__ = [
    "ESTIMATORS",
    "ClassStatistics",
    "Estimator",
    "GramEstimator",
    "GramStatistics",
    "MetadataStatistics",
    "RowEstimator",
    "RowSample",
    "SourcePredictions",
    "get_estimator",
    "register",
]


class RowEstimator(Estimator):
    """Base for estimators computed from a capped row sample (:class:`RowSample`).

    Args:
        regression: see the subclass.
        max_rows: at most this many rows are kept (a seeded, content-hashed sample; default 10000).
        seed: selects the sample, and seeds any randomness of the estimator itself.
    """

    consumes = "rows"

    def __init__(
        self, *, regression: bool = False, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
    ) -> None:
        super().__init__(regression=regression)
        probe = RowSample(regression=self.regression, max_rows=max_rows, seed=seed)
        self.max_rows, self.seed = probe.max_rows, probe.seed

    def gather_options(self) -> dict[str, Any]:
        return {"max_rows": self.max_rows, "seed": self.seed}

    def _sample_classes(self) -> tuple[list[Any], torch.Tensor]:
        """(classes in sorted order, int64 codes (m,) into them) of the sample, >= 2 classes."""
        classes, codes = self._require_samples(2).labels()
        if len(classes) < 2:
            raise _single_class_error(classes[0])
        return classes, codes

    def _class_rows(
        self, minimum_per_class: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        """(float64 features (m, D), int64 codes (m,) into the sorted classes, classes)."""
        stats = self.statistics
        classes, codes = self._sample_classes()
        if minimum_per_class > 1:
            counts = torch.bincount(codes, minlength=len(classes))
            if int(counts.min()) < minimum_per_class:
                small = classes[int(counts.argmin())]
                raise ValueError(
                    f"{type(self).__name__} needs at least {minimum_per_class} sampled rows per "
                    f"class; class {small!r} has {int(counts.min())}. Pass more rows or a larger "
                    f"max_rows."
                )
        return stats.features.to(torch.float64), codes, classes
