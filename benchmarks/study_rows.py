"""How many rows does a stable ranking need? The evidence behind ``max_samples``'s default.

The 10 text models of the transfer zoo on a pool of distinct Trump tweets (Android vs iPhone), the
features ``benchmarks/bench_race.py`` caches (run it with ``--prepare-only`` first: 9-20 minutes
of extraction on 2 shared cores). For n in ``--sizes``, ``--repeats`` random subsets of
n rows (stratified by class, seeded) are ranked with the ranking's default score (LogME with
intercept and the small-sample prior, last layer) and compared with the ranking on every pool row:
Kendall tau-b, weighted tau and the top-1. With ``--ground-truth``, each subset's ranking is also
compared with fine-tuning on the same task (``benchmarks/transfer/ground_truth.csv``: the two-seed
mean test accuracy), so the table shows what more rows buy against the question users ask.
``--task food_reviews``: Amazon fine-food reviews instead (``bench_race.py --task food_reviews``).

    PYTHONPATH=$PWD python benchmarks/study_rows.py --ground-truth [--task food_reviews]

One BLAS thread: one 384 x 384 eigendecomposition per candidate and subset, ~0.1 s.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "transfer"))
import bench_race  # noqa: E402
import score as transfer_score  # noqa: E402
import zoo  # noqa: E402

import hf_logme  # noqa: E402
from hf_logme.estimators.logme import RANKING_PRIOR  # noqa: E402
from hf_logme.evaluation import rank_agreement  # noqa: E402
from hf_logme.racing import race_order  # noqa: E402


def ranking_scores(entries: dict, rows: np.ndarray | None) -> dict[str, float]:
    out = {}
    for name, entry in entries.items():
        features, labels = entry["features"], entry["labels"]
        if rows is not None:
            features, labels = features[torch.from_numpy(rows)], labels[rows]
        out[name] = hf_logme.logme(features.double(), labels, intercept=True, prior=RANKING_PRIOR)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="pool size (distinct texts)")
    parser.add_argument("--task", choices=["trump_tweets", "food_reviews"], default="trump_tweets")
    parser.add_argument("--cache", type=Path, default=Path("/work/race-cache"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024, 2000])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--ground-truth", action="store_true", help="also against fine-tuning")
    args = parser.parse_args()
    data, positions = bench_race.pool(args.rows, args.task)
    names = [m.name for m in zoo.TEXT_MODELS]
    entries = {
        n: bench_race.cached_features(n, data, positions, args.cache, args.task) for n in names
    }
    labels = entries[names[0]]["labels"]
    full = ranking_scores(entries, None)
    truth = None
    if args.ground_truth:
        truth_by_task, tolerance, _ = transfer_score.ground_truth(
            HERE / "transfer" / "ground_truth.csv"
        )
        truth = truth_by_task[args.task]
        tie = tolerance.get(args.task, 0.0)
        overall = rank_agreement({m: full[m] for m in truth}, truth, tie_tolerance=tie)
        print(f"all {args.rows} rows vs fine-tuning: {_fmt(overall)}")
    header = "| rows | tau-b vs all rows | weighted tau vs all rows | same top-1 |"
    if truth is not None:
        header += " weighted tau vs fine-tuning | top-1 regret |"
    print(
        f"\n{len(names)} candidates, {args.task}, pool of {args.rows}, "
        f"{args.repeats} subsets per n\n"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for n in [n for n in args.sizes if n <= args.rows]:
        taus, wtaus, top1, ft_w, regret = [], [], 0, [], []
        reps = args.repeats if n < args.rows else 1
        for rep in range(reps):
            # a prefix of a class-stratified order: each class's share, within one row
            order = race_order(len(labels), seed=rep, classes=labels)
            rows = np.sort(order[:n]) if n < args.rows else None
            scores = ranking_scores(entries, rows)
            agreement = rank_agreement(scores, full)
            taus.append(agreement["kendall_tau"])
            wtaus.append(agreement["weighted_tau"])
            top1 += max(scores, key=scores.get) == max(full, key=full.get)
            if truth is not None:
                versus = rank_agreement({m: scores[m] for m in truth}, truth, tie_tolerance=tie)
                ft_w.append(versus["weighted_tau"])
                regret.append(versus["top1_regret"])
        line = f"| {n} | {np.mean(taus):.3f} (min {np.min(taus):.2f}) | {np.mean(wtaus):.3f} |"
        line += f" {top1}/{reps} |"
        if truth is not None:
            line += f" {np.mean(ft_w):.3f} | {np.mean(regret):.3f} |"
        print(line, flush=True)


def _fmt(agreement: dict) -> str:
    return ", ".join(
        f"{k} {agreement[k]:.3f}" for k in ("weighted_tau", "kendall_tau", "top1_regret")
    )


if __name__ == "__main__":
    main()
