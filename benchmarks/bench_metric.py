"""The evaluate metric's overhead: add_batch + compute against hf_logme.logme, in the same run.

evaluate writes every batch to an Arrow file and reads all of them back in compute. Timed here,
each the best of ``--repeats`` rounds (the runs take turns) on the same float32 features and
int labels:

- ``hf_logme.logme``: LogME on the arrays, nothing else (the reference, ratio 1);
- ``metric``: ``Logme`` as ``evaluate.load`` gives it, batches of ``--batch`` rows added with
  ``add_batch`` then ``compute()``, Arrow cache files on disk (evaluate's default);
- ``metric, keep_in_memory``: the same with evaluate's in-memory Arrow buffer;
- ``generic List(float32)``: what evaluate does with the same schema by default, each vector
  converted to Python objects on the way in and out (why ``Logme`` encodes batches itself);
- ``generic + numpy format``: the same, read back with evaluate's numpy format.

    python benchmarks/bench_metric.py                       # 20000 x 768, batches of 1000
    python benchmarks/bench_metric.py --size 50000x1024 --batch 512

Goal (issue 5): metric / hf_logme.logme <= 3 at 20000 x 768 float32, batches of 1000.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time
from collections.abc import Callable

import evaluate
import numpy as np
import torch
from datasets import Features, List, Value

import hf_logme
from hf_logme.metric import Logme


class GenericLogme(evaluate.Metric):
    """The same metric through evaluate's generic encoding and reading (baseline, not shipped)."""

    def _info(self) -> evaluate.MetricInfo:
        schema = Features({"predictions": List(Value("float32")), "references": Value("int64")})
        info = evaluate.MetricInfo(description="", citation="", features=schema)
        info.format = "numpy" if self.config_name == "numpy" else None
        return info

    def _compute(self, predictions, references):
        return {
            "logme": hf_logme.logme(np.asarray(predictions, np.float32), np.asarray(references))
        }


def best_times(
    runs: dict[str, Callable[[], float]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Best wall time and value of each run. The runs take turns, ``repeats`` rounds, so that a
    busy machine slows each of them alike."""
    best = {name: (float("inf"), float("nan")) for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            gc.collect()
            start = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - start
            best[name] = (min(best[name][0], seconds), value)
    return best


def run_metric(make, features: np.ndarray, labels: np.ndarray, batch: int) -> float:
    metric = make()
    for start in range(0, len(labels), batch):
        metric.add_batch(
            predictions=features[start : start + batch], references=labels[start : start + batch]
        )
    return metric.compute()["logme"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="20000x768", help="N x D (default 20000x768)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--skip-generic", action="store_true", help="skip the slow generic baselines"
    )
    args = parser.parse_args()
    n, d = (int(v) for v in args.size.lower().split("x"))

    rng = np.random.default_rng(0)
    labels = rng.integers(0, args.classes, n)
    features = (rng.normal(size=(n, d)) + np.eye(args.classes, d)[labels]).astype(np.float32)
    cache = tempfile.mkdtemp(prefix="bench-metric-")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), evaluate {evaluate.__version__}"
    )
    print(f"n={n} D={d} K={args.classes}, float32 features, batches of {args.batch}", end="")
    print(f", best of {args.repeats}\n")

    hf_logme.logme(features[:2000], labels[:2000])  # warm up BLAS and LAPACK
    makers = {
        "metric": lambda: Logme(cache_dir=cache),
        "metric, keep_in_memory": lambda: Logme(keep_in_memory=True),
    }
    if not args.skip_generic:
        makers["generic List(float32)"] = lambda: GenericLogme(cache_dir=cache)
        makers["generic + numpy format"] = lambda: GenericLogme(
            config_name="numpy", cache_dir=cache
        )
    runs = {"hf_logme.logme": lambda: hf_logme.logme(features, labels)}
    for name, make in makers.items():
        runs[name] = lambda make=make: run_metric(make, features, labels, args.batch)
    best = best_times(runs, args.repeats)
    reference, expected = best["hf_logme.logme"]
    rows = [(name, seconds, value) for name, (seconds, value) in best.items()]

    print(f"{'':26s}{'seconds':>9s}{'ratio':>8s}  logme")
    for name, seconds, value in rows:
        print(f"{name:26s}{seconds:9.3f}{seconds / reference:8.2f}  {value:.10f}")
    assert all(abs(value - expected) <= 1e-9 * abs(expected) for _, _, value in rows), (
        "scores differ"
    )


if __name__ == "__main__":
    main()
