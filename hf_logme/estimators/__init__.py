"""Transferability estimators: pure tensor math over features and labels, no model or Hub code."""

from typing import Any

from ._protocol import KINDS, STATISTICS, Statistics, load_statistics
from .base import (
    ESTIMATORS,
    ClassStatistics,
    Estimator,
    GramEstimator,
    GramStatistics,
    MetadataStatistics,
    RowEstimator,
    RowSample,
    SourcePredictions,
    get_estimator,
    register,
)
from .gbc import GBC
from .hscore import HScore
from .knn import KNN
from .leep import LEEP
from .linear_probe import LinearProbe
from .logme import LogME, LogMEResult, logme
from .nce import NCE
from .nleep import NLEEP
from .parc import PARC
from .sfda import SFDA
from .shrinkage_hscore import ShrinkageHScore
from .size import NumParameters
from .transrate import TransRate


def score(features: Any, labels: Any, *, method: str = "logme", **options: Any) -> float:
    """Score features for labels with any registered estimator.

    Args:
        features: (n_samples, n_features) array or tensor; for ``"leep"`` and ``"nce"`` the
            source model's logits (n_samples, n_source_classes). None for ``"num_parameters"``,
            which scores ``num_parameters=...`` alone.
        labels: class labels (n_samples,), or regression targets with ``regression=True``
            (None for ``"num_parameters"``).
        method: the estimator's registered name; ``sorted(ESTIMATORS)`` lists them.
        **options: keyword options of that estimator (e.g. ``regression``, ``intercept`` for
            LogME, ``k`` for kNN); unknown names raise ``TypeError``.

    Returns:
        The estimator's score (see its ``higher_is_better``).

    Example:
        >>> from hf_logme import score
        >>> score(None, None, method="num_parameters", num_parameters=110_000_000)
        110000000.0
    """
    estimator = get_estimator(method)(**options)
    if features is None and labels is None and estimator.consumes == "metadata":
        return estimator.compute()
    return estimator.update(features, labels).compute()


__all__ = [
    "ESTIMATORS",
    "GBC",
    "KINDS",
    "KNN",
    "LEEP",
    "NCE",
    "NLEEP",
    "PARC",
    "SFDA",
    "STATISTICS",
    "ClassStatistics",
    "Estimator",
    "GramEstimator",
    "GramStatistics",
    "HScore",
    "LinearProbe",
    "LogME",
    "LogMEResult",
    "MetadataStatistics",
    "NumParameters",
    "RowEstimator",
    "RowSample",
    "ShrinkageHScore",
    "SourcePredictions",
    "Statistics",
    "TransRate",
    "get_estimator",
    "load_statistics",
    "logme",
    "register",
    "score",
]
