"""Intervals for the score on all rows from a subsample: the calibration's formula, against
closed forms, and its coverage on Gaussian linear data where the all-rows score is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import t as student_t

from hf_logme import LogME
from hf_logme.confidence import (
    DRIFT_ALLOWANCE,
    Estimate,
    calibrated,
    from_leave_out,
    group_of_rows,
    probability_best,
    tied_with_leader,
)
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.scoring import _jackknife_linear


def drifting(score: float, slope: float, groups: int = 10, noise: float = 0.01, seed: int = 0):
    """An estimate whose leave-outs (n (G - 1) / G rows) sit ``slope`` below the score on
    average: the score rises with rows."""
    rng = np.random.default_rng(seed)
    leave_out = score - slope + noise * rng.standard_normal(groups)
    return from_leave_out(score, leave_out)


def test_calibrated_moves_along_the_drift_and_extends_the_upper_end():
    e = drifting(0.5, 0.004)
    n, big = 100, 2000
    got = calibrated(e, n, big)
    # Independent arithmetic: jackknife bias b/n = (G - 1) (score - mean(leave_out)); the first
    # order score at N is score + (b/n)(1 - n/N); the upper end gains se * ln(N / n).
    groups = len(e.leave_out)
    drift = (groups - 1) * (e.score - np.mean(e.leave_out)) * (1 - n / big)
    half = student_t.ppf(0.95, groups - 1) * e.se
    low = e.score + drift - half
    high = e.score + drift + half + DRIFT_ALLOWANCE * e.se * math.log(big / n)
    assert (got.low, got.high) == pytest.approx((low, high), rel=1e-3)
    assert got.score == pytest.approx((low + high) / 2, rel=1e-3)
    # Self-consistent: score -/+ t se is the interval, and the leave-outs give that se.
    assert got.half_width == pytest.approx(student_t.ppf(0.95, groups - 1) * got.se, rel=1e-3)
    values = np.array(got.leave_out)
    textbook = math.sqrt((groups - 1) / groups * ((values - values.mean()) ** 2).sum())
    assert textbook == pytest.approx(got.se, rel=1e-9)
    assert got.bias_corrected == e.bias_corrected


def test_calibrated_is_the_identity_when_every_row_was_scored_and_checks_its_arguments():
    e = drifting(0.5, 0.004)
    assert calibrated(e, 300, 300) == e
    with pytest.raises(ValueError, match="target_rows=100 must be at least num_rows=300"):
        calibrated(e, 300, 100)
    with pytest.raises(ValueError, match="allowance must be a number >= 0"):
        calibrated(e, 100, 300, allowance=-1.0)


def test_p_best_and_ties_follow_the_calibrated_intervals():
    # B scores lower on n rows but drifts up much faster: on all rows it may well be ahead.
    a = drifting(0.50, 0.0005, noise=0.001, seed=1)
    b = drifting(0.48, 0.01, noise=0.001, seed=2)
    raw_tied, raw_confident = tied_with_leader([a, b], leader=0)
    assert raw_tied == [False, False] and raw_confident
    ca, cb = calibrated(a, 64, 4000), calibrated(b, 64, 4000)
    assert cb.low > ca.high  # B's interval lies above the leader's: tied, not confident
    assert tied_with_leader([ca, cb], leader=0) == ([False, True], False)
    # P(best) of independent Gaussians centred on the calibrated midpoints.
    p = probability_best([ca, cb], draws=20000)
    assert p[1] > 0.99
    with pytest.raises(ValueError, match="leader=2 is not an index"):
        tied_with_leader([ca, cb], leader=2)


def gaussian_linear_coverage(seeds: int, dim: int, n: int, big: int, groups: int):
    """Coverage of the score on all ``big`` rows by the raw and the calibrated 90% interval at
    ``n`` rows, LogME (intercept, ranking prior) on y = F w + e, F ~ N(0, I)."""

    def make() -> LogME:
        return LogME(regression=True, intercept=True, prior=RANKING_PRIOR)

    raw = cal = 0
    widths = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        weights = rng.standard_normal(dim) / math.sqrt(dim)
        features = torch.from_numpy(rng.standard_normal((big, dim)))
        targets = features @ torch.from_numpy(weights) + torch.from_numpy(rng.standard_normal(big))
        truth = make().update(features, targets).compute()
        rows = torch.from_numpy(rng.choice(big, n, replace=False))
        f, y = features[rows], targets[rows]
        which = torch.from_numpy(group_of_rows(0, n, groups))
        parts = [make().update(f[which == g], y[which == g]) for g in range(groups)]
        e: Estimate = _jackknife_linear(parts, make)
        c = calibrated(e, n, big)
        raw += e.low <= truth <= e.high
        cal += c.low <= truth <= c.high
        widths.append((c.high - c.low) / (e.high - e.low))
    return raw / seeds, cal / seeds, float(np.median(widths))


def test_calibrated_interval_covers_the_all_rows_score_on_gaussian_linear_data():
    seeds = 80
    raw, cal, width = gaussian_linear_coverage(seeds, dim=16, n=64, big=1000, groups=10)
    tolerance = 3 * math.sqrt(0.9 * 0.1 / seeds)  # binomial, 3 sd
    assert abs(cal - 0.9) <= tolerance, (raw, cal)
    assert raw < 0.9 - tolerance  # the interval for the 64-row score misses the 1000-row one
    assert width < 2.5  # the calibration widens, within reason
