"""How sure a ranking is: jackknife errors, intervals, ties and P(best) from grouped statistics.

Rows are dealt round-robin, in stream order, into G groups, each kept as its own mergeable
accumulator (``group_of_rows``). Leaving one group out at a time gives G scores on
``n (G - 1) / G`` rows each; the delete-a-group jackknife turns their spread into a standard
error (Quenouille, Tukey; Efron and Stein 1981), for any estimator whose state merges. Every
function here is pure: it takes scores or accumulators and returns numbers.

A score on n rows estimates the score on n rows, and LogME rises with n (it is the average log
predictive density of rows the model has seen fewer and fewer of). A ranking that scored n of the
N rows available reports the interval of :func:`calibrated`: an interval for the score on all N
rows. It equals ``score -/+ t se`` when every row is scored.

Memory: G copies of the statistics, i.e. G x D^2 float64 for LogME; ``num_groups`` picks G under a
byte budget (20 groups when they fit, fewer for wide features, none below 5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, Protocol, TypeVar

import numpy as np

MAX_GROUPS = 20
MIN_GROUPS = 5  # below this the jackknife error is itself too uncertain to report
GROUP_MEMORY_BYTES = 2**30  # budget for the G copies of one candidate's statistics
LEVEL = 0.9  # coverage of the reported intervals
#: Standard errors per e-fold of rows added to the upper end of an interval for a score on more
#: rows than were scored (``calibrated``). Measured: benchmarks/study_coverage.py (README).
DRIFT_ALLOWANCE = 1.0


class Mergeable(Protocol):
    def merge(self, other: Any) -> Any: ...

    def compute(self) -> float: ...


M = TypeVar("M", bound=Mergeable)


@dataclass(frozen=True)
class Estimate:
    """A score with its delete-a-group jackknife error.

    Attributes:
        score: the estimator on all rows.
        se: jackknife standard error of ``score``.
        low, high: the two-sided interval ``score -/+ t * se`` at ``level`` (Student t with G - 1
            degrees of freedom).
        level: the interval's nominal coverage.
        leave_out: (G,) the score with each group left out, in group order; shared row groups
            make these comparable across candidates (``probability_best``).
        bias_corrected: ``G score - (G - 1) mean(leave_out)``, the jackknife's first-order
            correction for how the score drifts with the number of rows.
    """

    score: float
    se: float
    low: float
    high: float
    level: float
    leave_out: tuple[float, ...]
    bias_corrected: float

    @property
    def num_groups(self) -> int:
        return len(self.leave_out)

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)


def num_groups(dim: int, *, memory_bytes: int = GROUP_MEMORY_BYTES) -> int:
    """How many row groups of D x D float64 statistics fit in ``memory_bytes``: at most
    ``MAX_GROUPS``; 0 (no error bars) when fewer than ``MIN_GROUPS`` fit.

    With the default 1 GiB: 20 groups up to D = 2,590, 8 at D = 4,096, none beyond D = 5,181.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int (the feature width); got {dim!r}.")
    fit = memory_bytes // (8 * dim * dim)
    return int(min(MAX_GROUPS, fit)) if fit >= MIN_GROUPS else 0


def group_of_rows(start: int, count: int, groups: int) -> np.ndarray:
    """Group index of rows ``start .. start + count - 1`` of the stream: round-robin, so every
    group sees the whole stream and the assignment depends only on the row's position."""
    if groups < 1:
        raise ValueError(f"groups must be at least 1; got {groups}.")
    return (start + np.arange(count)) % groups


def t_quantile(probability: float, dof: int) -> float:
    """Quantile of Student's t with ``dof`` degrees of freedom (Cornish-Fisher expansion in the
    normal quantile; within 1e-3 of the exact value for dof >= 4, which is all this module asks)."""
    z = NormalDist().inv_cdf(probability)
    v = float(dof)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


