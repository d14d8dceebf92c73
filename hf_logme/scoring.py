"""Statistics in, scores out: each method's score, the best layer and the primary's layer scores.

Pure: no model, no dataset, no cache. A ranking gathers one candidate's statistics (per layer, and
per kind of input its methods consume) and hands them here; tests build statistics from arrays.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .confidence import Estimate, from_leave_out, probability_best, tied_with_leader
from .estimators import get_estimator
from .results import RankingRow

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
        no_signal: the primary's score (at its chosen layer) is LogME's no-signal floor: the
            evidence peaks with the features ignored, so it says nothing about them.
        estimate: the primary's delete-a-group jackknife estimate at its chosen layer, when row
            groups were given (None otherwise, or when a group left out cannot be scored).
    """

    scores: dict[str, float]
    best_layer: Layer | None = None
    layer_scores: dict[Layer, float] | None = None
    method_errors: dict[str, str] = field(default_factory=dict)
    no_signal: bool = False
    estimate: Estimate | None = None


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
    return _scored(method, statistics, options)[0]


def _scored(method: str, statistics: Any, options: Mapping[str, Any] | None) -> tuple[float, bool]:
    """(score, whether it is the no-signal floor) of one method on one set of statistics."""
    estimator = get_estimator(method).from_statistics(statistics, **dict(options or {}))
    score = estimator.compute()
    result = getattr(estimator, "result", None)  # LogME's full result; other methods have none
    return score, bool(getattr(result, "no_signal", False))


def score_candidate(
    layers: Mapping[Layer, Mapping[str, Any]],
    methods: Mapping[str, Mapping[str, Any]],
    *,
    best_layer: bool = False,
    shared: Mapping[str, Any] | None = None,
    unavailable: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    row_groups: Mapping[Layer, Sequence[Any]] | None = None,
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
        row_groups: per layer, the primary's statistics split into G row groups (whose sum is
            its statistics in ``layers``); the primary's chosen layer then gets a jackknife
            :class:`~hf_logme.confidence.Estimate`.

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
    no_signal = False
    chosen_primary: Layer | None = None
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
            scored = {layer: _scored(method, stats, options) for layer, stats in holders.items()}
        except ValueError as err:
            errors[method] = str(err)
            continue
        per_layer = {layer: value for layer, (value, _) in scored.items()}
        higher = get_estimator(method).higher_is_better
        chosen = _best(per_layer, higher)
        scores[method] = per_layer[chosen]
        if index == 0:
            no_signal, chosen_primary = scored[chosen][1], chosen
            if key not in shared:
                primary_layers = per_layer
    primary, options = next(iter(methods.items()))
    groups = (row_groups or {}).get(chosen_primary) if primary in scores else None
    estimate = _jackknife(primary, groups, options) if groups else None
    if not best_layer or primary_layers is None:
        return CandidateScores(scores, method_errors=errors, no_signal=no_signal, estimate=estimate)
    return CandidateScores(
        scores, chosen_primary, dict(primary_layers), errors, no_signal, estimate
    )


def _jackknife(
    method: str, groups: Sequence[Any], options: Mapping[str, Any] | None
) -> Estimate | None:
    """The jackknife estimate of ``method`` from its per-group statistics; None when some
    group's complement cannot be scored (e.g. it lacks a class)."""
    cls = get_estimator(method)
    options = dict(options or {})
    if cls.saturates_below_dim:
        # The leave-one-group-out scores all sit at the saturated value: a zero-width interval
        # would claim certainty where the score carries no information.
        dim, smallest = groups[0].dim, sum(g.n for g in groups) - max(g.n for g in groups)
        if dim is not None and smallest <= dim + 1:
            return None

    def empty() -> Any:
        first = groups[0]
        statistics = cls.new_statistics(regression=first.regression, **first.options())
        return cls.from_statistics(statistics, **options)

    try:
        return _jackknife_linear([cls.from_statistics(g, **options) for g in groups], empty)
    except ValueError:
        return None


def _jackknife_linear(estimators: Sequence[Any], empty: Any) -> Estimate:
    """``confidence.jackknife`` with O(G) merges instead of G^2: each complement is the merge of
    the groups before it (prefix sums, kept) and after it (one running suffix). Memory: G + 2
    accumulators beyond the groups."""
    prefix = [empty()]
    for estimator in estimators[:-1]:
        prefix.append(empty().merge(prefix[-1]).merge(estimator))
    total = empty().merge(prefix[-1]).merge(estimators[-1]).compute()
    suffix, leave_out = empty(), []
    for index in range(len(estimators) - 1, -1, -1):
        leave_out.append(empty().merge(prefix.pop()).merge(suffix).compute())
        suffix.merge(estimators[index])
    return from_leave_out(total, leave_out[::-1])


def with_confidence(
    rows: Sequence[RankingRow],
    estimates: Mapping[str, Estimate],
    *,
    no_signal: Collection[str] = (),
) -> list[RankingRow]:
    """The rows with ``tied`` and ``p_best`` filled in from their primary scores' estimates.

    A row is ``tied`` when its interval overlaps the leader's (the top row by ``score``, which
    must have an estimate; a row whose interval lies above the leader's is tied too); ``p_best``
    is set when every scored row has an estimate over the same row groups (the rows are then
    paired, see :func:`~hf_logme.confidence.probability_best`). A leader at the no-signal floor
    (``no_signal``: models whose score is) has no ranking to
    offer: every scored row at that floor is then ``tied`` with it.

    Args:
        rows: the ranking's rows, in any order.
        estimates: model -> the estimate of its primary score (scored rows only): the rows'
            intervals, i.e. :func:`~hf_logme.confidence.calibrated` in a ranking that scored
            fewer rows than it had.
        no_signal: the models whose primary score is LogME's no-signal floor.
    """
    scored = sorted(
        (row for row in rows if row.status == "ok"),
        key=lambda row: math.inf if math.isnan(row.score) else -row.score,
    )
    updates: dict[str, dict[str, Any]] = {}
    with_estimates = [row for row in scored if row.model in estimates]
    if scored and scored[0].model in estimates:
        tied, _ = tied_with_leader([estimates[row.model] for row in with_estimates], leader=0)
        for row, is_tied in zip(with_estimates, tied):
            updates.setdefault(row.model, {})["tied"] = is_tied
        counts = {estimates[row.model].num_groups for row in scored if row.model in estimates}
        if len(with_estimates) == len(scored) and len(counts) == 1:
            p_best = probability_best([estimates[row.model] for row in scored])
            for row, p in zip(scored, p_best):
                updates[row.model]["p_best"] = float(p)
    if scored and scored[0].model in no_signal:
        for row in scored[1:]:
            if row.model in no_signal:
                updates.setdefault(row.model, {})["tied"] = True
    return [replace(row, **updates.get(row.model, {})) for row in rows]


def _best(per_layer: Mapping[Layer, float], higher_is_better: bool) -> Layer:
    """The layer with the best score (NaN never wins; the first layer on ties)."""

    def key(layer: Layer) -> float:
        value = per_layer[layer]
        if math.isnan(value):
            return -math.inf
        return value if higher_is_better else -value

    return max(per_layer, key=key)
