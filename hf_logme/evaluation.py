"""Rank agreement between a ranking's scores and fine-tuning ground truth.

Both mappings go from model id to a value where higher is better (negate a loss first). Ids are
matched exactly. The statistics are computed over the scored models (at least two):

- ``weighted_tau``: Vigna's weighted Kendall tau with additive hyperbolic weights, the statistic
  of the LogME papers and ``scipy.stats.weightedtau``'s default: a pair of models at ranks
  ``r_i, r_j`` (0 = best) weighs ``1/(r_i+1) + 1/(r_j+1)``, so disagreements at the top cost
  most; it is the mean of the values obtained ranking by (score, truth) and by (truth, score).
- ``kendall_tau``: Kendall's tau-b; ``spearman``: Pearson correlation of average ranks;
  ``pearson``: of the values themselves. A constant input makes these NaN (as in scipy).
- ``top1_hit``: 1.0 when the best-scored model is among the best by ground truth;
  ``top1_regret``: ``(best truth - truth of the best-scored) / |best truth|`` (NaN when the best
  truth is 0); ``top3_recall``: the share of the true top 3 found in the scored top 3.

Ties: tied scores or truths count as ties in every correlation (tau-b's and Vigna's tie
corrections). When several models share the top score, ``top1_hit`` and ``top1_regret`` are the
averages over them (the expected value of picking one at random). For ``top3_recall`` the true
top 3 is every model at least as good as the third best (more than three when tied), and the
scored top 3 likewise. ``tie_tolerance`` merges ground-truth values closer than it (e.g. the
seed-to-seed spread) into ties before anything is computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["rank_agreement", "tie_within", "weighted_tau"]


def rank_agreement(
    scores: Mapping[str, float],
    ground_truth: Mapping[str, float],
    *,
    tie_tolerance: float = 0.0,
) -> dict[str, Any]:
    """How well ``scores`` rank the models of ``ground_truth``.

    Args:
        scores: model id -> score (higher = predicted better), e.g. ``{r.model: r.score for r
            in ranking.scored}``.
        ground_truth: model id -> fine-tuned metric (higher is better); may hold more models
            than ``scores`` (they are listed under ``unmatched``).
        tie_tolerance: ground-truth values within this distance of a better model's value are
            tied with it (see :func:`tie_within`); 0 keeps only exact ties.

    Returns:
        ``weighted_tau``, ``kendall_tau``, ``spearman``, ``pearson``, ``top1_hit``,
        ``top1_regret``, ``top3_recall`` (floats), ``num_models``, ``chosen`` (the best-scored
        model ids), ``best`` (the best model ids by ground truth) and ``unmatched`` (ground-truth
        ids without a score).

    Raises:
        ValueError: a scored id is missing from ``ground_truth``, a value is not finite, fewer
            than two models, or a negative ``tie_tolerance``.
        TypeError: a mapping that is not a Mapping.

    Example:
        >>> out = rank_agreement({"a": 3.0, "b": 2.0, "c": 1.0}, {"a": 0.9, "b": 0.7, "c": 0.8})
        >>> round(out["kendall_tau"], 4), out["top1_hit"], out["chosen"]
        (0.3333, 1.0, ['a'])
    """
    ids, x, y = _aligned(scores, ground_truth)
    if tie_tolerance:
        truth = tie_within(dict(zip(ids, y)), tie_tolerance)
        y = np.array([truth[i] for i in ids])
    chosen = x == x.max()
    best_true = y.max()
    regret = (
        (best_true - y[chosen]) / abs(best_true)
        if best_true != 0
        else np.full(chosen.sum(), np.nan)
    )
    k = min(3, len(ids))
    true_top = y >= np.sort(y)[::-1][k - 1]
    scored_top = x >= np.sort(x)[::-1][k - 1]
    return {
        "weighted_tau": weighted_tau(x, y),
        "kendall_tau": _tau_b(x, y),
        "spearman": _pearson(_average_ranks(x), _average_ranks(y)),
        "pearson": _pearson(x, y),
        "top1_hit": float(np.mean(y[chosen] == best_true)),
        "top1_regret": float(np.mean(regret)),
        "top3_recall": float((true_top & scored_top).sum() / true_top.sum()),
        "num_models": len(ids),
        "chosen": [i for i, c in zip(ids, chosen) if c],
        "best": [i for i, v in zip(ids, y) if v == best_true],
        "unmatched": sorted(set(ground_truth) - set(ids)),
    }


def tie_within(values: Mapping[str, float], tolerance: float) -> dict[str, float]:
    """``values`` with near-ties merged: from the best down, every model within ``tolerance`` of
    the current group's best joins that group and takes its value.

    Example:
        >>> tie_within({"a": 0.90, "b": 0.89, "c": 0.80}, 0.02)
        {'a': 0.9, 'b': 0.9, 'c': 0.8}
    """
    if not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise ValueError(f"tie_tolerance must be a number >= 0; got {tolerance!r}.")
    out: dict[str, float] = {}
    leader = None
    for model, value in sorted(values.items(), key=lambda kv: -kv[1]):
        if leader is None or leader - value > tolerance:
            leader = value
        out[model] = leader
    return {model: out[model] for model in values}


def weighted_tau(x: Any, y: Any) -> float:
    """Weighted Kendall tau (additive hyperbolic weights), equal to ``scipy.stats.weightedtau``'s
    default: the mean of the statistic with ranks taken by decreasing (x, y) and by (y, x).

    Args:
        x, y: 1-D sequences of the same length (at least 2).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float((_weighted_tau_ranked(x, y) + _weighted_tau_ranked(y, x)) / 2)


