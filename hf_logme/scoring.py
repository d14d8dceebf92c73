"""Statistics in, scores out: each method's score, the best layer and the primary's layer scores.

Pure: no model, no dataset, no cache. A ranking gathers one candidate's statistics (per layer, and
per kind of input its methods consume) and hands them here; tests build statistics from arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .estimators import get_estimator

#: A layer's name in the statistics: a hidden-state index, "last" or "mean".
Layer = int | str


@dataclass(frozen=True)
class CandidateScores:
    """What the methods say about one candidate.

    Attributes:
        scores: each scored method's score by name (its best layer's with ``best_layer=True``).
        best_layer: with ``best_layer=True``, the layer where the primary (first) method scores
            highest; None otherwise, or when the primary does not depend on the layer.
        layer_scores: with ``best_layer=True``, the primary's score of every layer.
        method_errors: why a method could not score this candidate, by name (the other methods
            still did).
    """

    scores: dict[str, float]
    best_layer: Layer | None = None
    layer_scores: dict[Layer, float] | None = None
    method_errors: dict[str, str] = field(default_factory=dict)


def consumes(method: str) -> str:
    """The kind of statistics ``method`` consumes (see :mod:`hf_logme.estimators.base`)."""
    return get_estimator(method).consumes


def score_method(method: str, statistics: Any, options: Mapping[str, Any] | None = None) -> float:
    """One method's score of one set of statistics (of the kind the method consumes).

    Args:
        method: a registered estimator name.
        statistics: the statistics object of the kind ``consumes(method)``.
        options: the estimator's options (``regression`` comes from the statistics).

    Raises:
        ValueError: the statistics cannot be scored (too few samples, a single class...).
    """
    return get_estimator(method).from_statistics(statistics, **dict(options or {})).compute()


def score_candidate(
    layers: Mapping[Layer, Mapping[str, Any]],
    methods: Mapping[str, Mapping[str, Any]],
    *,
    best_layer: bool = False,
    shared: Mapping[str, Any] | None = None,
    unavailable: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
) -> CandidateScores:
    """Score one candidate's statistics with every method.

    Args:
        layers: per layer, the statistics by kind (``{"last": {"gram": GramStatistics}}``).
        methods: method name -> its options, in order; the first is the primary.
        best_layer: score every layer and keep each method's best (``layers="best"``); False
            expects the statistics of one layer.
        shared: statistics that do not depend on the layer, by kind (source predictions,
            metadata); their methods are scored once.
        unavailable: kind -> why this candidate has none (e.g. no classification head); its
            methods get that reason in ``method_errors``.
        keys: method -> the key of its statistics in ``layers``/``shared``/``unavailable``
            (default: the kind it consumes; a ranking keys statistics gathered with options,
            such as a row cap, by kind and options).

    Returns:
        A :class:`CandidateScores`.
    """
    if not layers:
        raise ValueError("layers is empty: there are no statistics to score.")
    if not best_layer and len(layers) != 1:
        raise ValueError(
            f"statistics of {len(layers)} layers but best_layer=False; pass one layer's, or "
            f"best_layer=True to keep each method's best."
        )
    unavailable, shared, keys = dict(unavailable or {}), dict(shared or {}), dict(keys or {})
    scores: dict[str, float] = {}
    errors: dict[str, str] = {}
    primary_layers: dict[Layer, float] | None = None
    for index, (method, options) in enumerate(methods.items()):
        key = keys.get(method) or consumes(method)
        if key in shared:
            holders = {None: shared[key]}
        else:
            holders = {layer: held[key] for layer, held in layers.items() if key in held}
        if not holders or (key not in shared and len(holders) < len(layers)):
            errors[method] = unavailable.get(key, f"no {key} statistics were gathered")
            continue
        try:
            per_layer = {
                layer: score_method(method, stats, options) for layer, stats in holders.items()
            }
        except ValueError as err:
            errors[method] = str(err)
            continue
        higher = get_estimator(method).higher_is_better
        scores[method] = per_layer[_best(per_layer, higher)]
        if index == 0 and key not in shared:
            primary_layers = per_layer
    if not best_layer or primary_layers is None:
        return CandidateScores(scores, method_errors=errors)
    primary = next(iter(methods))
    higher = get_estimator(primary).higher_is_better
    chosen = _best(primary_layers, higher)
    return CandidateScores(scores, chosen, dict(primary_layers), errors)


def _best(per_layer: Mapping[Layer, float], higher_is_better: bool) -> Layer:
    """The layer with the best score (NaN never wins; the first layer on ties)."""

    def key(layer: Layer) -> float:
        value = per_layer[layer]
        if math.isnan(value):
            return -math.inf
        return value if higher_is_better else -value

    return max(per_layer, key=key)
