"""``hf-logme score FEATURES LABELS``: score features saved to files."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EPILOG, EXIT_OK, positive_int


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "score",
        parents=[common],
        help="score saved features against labels",
        description="Score saved features (n_samples, n_features) against labels.",
        epilog=EPILOG,
    )
    parser.add_argument("features", help="features file: .npy, .npz, .pt or .safetensors")
    parser.add_argument(
        "labels", help="labels file: .npy, .npz, .pt, .safetensors, or .txt/.csv one per line"
    )
    parser.add_argument(
        "--method",
        action="append",
        metavar="NAME[,NAME...]",
        help="estimators, comma-separated or repeated, e.g. logme,hscore,knn "
        "(default: logme); an unknown name lists the registered ones",
    )
    parser.add_argument("--regression", action="store_true", help="labels are continuous targets")
    parser.add_argument(
        "--intercept",
        action="store_true",
        help="LogME: integrate out a per-target intercept (centred features)",
    )
    parser.add_argument(
        "--max-rows",
        type=positive_int,
        help="row cap of methods that read feature rows (kNN, NLEEP, PARC, linear probe...); "
        "default: each method's own (10000)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import hf_logme
    from hf_logme.data import load_array
    from hf_logme.estimators import get_estimator

    from .rank import method_names

    names = method_names(args.method)
    if args.intercept and "logme" not in names:
        raise ValueError("--intercept is an option of --method logme.")
    features = load_array(args.features, what="features")
    labels = load_array(args.labels, what="labels")
    for name in names:
        options: dict[str, Any] = {"regression": args.regression}
        if args.intercept and name == "logme":
            options["intercept"] = True
        gathers_rows = "max_rows" in get_estimator(name)(**options).gather_options()
        if args.max_rows is not None and gathers_rows:
            options["max_rows"] = args.max_rows
        value = hf_logme.score(features, labels, method=name, **options)
        print(f"{name}: {value:.6f}")
    return EXIT_OK
