"""Does a ranking's 90% interval at n rows cover the score on all N rows 90% of the time?

Real features, offline: feature files cached by the transfer benchmark
(``<cache>/<task>/<model>/{auto,mean,cls}.pt``, dicts with ``"layers": {index: (N, D)}`` and
``"labels"``) and single-matrix files (``*.pt`` with ``"features": (N, D)`` and ``"labels"``),
given as paths or globs. For every candidate (one feature matrix), every n in ``--sizes`` below
its N and every repeat, n rows are drawn without replacement; the rows are dealt into the
ranking's G row groups (``confidence.group_of_rows``, G from ``confidence.num_groups``) and
scored exactly as a ranking scores them (``scoring._jackknife``). Each subsample's score and its
G leave-one-group-out scores are saved (``--save``), so every interval below is computed from the
same draws:

    now          score -/+ t se: the interval the ranking reported before calibration
    at N         moved to N rows along the jackknife's 1/n drift (``confidence.at_rows``)
    at N, fpc    at N, and the width times sqrt(1 - n/N) (a subsample of a finite N)
    calibrated   ``confidence.calibrated(estimate, n, N)``: what a ranking reports now

and the standardized error ``z = (score_n - score_N) / se`` (median: the bias in units of se;
robust sd, IQR / 1.349, pooled over candidates) with and without the first-order move, and
``sd/se``: the n-row score's spread over subsamples over its median se, per candidate (below 1:
the se is conservative, so a miss is bias, not width).

The README's table (Trump tweets: ``benchmarks/bench_race.py``'s cache of last-layer features,
2,000 / 4,000 rows, and the transfer benchmark's 500 training rows, hidden state 6; the first
five candidates chose ``DRIFT_ALLOWANCE``, the other four are held out):

    export OMP_NUM_THREADS=1 PICK="all-MiniLM-L6-v2-4000 minilm-random-2000 minilm-noise1.0-2000
        minilm-trunc2-4000 trump_tweets/all-MiniLM"
    python benchmarks/study_coverage.py --seed 0 --repeats 14 --only $PICK --save a.npz
    python benchmarks/study_coverage.py --seed 2 --repeats 40 --only $PICK --save b.npz
    python benchmarks/study_coverage.py --seed 3 --repeats 30 --save c.npz --only \
        minilm-noise0.3-2000 minilm-reinit-top4-2000 sre-embedding-model-2000 \
        trump_tweets/minilm-noise0.3
    python benchmarks/study_coverage.py --seed 1 --repeats 15 --methods hscore --save h.npz \
        --only all-MiniLM-L6-v2-4000 minilm-random-2000 minilm-noise1.0-2000 minilm-trunc2-4000
    python benchmarks/study_coverage.py --load a.npz b.npz c.npz h.npz   # the table, no scoring

(``--features`` defaults to ``/work/race-cache/*.pt /work/transfer-cache/*/*/auto.pt``.)
One jackknife is G + 1 = 21 LogME solves (about 1 s at D = 384 on a busy CPU core).
"""

from __future__ import annotations

import argparse
import glob
import math
import time
from pathlib import Path

import numpy as np
import torch

from hf_logme.confidence import (
    LEVEL,
    at_rows,
    calibrated,
    from_leave_out,
    group_of_rows,
    num_groups,
)
from hf_logme.estimators import get_estimator
from hf_logme.estimators.logme import DEFAULT_OPTIONS
from hf_logme.scoring import _jackknife, score_method

METHODS = {"logme": dict(DEFAULT_OPTIONS), "hscore": {}}


def load_candidates(patterns: list[str], layers: list[int]) -> dict[str, tuple]:
    """name -> (features (N, D) float32 tensor, labels (N,))."""
    out = {}
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            data = torch.load(path, weights_only=False)
            labels = np.asarray(data["labels"])
            p = Path(path)
            if "features" in data:
                out[p.stem] = (data["features"].float(), labels)
            else:
                for layer in layers:
                    if layer in data["layers"]:
                        name = f"{p.parent.parent.name}/{p.parent.name}/{p.stem}/L{layer}"
                        out[name] = (data["layers"][layer].float(), labels)
    return out


def jackknife_of(method: str, features: torch.Tensor, labels: np.ndarray, groups: int):
    cls = get_estimator(method)
    which = group_of_rows(0, len(labels), groups)
    parts = []
    for g in range(groups):
        stats = cls.new_statistics(regression=False)
        stats.update(features[torch.as_tensor(np.flatnonzero(which == g))], labels[which == g])
        parts.append(stats)
    return _jackknife(method, parts, METHODS[method])


def truth_of(method: str, features: torch.Tensor, labels: np.ndarray) -> float:
    stats = get_estimator(method).new_statistics(regression=False)
    stats.update(features, labels)
    return score_method(method, stats, METHODS[method])


