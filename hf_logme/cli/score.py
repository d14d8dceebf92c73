"""``hf-logme score FEATURES LABELS``: score features saved to files."""

from __future__ import annotations

import argparse
from pathlib import Path
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


def load_array(path: str, *, what: str) -> Any:
    """An array saved as .npy, .npz (one array), .pt/.pth (a tensor), .safetensors (one tensor),
    or .txt/.csv/.tsv (one value per line, for labels)."""
    suffix = Path(path).suffix.lower()
    if not Path(path).exists():
        raise ValueError(f"{what} file {path!r} does not exist.")
    if suffix in (".npy", ".npz"):
        import numpy as np

        loaded = np.load(path, allow_pickle=False)
        if suffix == ".npy":
            return loaded
        with loaded as archive:
            if len(archive.files) != 1:
                raise ValueError(f"{path} holds {archive.files}; save exactly one array.")
            return archive[archive.files[0]]
    if suffix in (".pt", ".pth"):
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(path)
        if len(tensors) != 1:
            raise ValueError(f"{path} holds tensors {sorted(tensors)}; save exactly one.")
        return next(iter(tensors.values()))
    if suffix in (".txt", ".csv", ".tsv"):
        import numpy as np

        values = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
        try:
            return np.array([float(v) for v in values])
        except ValueError:
            return np.array(values)
    raise ValueError(
        f"Cannot read {what} from {path!r}: use .npy, .npz, .pt, .safetensors (or .txt/.csv for "
        f"labels, one per line)."
    )
