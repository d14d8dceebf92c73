"""Jackknife errors, intervals, P(best), ties and rows-to-separate, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

from hf_logme import LogME, logme
from hf_logme.confidence import (
    MAX_GROUPS,
    at_rows,
    from_leave_out,
    group_of_rows,
    jackknife,
    num_groups,
    paired_difference,
    probability_best,
    race_schedule,
    race_step,
    rows_to_separate,
    t_quantile,
    tied_with_leader,
)


class Mean:
    """The simplest mergeable estimator: the mean of the values seen."""

    def __init__(self, values=()):
        self.total, self.count = float(np.sum(values)), len(values)

    def merge(self, other):
        self.total += other.total
        self.count += other.count
        return self

    def compute(self):
        return self.total / self.count


def test_delete_one_jackknife_of_a_mean_is_the_textbook_standard_error():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=37)
    estimate = jackknife([Mean([v]) for v in x], Mean)
    assert estimate.score == pytest.approx(x.mean(), rel=1e-12)
    assert estimate.se == pytest.approx(x.std(ddof=1) / math.sqrt(len(x)), rel=1e-10)
    assert estimate.bias_corrected == pytest.approx(x.mean(), rel=1e-12)  # a mean is unbiased


def test_delete_a_group_jackknife_of_a_mean_is_the_error_of_the_group_means():
    x = np.random.default_rng(1).exponential(size=200)
    groups = group_of_rows(0, len(x), 8)
    means = np.array([x[groups == g].mean() for g in range(8)])
    estimate = jackknife([Mean(x[groups == g]) for g in range(8)], Mean)
    assert estimate.se == pytest.approx(means.std(ddof=1) / math.sqrt(8), rel=1e-10)
    half = student_t.ppf(0.95, 7) * estimate.se
    assert estimate.low == pytest.approx(x.mean() - half, rel=1e-3)
    assert estimate.high == pytest.approx(x.mean() + half, rel=1e-3)


def test_logme_jackknife_matches_brute_force_recomputation():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 300)
    features = rng.normal(size=(300, 12)) + np.eye(3, 12)[labels]
    group = np.concatenate([group_of_rows(0, 100, 6), group_of_rows(100, 200, 6)])  # two batches
    accumulators = []
    for g in range(6):
        accumulators.append(LogME(intercept=True).update(features[group == g], labels[group == g]))
    estimate = jackknife(accumulators, lambda: LogME(intercept=True))
    brute = np.array(
        [logme(features[group != g], labels[group != g], intercept=True) for g in range(6)]
    )
    np.testing.assert_allclose(estimate.leave_out, brute, rtol=1e-10)
    assert estimate.score == pytest.approx(logme(features, labels, intercept=True), rel=1e-10)
    assert estimate.se == pytest.approx(
        math.sqrt(5 / 6 * ((brute - brute.mean()) ** 2).sum()), rel=1e-9
    )
    assert estimate.bias_corrected == pytest.approx(6 * estimate.score - 5 * brute.mean(), rel=1e-9)


def test_group_assignment_is_round_robin_in_stream_order():
    one_pass = group_of_rows(0, 103, 20)
    batched = np.concatenate([group_of_rows(s, min(10, 103 - s), 20) for s in range(0, 103, 10)])
    np.testing.assert_array_equal(one_pass, batched)
    assert np.bincount(one_pass).max() - np.bincount(one_pass).min() <= 1
    with pytest.raises(ValueError, match="groups must be at least 1"):
        group_of_rows(0, 5, 0)


@pytest.mark.parametrize("dof", [4, 5, 7, 9, 19, 50])
@pytest.mark.parametrize("probability", [0.9, 0.95, 0.975])
def test_t_quantile_matches_scipy(dof, probability):
    assert t_quantile(probability, dof) == pytest.approx(student_t.ppf(probability, dof), abs=1e-3)


def test_num_groups_respects_the_memory_bound():
    assert num_groups(384) == MAX_GROUPS
    assert num_groups(4096) == 2**30 // (8 * 4096**2) == 8
    assert num_groups(6000) == 0  # fewer than 5 groups would fit: no error bars
    assert num_groups(1000, memory_bytes=5 * 8 * 1000**2) == 5
    with pytest.raises(ValueError, match="dim must be a positive int"):
        num_groups(0)


def test_from_leave_out_errors():
    with pytest.raises(ValueError, match="at least 2 groups"):
        from_leave_out(1.0, [1.0])
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        from_leave_out(1.0, [1.0, 2.0], level=90)


def _estimate(score, deviations):
    """An estimate whose leave-out scores deviate from their mean by ``deviations``."""
    return from_leave_out(score, score + np.asarray(deviations, dtype=float))


def test_probability_best_uncorrelated_matches_the_normal_formula():
    g = 10
    basis = np.linalg.qr(np.random.default_rng(3).normal(size=(g, g)))[0]
    # Orthogonal zero-mean deviation vectors: uncorrelated candidates.
    first = basis[:, 1] - basis[:, 1].mean()
    second = np.linalg.qr(np.column_stack([np.ones(g), first, basis[:, 2]]))[0][:, 2]
    a, b = _estimate(1.0, 0.3 * first), _estimate(0.9, 0.4 * second)
    assert abs(first @ second) < 1e-12
    expected = norm.cdf(0.1 / math.hypot(a.se, b.se))
    p = probability_best([a, b], draws=200000)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(expected, abs=0.005)


def test_probability_best_uses_the_pairing_of_the_groups():
    """Two candidates that move together: a small gap is certain although the intervals overlap."""
    deviations = np.random.default_rng(4).normal(size=10)
    leader, runner_up = _estimate(1.0, deviations), _estimate(0.99, deviations)
    assert leader.se > 0.1  # 10x the gap
    np.testing.assert_allclose(probability_best([runner_up, leader]), [0.0, 1.0])
    tied, confident = tied_with_leader([runner_up, leader])
    assert tied == [True, False] and not confident  # the overlap rule, as documented
    with pytest.raises(ValueError, match="share one group count"):
        probability_best([leader, _estimate(0.5, deviations[:5])])


def test_ties_and_confidence():
    dev = np.linspace(-1, 1, 10)
    rows = [_estimate(2.0, 0.01 * dev), _estimate(1.0, 0.01 * dev), _estimate(1.99, 0.1 * dev)]
    tied, confident = tied_with_leader(rows)
    assert tied == [False, False, True] and not confident
    tied, confident = tied_with_leader(rows[:2])
    assert tied == [False, False] and confident
    assert tied_with_leader([]) == ([], False)


def test_rows_to_separate_follows_one_over_sqrt_n():
    dev = np.linspace(-1, 1, 10)
    leader, runner_up = _estimate(1.0, 0.05 * dev), _estimate(0.95, 0.08 * dev)
    m = rows_to_separate(leader, runner_up, 200)
    width = leader.half_width + runner_up.half_width
    assert width > 0.05  # overlapping now
    # At m rows the shrunken half-widths sum to just below the gap; one row fewer does not.
    assert width * math.sqrt(200 / m) <= 0.05 + 1e-12
    assert width * math.sqrt(200 / (m - 1)) > 0.05
    far = _estimate(0.0, 0.01 * dev)
    assert rows_to_separate(leader, far, 200) == 200
    assert rows_to_separate(leader, _estimate(1.0, dev), 200) is None


def test_race_schedule_grows_geometrically_up_to_max_samples():
    assert race_schedule(2000) == [256, 512, 1024, 2000]
    assert race_schedule(1024, first_block=256, growth=4) == [256, 1024]
    assert race_schedule(100) == [100]
    with pytest.raises(ValueError, match="growth must be an int >= 2"):
        race_schedule(1000, growth=1)
    with pytest.raises(ValueError, match="max_samples must be an int >= 1"):
        race_schedule(0)


def test_race_on_synthetic_candidates_drops_only_clear_losers():
    """Candidates with true scores 0, -0.01, ..., errors 0.5 / sqrt(n), paired noise per round."""
    rng = np.random.default_rng(5)
    truth = np.array([0.0, -0.01, -0.05, -0.2, -0.5, -1.0])
    schedule = race_schedule(4096)
    racing, rows, history = list(range(len(truth))), schedule[0], {}
    while rows is not None:
        # Jackknife-like leave-out deviations whose spread matches se = 0.5 / sqrt(rows).
        estimates = []
        for i in racing:
            deviations = rng.normal(size=10)
            deviations *= (
                0.5 / math.sqrt(rows) / (math.sqrt(0.9) * deviations.std() * math.sqrt(10))
            )
            estimates.append(_estimate(truth[i] + 0.5 / math.sqrt(rows) * rng.normal(), deviations))
        step = race_step(estimates, rows, schedule)
        for position, reason in step.dropped.items():
            history[racing[position]] = (rows, reason)
        racing = [racing[p] for p in step.keep]
        rows = step.next_rows
    assert 0 in racing  # the best is never dropped
    assert history[5][0] == 256 and history[4][0] == 256  # the clear losers go after one round
    assert history[5][1].startswith("dropped after 256 rows: 1.021 below the leader, 90% interval")
    assert set(history) >= {2, 3, 4, 5}


def test_paired_difference_is_the_error_of_the_group_means_of_the_differences():
    """Means of x and y over shared groups: the jackknife of mean(x) - mean(y) from paired
    leave-out scores is the standard error of the G group means of x - y (closed form)."""
    rng = np.random.default_rng(7)
    common = rng.normal(size=400)  # what makes rows hard for both candidates
    x, y = common + 0.1 * rng.normal(size=400), common - 0.05 + 0.1 * rng.normal(size=400)
    groups = group_of_rows(0, 400, 10)
    ex = jackknife([Mean(x[groups == g]) for g in range(10)], Mean)
    ey = jackknife([Mean(y[groups == g]) for g in range(10)], Mean)
    gap = paired_difference(ex, ey)
    means = np.array([(x - y)[groups == g].mean() for g in range(10)])
    assert gap.score == pytest.approx(x.mean() - y.mean(), rel=1e-12)
    assert gap.se == pytest.approx(means.std(ddof=1) / math.sqrt(10), rel=1e-9)
    # The shared noise cancels: the difference is known ~10x better than either score.
    assert gap.se < 0.2 * min(ex.se, ey.se)
    with pytest.raises(ValueError, match="same row groups"):
        paired_difference(ex, from_leave_out(0.0, np.zeros(5)))


def test_race_step_pairs_candidates_that_move_together():
    """Two candidates whose scores share most of their noise (the same hard rows): their
    intervals overlap, so the unpaired rule keeps both; the paired difference drops the loser,
    and a paired loser that is not clearly below stays."""
    shared = np.linspace(-1.0, 1.0, 10) * 0.3
    own = np.tile([0.004, -0.004], 5)
    leader = _estimate(1.0, shared)
    close_loser = _estimate(0.95, shared + own)  # 0.05 below, difference se ~0.004
    tied = _estimate(0.998, shared - own)  # 0.002 below: inside the paired interval
    schedule = race_schedule(1024)
    assert race_step([leader, close_loser, tied], 256, schedule, paired=False).dropped == {}
    step = race_step([leader, close_loser, tied], 256, schedule)
    assert list(step.dropped) == [1] and step.keep == [0, 2]
    assert step.dropped[1].startswith("dropped after 256 rows: 0.05 below the leader, 90%")
    # Different group counts cannot be paired: the two-interval rule decides.
    unpaired = _estimate(0.95, np.linspace(-1.0, 1.0, 8) * 0.3)
    assert race_step([leader, unpaired], 256, schedule).dropped == {}


def test_race_step_keeps_unscored_candidates_and_stops_with_one_left():
    dev = np.linspace(-1, 1, 10)
    schedule = race_schedule(1024)
    step = race_step([_estimate(1.0, 0.01 * dev), None, _estimate(0.0, 0.01 * dev)], 256, schedule)
    assert step.keep == [0, 1] and list(step.dropped) == [2] and step.next_rows == 512
    step = race_step([_estimate(1.0, 0.01 * dev), _estimate(0.0, 0.01 * dev)], 512, schedule)
    assert step.keep == [0] and step.next_rows is None
    step = race_step([_estimate(1.0, dev), _estimate(0.9, -dev)], 1024, schedule)
    assert step.keep == [0, 1] and step.next_rows is None  # the schedule is exhausted
    # After the last round no rows are left to save: a clear loser stays, as a finalist.
    step = race_step([_estimate(1.0, 0.01 * dev), _estimate(0.0, 0.01 * dev)], 1024, schedule)
    assert step.keep == [0, 1] and step.dropped == {} and step.next_rows is None
    with pytest.raises(ValueError, match="not a round of the schedule"):
        race_step([None], 300, schedule)


class Drifting(Mean):
    """A score that depends on the number of rows exactly as a + b / n."""

    def compute(self):
        return 0.3 + 5.0 / self.count


def test_at_rows_predicts_a_one_over_n_drift_exactly():
    groups = [Drifting([0.0] * 10) for _ in range(8)]  # 80 rows
    estimate = jackknife(groups, Drifting)
    assert estimate.score == pytest.approx(0.3 + 5.0 / 80)
    assert at_rows(estimate, 80, 2000).score == pytest.approx(0.3 + 5.0 / 2000, rel=1e-12)
    moved = at_rows(estimate, 80)
    assert moved.score == pytest.approx(0.3, rel=1e-12) == estimate.bias_corrected
    assert moved.high - moved.low == pytest.approx(estimate.high - estimate.low)
    assert at_rows(estimate, 80, 80) == estimate
    with pytest.raises(ValueError, match="target_rows=40 must be at least num_rows=80"):
        at_rows(estimate, 80, 40)
