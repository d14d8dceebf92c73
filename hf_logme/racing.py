"""Racing: score every candidate on a first block of rows, drop the clear losers, go on with more.

Pure, like :mod:`hf_logme.scoring`: no model, no dataset, no cache. :func:`run_race` plays the
rounds of :func:`~hf_logme.confidence.race_schedule` and asks a caller-given ``advance`` for
each racing candidate's estimate at the round's row count; a ranking's ``advance`` extracts the
rows it lacks (``rank_models(race=True)``), a benchmark's builds statistics from cached features.

The rows: :func:`race_order` is a seeded order of all the rows a ranking may score, such that
round k scores its first ``schedule[k]`` rows. Each round's rows are a prefix of the next round's,
so a candidate's statistics are extended by the new rows only (statistics merge by addition),
never recomputed, and a later run with more rows continues from the same prefix.

The drop rule (:func:`~hf_logme.confidence.race_step`): after a round in which every racing
candidate saw the same rows, in the same round-robin row groups, a candidate is dropped when the
90% jackknife interval of its paired difference to the leader (leader's leave-out scores minus
its own, group by group) lies above zero: one-sided 95% that it scores below the leader on
these rows. Pairing matters: the candidates' errors come mostly from which rows were drawn and
move together, so the difference is known far better than two separate intervals suggest (the
rule used before, two 90% intervals that do not overlap, needs ~2.3 independent standard errors
of the difference). A candidate without an estimate (too wide for row groups) is never dropped,
the leader never is, and the race ends early once one candidate is left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .confidence import LEVEL, Estimate, from_leave_out, race_schedule, race_step

__all__ = [
    "FIRST_BLOCK",
    "GROWTH",
    "RACE_LEVEL",
    "RaceResult",
    "race_order",
    "race_schedule",
    "run_race",
    "total_schedule",
]

#: Rows of the first round, and the factor by which each round grows (successive halving's
#: doubling); the last round scores ``max_samples`` rows (all of them without it). 128, measured
#: by ``benchmarks/bench_race.py`` against 256 and 64 on two tasks (README, "Racing").
FIRST_BLOCK = 128
GROWTH = 2
#: Coverage of the intervals the drop rule compares: the ranking's own 90% intervals.
RACE_LEVEL = LEVEL


def race_order(num_rows: int, *, seed: int, classes: np.ndarray | None = None) -> np.ndarray:
    """A seeded order of ``num_rows`` rows whose every prefix keeps each class's share.

    Args:
        num_rows: how many rows to order.
        seed: the seed of the order (the ranking's ``seed``).
        classes: (num_rows,) class labels for classification; None (regression, multi-label):
            a uniform random order.

    Returns:
        A permutation of ``0 .. num_rows - 1`` (int64). With ``classes``, the class's j-th row
        (in a seeded order within the class) sits at key ``(j + u) / count`` with ``u`` uniform in
        [0, 1): every prefix of length m holds each class's count within one of ``m * share``.
    """
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 0:
        raise ValueError(f"num_rows must be an int >= 0; got {num_rows!r}.")
    rng = np.random.default_rng(seed)
    if classes is None:
        return rng.permutation(num_rows).astype(np.int64)
    classes = np.asarray(classes)
    if classes.shape != (num_rows,):
        raise ValueError(f"classes must have shape ({num_rows},); got {classes.shape}.")
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    key = np.empty(num_rows)
    for index, count in enumerate(counts):
        members = np.flatnonzero(inverse == index)
        within = rng.permutation(count)
        key[members[within]] = (np.arange(count) + rng.random(count)) / count
    return np.argsort(key, kind="stable").astype(np.int64)


@dataclass(frozen=True)
class RaceResult:
    """How a race went.

    Attributes:
        rounds: the row counts of the rounds played (a prefix of the schedule).
        rows_seen: per candidate, the rows it had seen when it left the race (dropped, failed or
            finished); 0 for a candidate that failed in the first round.
        dropped: candidate index -> (rows seen, reason), e.g. "dropped after 256 rows: ...".
        failed: candidate indices ``advance`` could not score (left out of the race).
        estimates: per candidate, the estimate of its last round (None: none, or failed).
    """

    rounds: list[int]
    rows_seen: list[int]
    dropped: dict[int, tuple[int, str]] = field(default_factory=dict)
    failed: list[int] = field(default_factory=list)
    estimates: list[Estimate | None] = field(default_factory=list)

    @property
    def survivors(self) -> list[int]:
        """Candidates still racing at the end (neither dropped nor failed)."""
        out = set(self.dropped) | set(self.failed)
        return [i for i in range(len(self.rows_seen)) if i not in out]


#: ``advance(indices, rows)``: bring each candidate in ``indices`` to the first ``rows`` rows of
#: the race order and return index -> its estimate there (None: scored, without error bars); an
#: index missing from the answer could not be scored and leaves the race.
Advance = Callable[[list[int], int], Mapping[int, Estimate | None]]


def run_race(
    advance: Advance,
    num_candidates: int,
    schedule: Sequence[int],
    *,
    level: float = RACE_LEVEL,
    paired: bool = True,
) -> RaceResult:
    """Play the rounds of ``schedule`` over ``num_candidates`` candidates.

    Args:
        advance: see :data:`Advance`; it is called once per round with the candidates still
            racing, in index order, and the round's row count.
        num_candidates: how many candidates start.
        schedule: increasing row counts, e.g. ``race_schedule(4000)`` = ``[256, 512, 1024,
            2048, 4000]``.
        level: the coverage of the intervals compared (each estimate's interval is rebuilt
            at this level from its leave-out scores).
        paired: the drop rule of :func:`~hf_logme.confidence.race_step` (True: the paired
            difference to the leader; False: two intervals that do not overlap).

    Returns:
        A :class:`RaceResult`. Every decision is made from the estimates alone, so processes
        that see the same estimates make the same decisions.
    """
    schedule = list(schedule)
    if not schedule or any(b <= a for a, b in zip(schedule, schedule[1:])):
        raise ValueError(f"schedule must be increasing row counts; got {schedule}.")
    racing = list(range(num_candidates))
    rows_seen = [0] * num_candidates
    estimates: list[Estimate | None] = [None] * num_candidates
    dropped: dict[int, tuple[int, str]] = {}
    failed: list[int] = []
    rounds: list[int] = []
    rows: int | None = schedule[0]
    while racing and rows is not None:
        answer = advance(list(racing), rows)
        rounds.append(rows)
        failed += [i for i in racing if i not in answer]
        racing = [i for i in racing if i in answer]
        for index in racing:
            rows_seen[index], estimates[index] = rows, answer[index]
        step = race_step(
            [_at_level(answer[i], level) for i in racing], rows, schedule, paired=paired
        )
        for position, reason in step.dropped.items():
            dropped[racing[position]] = (rows, reason)
        racing = [racing[position] for position in step.keep]
        rows = step.next_rows
    return RaceResult(rounds, rows_seen, dropped, sorted(failed), estimates)


def _at_level(estimate: Estimate | None, level: float) -> Estimate | None:
    if estimate is None or estimate.level == level:
        return estimate
    return from_leave_out(estimate.score, estimate.leave_out, level=level)


def total_schedule(num_rows: int, max_samples: int | None, first_block: int) -> list[int]:
    """The rounds of a race over ``num_rows`` available rows capped at ``max_samples``."""
    last = num_rows if max_samples is None else min(num_rows, max_samples)
    return race_schedule(max(last, 1), first_block=first_block, growth=GROWTH)