def from_leave_out(score: float, leave_out: Sequence[float], *, level: float = LEVEL) -> Estimate:
    """The jackknife ``Estimate`` from the all-rows score and the G leave-one-group-out scores.

    ``se^2 = (G - 1) / G * sum_g (leave_out_g - mean)^2``; the interval uses Student's t with
    G - 1 degrees of freedom.
    """
    values = np.asarray(leave_out, dtype=np.float64)
    groups = values.size
    if groups < 2:
        raise ValueError(f"leave_out needs at least 2 groups; got {groups}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.9; got {level!r}.")
    mean = float(values.mean())
    se = math.sqrt((groups - 1) / groups * float(((values - mean) ** 2).sum()))
    half = t_quantile(0.5 + 0.5 * level, groups - 1) * se
    return Estimate(
        score=float(score),
        se=se,
        low=float(score) - half,
        high=float(score) + half,
        level=level,
        leave_out=tuple(float(v) for v in values),
        bias_corrected=groups * float(score) - (groups - 1) * mean,
    )


def jackknife(groups: Sequence[M], factory: Callable[[], M], *, level: float = LEVEL) -> Estimate:
    """Score and jackknife error of any mergeable estimator from its per-group accumulators.

    Args:
        groups: G accumulators of the same estimator (LogME, H-score, ... any object with
            ``merge`` and ``compute``), each fed the rows ``group_of_rows`` assigned to it.
            They are not modified.
        factory: makes an empty accumulator with the same options, e.g. ``lambda: LogME(**opts)``.
        level: coverage of the interval.

    Returns:
        The :class:`Estimate`. Costs G + 1 solves and G^2 merges; memory of two accumulators
        beyond the groups.
    """
    if len(groups) < 2:
        raise ValueError(f"groups needs at least 2 accumulators; got {len(groups)}.")
    total = factory()
    for group in groups:
        total.merge(group)
    leave_out = []
    for left in range(len(groups)):
        rest = factory()
        for index, group in enumerate(groups):
            if index != left:
                rest.merge(group)
        leave_out.append(rest.compute())
    return from_leave_out(total.compute(), leave_out, level=level)


def at_rows(estimate: Estimate, num_rows: int, target_rows: int | None = None) -> Estimate:
    """The estimate moved to ``target_rows`` rows (None: infinitely many) along the jackknife's
    first-order drift: a score that behaves like ``a + b / n`` is predicted exactly.

    A score on n rows estimates the score on n rows; LogME drifts with n, so an interval from 256
    rows is shifted against the score on all rows. The drift per group left out,
    ``mean(leave_out) - score``, fixes ``b``; the interval keeps its width.
    """
    if target_rows is not None and target_rows < num_rows:
        raise ValueError(f"target_rows={target_rows} must be at least num_rows={num_rows}.")
    fraction = 1.0 if target_rows is None else 1.0 - num_rows / target_rows
    shift = (estimate.bias_corrected - estimate.score) * fraction
    return replace(
        estimate,
        score=estimate.score + shift,
        low=estimate.low + shift,
        high=estimate.high + shift,
        bias_corrected=estimate.bias_corrected,
    )


def calibrated(
    estimate: Estimate,
    num_rows: int,
    target_rows: int,
    *,
    allowance: float = DRIFT_ALLOWANCE,
) -> Estimate:
    """The estimate of a score on ``num_rows`` rows turned into one for the score on
    ``target_rows`` rows (the rows a ranking could have scored).

    The jackknife's first-order drift (:func:`at_rows`) predicts the score on more rows as if the
    rows to come were predicted as well as the last ones seen; LogME's evidence keeps improving
    beyond that, so the interval is

        ``[at_rows.low, at_rows.high + allowance * se * ln(target_rows / num_rows)]``

    i.e. the jackknife interval moved along the drift, its upper end extended by ``allowance``
    standard errors per e-fold of rows still unseen. With ``allowance=1`` a 90% interval covered
    the score on all rows in 85%, 92%, 95%, 94% of subsamples of 64, 128, 256, 512 rows of real
    features (D = 384, 500 to 4,000 rows; the first-order move alone: 46-70%; the interval at n
    rows: 32-42%), see ``benchmarks/study_coverage.py``; on Gaussian linear data with n >> D it is
    conservative. ``target_rows == num_rows`` returns the estimate unchanged.

    Returns:
        An :class:`Estimate` whose ``score`` is the interval's midpoint and whose ``se`` and
        ``leave_out`` deviations are scaled so that ``score -/+ t se`` is the interval:
        :func:`probability_best` and :func:`tied_with_leader` then use the calibrated interval
        (its pairing across candidates kept). ``bias_corrected`` is unchanged.
    """
    if isinstance(allowance, bool) or not isinstance(allowance, (int, float)) or allowance < 0:
        raise ValueError(f"allowance must be a number >= 0, e.g. 1.0; got {allowance!r}.")
    if num_rows < 1:
        raise ValueError(f"num_rows must be at least 1; got {num_rows}.")
    moved = at_rows(estimate, num_rows, target_rows)
    if target_rows == num_rows:
        return estimate
    extra = allowance * estimate.se * math.log(target_rows / num_rows)
    low, high = moved.low, moved.high + extra
    centre = 0.5 * (low + high)
    width = estimate.high - estimate.low
    scale = (high - low) / width if width > 0 else 1.0
    values = np.asarray(estimate.leave_out, dtype=np.float64)
    leave_out = centre + scale * (values - values.mean())
    return replace(
        estimate,
        score=float(centre),
        se=scale * estimate.se,
        low=float(low),
        high=float(high),
        leave_out=tuple(float(v) for v in leave_out),
    )


