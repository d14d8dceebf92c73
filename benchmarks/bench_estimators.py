"""Every estimator's time and peak memory, as ratios to LogME measured in the same run.

Each (estimator, size) is measured in its own subprocess: the features (float32, as models emit;
a decaying spectrum with class structure, as real embeddings have) are generated first, then the
clock and the peak-RSS counter (``/proc/self/clear_refs``) start, and the estimator gathers its
statistics from the whole array and computes. Row-based estimators see their default sample of
10000 rows. A measurement that runs past ``--timeout`` is reported as such.

    python benchmarks/bench_estimators.py                       # both sizes, every estimator
    python benchmarks/bench_estimators.py --sizes 10000x768x10 --methods logme,knn

Goals (issue 9): every statistics-based estimator (Gram, class statistics) within 2x of LogME;
kNN on 10000 rows under 2 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

SIZES = ["10000x768x10", "50000x2048x100"]


def make_data(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    scales = (1.0 / np.sqrt(np.arange(1, d + 1))).astype(np.float32)  # spectrum ~ 1/i
    means = rng.standard_normal((k, d), dtype=np.float32) * scales * 0.5
    features = rng.standard_normal((n, d), dtype=np.float32) * scales + means[labels]
    return features, labels


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure_one(method: str, size: str) -> dict:
    import hf_logme

    n, d, k = (int(v) for v in size.split("x"))
    features, labels = make_data(n, d, k)
    if method in ("leep", "nce"):  # a source head over 1000 classes, logits from a projection
        rng = np.random.default_rng(1)
        features = features @ rng.standard_normal((d, 1000), dtype=np.float32) / np.sqrt(d)
    options = {"num_parameters": 110_000_000} if method == "num_parameters" else {}
    before = rss_mb()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak-RSS counter
    start = time.perf_counter()
    value = hf_logme.score(features, labels, method=method, **options)
    elapsed = time.perf_counter() - start
    return {
        "method": method,
        "size": size,
        "seconds": elapsed,
        "peak_mb": max(peak_rss_mb() - before, 0.0),
        "score": value,
    }


def run(method: str, size: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--one", method, size]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"method": method, "size": size, "timeout": timeout}
    except subprocess.CalledProcessError as err:
        return {"method": method, "size": size, "error": err.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="NxDxK cases")
    parser.add_argument("--methods", help="comma-separated estimator names (default: all)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per measurement")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return

    import torch

    import hf_logme

    methods = args.methods.split(",") if args.methods else sorted(hf_logme.ESTIMATORS)
    methods = ["logme"] + [m for m in methods if m != "logme"]
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}")
    for size in args.sizes:
        results = [run(m, size, args.timeout) for m in methods]
        reference = results[0]
        print(
            f"\nn x D x K = {size}  (LogME {reference.get('seconds', float('nan')):.2f} s, "
            f"{reference.get('peak_mb', float('nan')):.0f} MB)"
        )
        print(
            f"  {'method':<18}{'consumes':<20}{'seconds':>9}{'x LogME':>9}{'peak MB':>9}"
            f"{'x LogME':>9}  score"
        )
        for row in results:
            consumes = hf_logme.ESTIMATORS[row["method"]].consumes
            if "seconds" not in row:
                why = (
                    f"timed out after {row['timeout']:.0f} s" if "timeout" in row else row["error"]
                )
                print(f"  {row['method']:<18}{consumes:<20}  {why}")
                continue
            time_ratio = row["seconds"] / reference["seconds"]
            memory_ratio = row["peak_mb"] / max(reference["peak_mb"], 1.0)
            print(
                f"  {row['method']:<18}{consumes:<20}{row['seconds']:9.2f}{time_ratio:9.2f}"
                f"{row['peak_mb']:9.0f}{memory_ratio:9.2f}  {row['score']:.4g}"
            )


if __name__ == "__main__":
    main()