def measure(candidates, methods, sizes, repeats, seed, save, budget_s) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    records: dict[str, list] = {
        k: [] for k in ("candidate", "method", "N", "n", "score", "leave_out", "truth")
    }
    truths = {}
    for name, (f, y) in candidates.items():
        for method in methods:
            truths[name, method] = truth_of(method, f, y)
    start = time.perf_counter()
    for repeat in range(repeats):
        for n in sizes:
            for name, (f, y) in candidates.items():
                if n >= len(y):
                    continue
                rows = rng.choice(len(y), n, replace=False)
                groups = num_groups(f.shape[1])
                for method in methods:
                    e = jackknife_of(method, f[torch.as_tensor(rows)], y[rows], groups)
                    if e is None:
                        continue
                    for key, value in (
                        ("candidate", name),
                        ("method", method),
                        ("N", len(y)),
                        ("n", n),
                        ("score", e.score),
                        ("leave_out", e.leave_out),
                        ("truth", truths[name, method]),
                    ):
                        records[key].append(value)
        arrays = {k: np.asarray(v) for k, v in records.items()}
        if save:
            np.savez(save, **arrays)
        elapsed = time.perf_counter() - start
        print(f"repeat {repeat + 1}/{repeats} done, {elapsed:.0f} s", flush=True)
        if budget_s and elapsed > budget_s:
            print(f"stopping: past --budget-s {budget_s}", flush=True)
            break
    return arrays


def robust_sd(values: np.ndarray) -> float:
    """The interquartile range / 1.349: the sd of a normal, blind to the rare draw whose
    jackknife se is ~0 (every leave-out at the no-signal floor)."""
    q1, q3 = np.percentile(values, [25, 75])
    return float((q3 - q1) / 1.349)


def spread(records: dict[str, np.ndarray], method: str, n: int) -> float:
    """The spread of the n-row score over subsamples over its median jackknife se, per
    candidate, averaged over candidates (below 1: the se is conservative)."""
    ratios = []
    for name in sorted(set(records["candidate"])):
        mine = (records["candidate"] == name) & (records["method"] == method) & (records["n"] == n)
        if mine.sum() < 5:
            continue
        se = [
            from_leave_out(s, lo).se
            for s, lo in zip(records["score"][mine], records["leave_out"][mine])
        ]
        ratios.append(np.std(records["score"][mine]) / np.median(se))
    return float(np.mean(ratios)) if ratios else float("nan")


def table(records: dict[str, np.ndarray], level: float = LEVEL) -> None:
    rows = []
    for i in range(len(records["score"])):
        e = from_leave_out(records["score"][i], records["leave_out"][i], level=level)
        n, big, truth = int(records["n"][i]), int(records["N"][i]), float(records["truth"][i])
        moved = at_rows(e, n, big)
        fpc = math.sqrt(1.0 - n / big)
        cal = calibrated(e, n, big)
        rows.append(
            (
                records["method"][i],
                n,
                e.low <= truth <= e.high,
                moved.low <= truth <= moved.high,
                moved.score - fpc * e.half_width <= truth <= moved.score + fpc * e.half_width,
                cal.low <= truth <= cal.high,
                (e.score - truth) / e.se,
                (moved.score - truth) / e.se,
            )
        )
    print(
        f"\nCoverage of the {level:.0%} interval at n rows of the score on all N rows "
        f"(candidates: {len(set(records['candidate']))}); z = (score_n - score_N) / se"
    )
    head = (
        f"{'method':>7} {'n':>5} {'draws':>6} {'now':>6} {'at N':>6} {'at N,fpc':>9} "
        f"{'calibrated':>11} {'median z':>9} {'sd z':>6} {'median z@N':>11} {'sd z@N':>7} "
        f"{'sd/se':>6}"
    )
    print(head)
    for method in dict.fromkeys(records["method"]):
        for n in sorted({r[1] for r in rows if r[0] == method}):
            sel = [r for r in rows if r[0] == method and r[1] == n]
            cov = [np.mean([r[k] for r in sel]) for k in (2, 3, 4, 5)]
            z = np.array([r[6] for r in sel])
            zc = np.array([r[7] for r in sel])
            print(
                f"{method:>7} {n:>5} {len(sel):>6} {cov[0]:>6.2f} {cov[1]:>6.2f} "
                f"{cov[2]:>9.2f} {cov[3]:>11.2f} {np.median(z):>9.3g} {robust_sd(z):>6.3g} "
                f"{np.median(zc):>11.3g} {robust_sd(zc):>7.3g} {spread(records, method, n):>6.2f}"
            )
    print(
        f"binomial sd of a coverage at {level:.0%} over 200 draws: "
        f"{math.sqrt(level * (1 - level) / 200):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--features",
        nargs="+",
        default=["/work/race-cache/*.pt", "/work/transfer-cache/*/*/auto.pt"],
    )
    parser.add_argument(
        "--layers",
        type=int,
        nargs="+",
        default=[6],
        help="hidden states of the transfer cache's files to use",
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="candidate names to keep (substring match)"
    )
    parser.add_argument("--methods", nargs="+", default=["logme"], choices=sorted(METHODS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=0.0, help="stop after a repeat past it")
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--load", type=Path, nargs="+", default=None)
    args = parser.parse_args()
    if args.load:
        parts = [np.load(p, allow_pickle=False) for p in args.load]
        keys = set.intersection(*(set(p.files) for p in parts))
        records = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    else:
        candidates = load_candidates(args.features, args.layers)
        if args.only:
            candidates = {k: v for k, v in candidates.items() if any(s in k for s in args.only)}
        for name, (f, y) in candidates.items():
            print(f"{name}: N = {len(y)}, D = {f.shape[1]}", flush=True)
        records = measure(
            candidates, args.methods, args.sizes, args.repeats, args.seed, args.save, args.budget_s
        )
    table(records)


if __name__ == "__main__":
    main()
