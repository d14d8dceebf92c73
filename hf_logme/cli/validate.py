"""``hf-logme validate``: how well a saved ranking agrees with fine-tuning results."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

from .common import EPILOG, EXIT_OK

_STATISTICS = (
    "weighted_tau",
    "kendall_tau",
    "spearman",
    "pearson",
    "top1_hit",
    "top1_regret",
    "top3_recall",
)


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "validate",
        parents=[common],
        help="compare a ranking with fine-tuning results",
        description="Rank agreement (weighted tau, Kendall tau, Spearman, Pearson, top-1 hit and "
        "regret, top-3 recall) between a ranking saved with --output ranking.json and a CSV of "
        "fine-tuning results. Model ids are matched exactly.",
        epilog=EPILOG,
    )
    parser.add_argument("--ranking", required=True, help="a ranking saved as .json")
    parser.add_argument(
        "--ground-truth",
        required=True,
        help="CSV with a 'model' column and a metric column; several rows of one "
        "model (seeds) are averaged",
    )
    parser.add_argument(
        "--metric",
        default="accuracy",
        help="the ground-truth column, higher is better (default: accuracy)",
    )
    parser.add_argument(
        "--method",
        default=None,
        help="the ranking's method to validate (default: its primary method)",
    )
    parser.add_argument(
        "--tie-tolerance",
        type=float,
        default=0.0,
        help="ground-truth values closer than this are ties (e.g. the seed spread)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hf_logme.evaluation import rank_agreement
    from hf_logme.results import Ranking

    if not Path(args.ranking).is_file():
        raise ValueError(f"--ranking {args.ranking!r} does not exist.")
    ranking = Ranking.from_json(args.ranking)
    method = args.method or ranking.primary
    if method not in ranking.methods:
        raise ValueError(
            f"--method {method!r} is not in the ranking; it has {list(ranking.methods)}."
        )
    scores = {row.model: row.scores[method] for row in ranking.scored}
    truth = read_ground_truth(args.ground_truth, args.metric)
    result = rank_agreement(scores, truth, tie_tolerance=args.tie_tolerance)
    if args.json:
        print(json.dumps({"method": method, "metric": args.metric, **result}, indent=2))
        return EXIT_OK
    print(f"{method} vs {args.metric} over {result['num_models']} models")
    for name in _STATISTICS:
        value = result[name]
        print(f"  {name:13s} {'nan' if math.isnan(value) else f'{value:.4f}'}")
    print(f"  chosen        {', '.join(result['chosen'])}")
    print(f"  best          {', '.join(result['best'])}")
    return EXIT_OK


def read_ground_truth(path: str, metric: str) -> dict[str, float]:
    """model id -> mean of ``metric`` over that model's rows of the CSV at ``path``."""
    if not Path(path).is_file():
        raise ValueError(f"--ground-truth {path!r} does not exist.")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed, flag in (("model", "--ground-truth"), (metric, "--metric")):
            if needed not in columns:
                raise ValueError(
                    f"{flag}: {path} has no column {needed!r}; its columns: {columns}."
                )
        values: dict[str, list[float]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                values.setdefault(row["model"], []).append(float(row[metric]))
            except (TypeError, ValueError):
                raise ValueError(
                    f"--ground-truth {path} line {line}: {metric}={row[metric]!r} is not a number."
                ) from None
    return {model: sum(v) / len(v) for model, v in values.items()}