def probability_best(
    estimates: Sequence[Estimate], *, draws: int = 20000, seed: int = 0
) -> np.ndarray:
    """P(each candidate has the highest score), from the same jackknife.

    Candidates scored on the same rows share the row groups, so their leave-out scores are
    paired. Each draw perturbs all scores together along the jackknife's directions,
    ``score + sqrt((G - 1) / G) * (leave_out - mean) @ z`` with ``z ~ N(0, I_G)``: a Gaussian with
    the jackknife covariance of the candidates (correlations included: two candidates that move
    together are not counted as uncertain against each other). Deterministic for a given seed.

    Returns:
        (C,) probabilities summing to 1; ties within a draw go to the first candidate.
    """
    if not estimates:
        return np.zeros(0)
    groups = {e.num_groups for e in estimates}
    if len(groups) != 1:
        raise ValueError(
            f"estimates must share one group count (the same rows and groups); "
            f"got {sorted(groups)}."
        )
    (g,) = groups
    leave_out = np.array([e.leave_out for e in estimates])  # (C, G)
    deviations = math.sqrt((g - 1) / g) * (leave_out - leave_out.mean(1, keepdims=True))
    scores = np.array([e.score for e in estimates])
    z = np.random.default_rng(seed).standard_normal((draws, g))
    samples = scores[None, :] + z @ deviations.T  # (draws, C)
    wins = np.bincount(samples.argmax(1), minlength=len(estimates))
    return wins / draws


def tied_with_leader(
    estimates: Sequence[Estimate], *, leader: int | None = None
) -> tuple[list[bool], bool]:
    """Rows whose interval overlaps the leader's, and whether the leader is ``confident``: no
    other interval overlaps it (one lying above the leader's counts as overlapping). The leader
    itself is never marked tied.

    Args:
        estimates: one per candidate.
        leader: the leader's index (a ranking's top row); None: the highest ``score``.
    """
    if not estimates:
        return [], False
    if leader is None:
        leader = int(np.argmax([e.score for e in estimates]))
    elif not 0 <= leader < len(estimates):
        raise ValueError(f"leader={leader} is not an index of the {len(estimates)} estimates.")
    floor = estimates[leader].low
    tied = [i != leader and e.high >= floor for i, e in enumerate(estimates)]
    return tied, not any(tied)


def rows_to_separate(leader: Estimate, runner_up: Estimate, num_rows: int) -> int | None:
    """Rows at which the two intervals would likely stop overlapping, assuming the scores stay
    where they are and both errors shrink as ``1 / sqrt(n)``: the smallest m with
    ``(h1 + h2) * sqrt(num_rows / m) < score1 - score2`` (h = half-widths at ``num_rows``).

    Returns ``num_rows`` when they are separated already, None when the scores are equal.
    """
    gap = leader.score - runner_up.score
    if gap <= 0:
        return None
    width = leader.half_width + runner_up.half_width
    if width < gap:
        return num_rows
    return math.ceil(num_rows * (width / gap) ** 2)


# ---------------------------------------------------------------------------------------------
# Racing: successive rounds on growing row counts, dropping candidates that have clearly lost


