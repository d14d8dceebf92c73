"""Rank agreement: every statistic against scipy, hand-computed cases, ties and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hf_logme.evaluation import rank_agreement, tie_within, weighted_tau


def _mapping(values):
    return {f"m{i}": float(v) for i, v in enumerate(values)}


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_correlations_equal_scipy_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    x = rng.normal(size=n) if seed % 2 else rng.integers(0, 4, n).astype(float)
    y = rng.integers(0, 3, n).astype(float) if seed % 3 == 0 else rng.normal(size=n)
    out = rank_agreement(_mapping(x), _mapping(y))
    expected = {
        "weighted_tau": stats.weightedtau(x, y).statistic,
        "kendall_tau": stats.kendalltau(x, y).statistic,
        "spearman": stats.spearmanr(x, y).statistic,
        "pearson": stats.pearsonr(x, y).statistic if n > 2 or len(set(x)) > 1 else math.nan,
    }
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(out[name]), name
        else:
            assert out[name] == pytest.approx(value, abs=1e-12), name


def test_weighted_tau_by_hand():
    # x ranks a > b > c; truth a=3, b=1, c=2. Ranked by x: ranks a0 b1 c2; only (b, c) is
    # discordant; weights a-b 1+1/2, a-c 1+1/3, b-c 1/2+1/3.
    # By truth: a0 c1 b2; weights a-c 1+1/2, a-b 1+1/3, c-b 1/2+1/3: the same sums here.
    total = (1 + 1 / 2) + (1 + 1 / 3) + (1 / 2 + 1 / 3)
    expected = (total - 2 * (1 / 2 + 1 / 3)) / total
    assert weighted_tau([3.0, 2.0, 1.0], [3.0, 1.0, 2.0]) == pytest.approx(expected)
    # a discordance at the top costs more than one at the bottom
    top_swap = weighted_tau([4, 3, 2, 1], [3, 4, 2, 1])
    bottom_swap = weighted_tau([4, 3, 2, 1], [4, 3, 1, 2])
    assert top_swap < bottom_swap < 1.0


def test_top1_and_top3_by_hand():
    scores = {"a": 0.9, "b": 0.5, "c": 0.4, "d": 0.1}
    truth = {"a": 0.80, "b": 0.85, "c": 0.70, "d": 0.60}
    out = rank_agreement(scores, truth)
    assert out["chosen"] == ["a"] and out["best"] == ["b"]
    assert out["top1_hit"] == 0.0
    assert out["top1_regret"] == pytest.approx((0.85 - 0.80) / 0.85)
    assert out["top3_recall"] == 1.0  # {a, b, c} both ways
    out = rank_agreement({"a": 1, "b": 2, "c": 3, "d": 4}, truth)  # picks d, true top 3 misses d
    assert out["top3_recall"] == pytest.approx(2 / 3)
    assert out["top1_regret"] == pytest.approx((0.85 - 0.60) / 0.85)


def test_tied_top_scores_average_hit_and_regret():
    out = rank_agreement({"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.9, "b": 0.6, "c": 0.5})
    assert out["chosen"] == ["a", "b"]
    assert out["top1_hit"] == 0.5
    assert out["top1_regret"] == pytest.approx(((0.9 - 0.9) + (0.9 - 0.6)) / 2 / 0.9)


def test_tie_tolerance_merges_ground_truth_within_the_spread():
    assert tie_within({"a": 0.90, "b": 0.895, "c": 0.80, "d": 0.795}, 0.01) == {
        "a": 0.90,
        "b": 0.90,
        "c": 0.80,
        "d": 0.80,
    }
    scores = {"a": 1.0, "b": 2.0, "c": 0.0}
    truth = {"a": 0.90, "b": 0.895, "c": 0.5}
    assert rank_agreement(scores, truth)["top1_hit"] == 0.0
    tied = rank_agreement(scores, truth, tie_tolerance=0.01)
    assert tied["top1_hit"] == 1.0 and tied["top1_regret"] == 0.0
    assert tied["kendall_tau"] == pytest.approx(stats.kendalltau([1, 2, 0], [1, 1, 0]).statistic)


def test_extra_ground_truth_models_are_reported_not_used():
    out = rank_agreement({"a": 1.0, "b": 0.0}, {"a": 0.9, "b": 0.1, "z": 0.99})
    assert out["unmatched"] == ["z"] and out["num_models"] == 2 and out["best"] == ["a"]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"ground_truth has no value for \['org/b'\]"):
        rank_agreement({"org/a": 1.0, "org/b": 0.5}, {"org/a": 0.9, "org/B": 0.5})
    with pytest.raises(ValueError, match="at least 2 scored models"):
        rank_agreement({"a": 1.0}, {"a": 0.9})
    with pytest.raises(ValueError, match=r"scores\['a'\] is nan"):
        rank_agreement({"a": math.nan, "b": 1.0}, {"a": 0.9, "b": 0.8})
    with pytest.raises(ValueError, match=r"ground_truth\['b'\] must be a number"):
        rank_agreement({"a": 0.0, "b": 1.0}, {"a": 0.9, "b": "high"})
    with pytest.raises(TypeError, match="scores must be a mapping"):
        rank_agreement([1.0, 2.0], {"a": 0.9})
    with pytest.raises(ValueError, match="tie_tolerance must be a number >= 0"):
        rank_agreement({"a": 0.0, "b": 1.0}, {"a": 0.9, "b": 0.8}, tie_tolerance=-1)
