"""Transferability estimators: pure tensor math over features and labels, no model or Hub code."""

from typing import Any

from .base import ESTIMATORS, Estimator, GramEstimator, get_estimator, register
from .logme import LogME, LogMEResult, logme


def score(features: Any, labels: Any, *, method: str = "logme", **options: Any) -> float:
    """Score features for labels with any registered estimator.

    Args:
        features: (n_samples, n_features) array or tensor.
        labels: class labels (n_samples,), or regression targets with ``regression=True``.
        method: the estimator's registered name; ``sorted(ESTIMATORS)`` lists them.
        **options: keyword options of that estimator (e.g. ``regression``, ``intercept`` for
            LogME); unknown names raise ``TypeError``.

    Returns:
        The estimator's score (see its ``higher_is_better``).
    """
    return get_estimator(method)(**options).update(features, labels).compute()


__all__ = [
    "ESTIMATORS",
    "Estimator",
    "GramEstimator",
    "LogME",
    "LogMEResult",
    "get_estimator",
    "logme",
    "register",
    "score",
]