def _weighted_tau_ranked(x: np.ndarray, y: np.ndarray) -> float:
    """Vigna (2015), eq. (2): sum over pairs of sgn(dx) sgn(dy) w, normalised by the same sums of
    sgn(dx)^2 and sgn(dy)^2; w = 1/(r_i+1) + 1/(r_j+1) with r the rank by decreasing (x, y)."""
    order = np.lexsort((-y, -x))  # best first: by x, ties by y
    rank = np.empty(len(x))
    rank[order] = np.arange(len(x))
    weight = 1.0 / (rank + 1.0)
    pair = weight[:, None] + weight[None, :]
    dx, dy = _signs(x), _signs(y)
    upper = np.triu(np.ones_like(pair, dtype=bool), k=1)
    num = (dx * dy * pair)[upper].sum()
    den = math.sqrt((dx**2 * pair)[upper].sum() * (dy**2 * pair)[upper].sum())
    return num / den if den else math.nan


def _signs(v: np.ndarray) -> np.ndarray:
    return np.sign(v[:, None] - v[None, :])


def _tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt(untied-in-x pairs * untied-in-y pairs)."""
    dx, dy = _signs(x), _signs(y)
    upper = np.triu(np.ones(dx.shape, dtype=bool), k=1)
    den = math.sqrt((dx != 0)[upper].sum() * (dy != 0)[upper].sum())
    return float((dx * dy)[upper].sum() / den) if den else math.nan


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    return np.array([(v < a).sum() + ((v == a).sum() + 1) / 2 for a in v])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt((xc**2).sum() * (yc**2).sum())
    return float((xc * yc).sum() / den) if den else math.nan


def _aligned(
    scores: Mapping[str, float], ground_truth: Mapping[str, float]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    for name, mapping in (("scores", scores), ("ground_truth", ground_truth)):
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"{name} must be a mapping from model id to a number; got {type(mapping).__name__}."
            )
    ids = list(scores)
    missing = [i for i in ids if i not in ground_truth]
    if missing:
        raise ValueError(
            f"ground_truth has no value for {missing}; ids are matched exactly (ground truth "
            f"holds {sorted(ground_truth)})."
        )
    if len(ids) < 2:
        raise ValueError(f"rank agreement needs at least 2 scored models; got {len(ids)}.")
    x = np.array([_finite(scores[i], "scores", i) for i in ids])
    y = np.array([_finite(ground_truth[i], "ground_truth", i) for i in ids])
    return ids, x, y


def _finite(value: Any, name: str, model: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}[{model!r}] must be a number; got {value!r}.") from None
    if not math.isfinite(number):
        raise ValueError(
            f"{name}[{model!r}] is {number}; drop models that were not scored (skipped rows)."
        )
    return number