def race_schedule(max_samples: int, *, first_block: int = 256, growth: int = 2) -> list[int]:
    """Row counts of the successive rounds: ``first_block``, times ``growth`` each round, ending
    exactly at ``max_samples``. E.g. ``race_schedule(2000)`` is ``[256, 512, 1024, 2000]``."""
    for name, value, least in (
        ("max_samples", max_samples, 1),
        ("first_block", first_block, 1),
        ("growth", growth, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}; got {value!r}.")
    rows, schedule = min(first_block, max_samples), []
    while rows < max_samples:
        schedule.append(rows)
        rows *= growth
    return [*schedule, max_samples]


@dataclass(frozen=True)
class RaceStep:
    """What to do after a round.

    Attributes:
        keep: indices of the candidates that race on.
        dropped: index -> reason, for the candidates dropped after this round.
        next_rows: rows every kept candidate should have seen after the next round; None when
            the race is over (the schedule is exhausted or one candidate is left).
    """

    keep: list[int]
    dropped: dict[int, str]
    next_rows: int | None


def paired_difference(leader: Estimate, other: Estimate, *, level: float = LEVEL) -> Estimate:
    """The jackknife estimate of ``leader.score - other.score`` from paired leave-out scores.

    Two candidates scored on the same rows share the row groups, so leaving group g out of both
    gives paired scores; the spread of their differences is the error of the difference itself,
    which is smaller than the two errors combined whenever the candidates find the same rows hard
    (the usual case: most of a score's noise is which rows were drawn, and it moves both).
    """
    if leader.num_groups != other.num_groups:
        raise ValueError(
            f"paired estimates need the same row groups; got {leader.num_groups} and "
            f"{other.num_groups} groups."
        )
    leave_out = np.subtract(leader.leave_out, other.leave_out)
    return from_leave_out(leader.score - other.score, leave_out, level=level)


def race_step(
    estimates: Sequence[Estimate | None],
    rows_seen: int,
    schedule: Sequence[int],
    *,
    paired: bool = True,
) -> RaceStep:
    """Drop the candidates that have clearly lost to the leader, after a round in which every
    candidate still racing saw the same ``rows_seen`` rows; after the last round nobody is
    dropped (no rows are left to save: the ranking's ties say who is separated).

    Args:
        estimates: one per candidate still racing; None (no error bars, e.g. too wide for the
            groups to fit) is never dropped, as it cannot be shown to have lost.
        rows_seen: rows of the round just scored (an entry of ``schedule``).
        schedule: the rounds, from :func:`race_schedule`.
        paired: drop a candidate when the interval of its paired difference to the leader
            (:func:`paired_difference`, at the estimates' level) lies above zero; False, or
            group counts that differ: when its own interval lies entirely below the leader's.
    """
    if rows_seen not in schedule:
        raise ValueError(f"rows_seen={rows_seen} is not a round of the schedule {list(schedule)}.")
    later = [rows for rows in schedule if rows > rows_seen]
    scored = [i for i, e in enumerate(estimates) if e is not None]
    dropped: dict[int, str] = {}
    if scored and later:  # after the last round nothing is saved: everyone left is a finalist
        tied, _ = tied_with_leader([estimates[i] for i in scored])
        leader = scored[int(np.argmax([estimates[i].score for i in scored]))]
        best = estimates[leader]
        for position, index in enumerate(scored):
            if index == leader:
                continue
            mine = estimates[index]
            if paired and mine.num_groups == best.num_groups:
                gap = paired_difference(best, mine, level=mine.level)
                if gap.low > 0:
                    dropped[index] = (
                        f"dropped after {rows_seen} rows: {gap.score:.4g} below the leader, "
                        f"{mine.level:.0%} interval of the paired difference "
                        f"[{gap.low:.3g}, {gap.high:.3g}]"
                    )
            elif not tied[position]:
                dropped[index] = (
                    f"dropped after {rows_seen} rows: its {mine.level:.0%} interval "
                    f"lies below the leader's"
                )
    keep = [i for i in range(len(estimates)) if i not in dropped]
    return RaceStep(keep, dropped, later[0] if later and len(keep) > 1 else None)
