"""LogME speed and memory, measured against the hardware floor in the same run.

Floor: what any exact LogME must do at least once - the float64 Gram matrix F^T F (best of numpy,
which calls BLAS syrk, and torch) plus one float64 eigendecomposition of the D x D result (best of
numpy and torch). ``logme()`` is timed on float32 features, conversion included; the floor is
given its float64 copy of F for free. Each figure is the best of ``--repeats`` runs.

    python benchmarks/bench_logme.py                 # speed at both sizes + streaming memory
    python benchmarks/bench_logme.py --naive         # also time a naive per-class implementation
    python benchmarks/bench_logme.py --sizes 20000x768x10 --skip-memory

Goals (issue 2): ratio <= 1.25 at n=50000, D=2048, K=100 and <= 1.35 at n=30000, D=1024, K=100;
peak RSS growth <= 100 MB while streaming 1,000,000 x 768 float32 rows in batches of 4096.
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import time

import numpy as np
import torch

import hf_logme


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def naive_logme(features: np.ndarray, labels: np.ndarray) -> float:
    """The common public recipe: SVD of an n x D float64 copy, then a loop over classes with an
    11-step fixed point (tol 1e-2) per class. Written here as a baseline, not used by the
    package."""
    f = features.astype(np.float64)
    n, d = f.shape
    u, s, vh = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for k in np.unique(labels):
        y = (labels == k).astype(np.float64)
        x = u.T @ y
        x2 = x**2
        res_x2 = y @ y - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / (t + sigma) ** 2).sum()
            res2 = (x2 / (1 + sigma / t) ** 2).sum() + res_x2
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t < 0.01:
                break
        evidence = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def floor_times(features: np.ndarray, repeats: int) -> tuple[float, float, float, float]:
    """Best times of float64 F^T F (numpy, torch) and of eigh of the result (numpy, torch); the
    float64 copy of F is made outside the clock and freed on return."""
    f64 = features.astype(np.float64)
    t64 = torch.from_numpy(f64)
    gram = f64.T @ f64
    return (
        best_time(lambda: f64.T @ f64, repeats),
        best_time(lambda: t64.T @ t64, repeats),
        best_time(lambda: np.linalg.eigh(gram), repeats),
        best_time(lambda: torch.linalg.eigh(torch.from_numpy(gram)), repeats),
    )


def bench_speed(n: int, d: int, k: int, repeats: int, naive: bool) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k, n)
    # Class structure plus noise, float32 as models emit.
    features = rng.standard_normal((k, d), dtype=np.float32)[labels] * 0.5 + rng.standard_normal(
        (n, d), dtype=np.float32
    )
    t_gram_np, t_gram_torch, t_eigh_np, t_eigh_torch = floor_times(features, repeats)
    floor = min(t_gram_np, t_gram_torch) + min(t_eigh_np, t_eigh_torch)
    score = hf_logme.logme(features, labels)
    t_logme = best_time(lambda: hf_logme.logme(features, labels), repeats)
    print(f"n={n} D={d} K={k}: LogME {score:.6f}")
    print(
        f"  floor: gram numpy {t_gram_np:.2f}s torch {t_gram_torch:.2f}s, "
        f"eigh numpy {t_eigh_np:.2f}s torch {t_eigh_torch:.2f}s -> {floor:.2f}s"
    )
    print(f"  logme(float32): {t_logme:.2f}s   ratio to floor {t_logme / floor:.3f}")
    if naive:
        start = time.perf_counter()
        naive_score = naive_logme(features, labels)
        t_naive = time.perf_counter() - start
        print(
            f"  naive per-class SVD recipe: {t_naive:.1f}s (score {naive_score:.6f}), "
            f"{t_naive / t_logme:.1f}x slower than logme()"
        )
    if torch.cuda.is_available():
        cuda_features = torch.from_numpy(features).cuda()
        cuda_labels = torch.from_numpy(labels).cuda()
        hf_logme.logme(cuda_features, cuda_labels)  # warm-up
        t_cuda = best_time(lambda: hf_logme.logme(cuda_features, cuda_labels), repeats)
        print(
            f"  logme on {torch.cuda.get_device_name()}: {t_cuda:.3f}s "
            f"({t_logme / t_cuda:.1f}x the CPU time)"
        )


def bench_memory(rows: int, d: int, batch: int) -> None:
    rng = np.random.default_rng(1)

    def batches():
        for start in range(0, rows, batch):
            m = min(batch, rows - start)
            yield rng.standard_normal((m, d), dtype=np.float32), rng.integers(0, 10, m)

    gc.collect()
    before = rss_mb()
    peak_before = peak_rss_mb()
    metric = hf_logme.LogME()
    start = time.perf_counter()
    for features, labels in batches():
        metric.update(features, labels)
    score = metric.compute()
    elapsed = time.perf_counter() - start
    growth = peak_rss_mb() - max(before, 0.0)
    print(
        f"streaming {rows} x {d} float32 ({rows * d * 4 / 1e9:.1f} GB) in batches of {batch}: "
        f"{elapsed:.1f}s, LogME {score:.6f}"
    )
    print(
        f"  RSS before {before:.0f} MB, peak growth {growth:.0f} MB "
        f"(peak before {peak_before:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["50000x2048x100", "30000x1024x100"],
        help="NxDxK cases to time",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive", action="store_true", help="also time a naive per-class recipe")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    if not args.skip_memory:  # first, before large arrays raise the process's peak
        bench_memory(args.memory_rows, 768, 4096)
    for size in args.sizes:
        n, d, k = (int(v) for v in size.split("x"))
        bench_speed(n, d, k, args.repeats, args.naive)


if __name__ == "__main__":
    main()
