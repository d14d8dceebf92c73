"""Rankings from two CPU processes (gloo) equal the single-process ranking."""

from __future__ import annotations

import os
import socket

import pytest
import torch.multiprocessing as mp
from hub_fixtures import REVIEWS, build_text_model, reviews_dataset

from hf_logme.ranking import rank_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return [
        str(
            build_text_model(
                root / f"m{seed}",
                seed=seed,
                hidden_size=16 * (1 + seed % 2),
                num_layers=1 + seed % 2,
            )
        )
        for seed in range(3)
    ]


def _dataset(name: str):
    """The rows every process ranks on, built inside the process (spawned workers)."""
    if name == "digits":
        from tiny_models import digits

        return digits(48)
    return reviews_dataset()


def _worker(rank, world, port, models, options, queue, data):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        OMP_NUM_THREADS="1",
    )
    import torch.distributed as dist

    try:
        ranking = rank_models(models, _dataset(data), progress=False, cache=False, **options)
        queue.put((rank, ranking.to_dict()))
    finally:
        if dist.is_initialized():
            dist.barrier()  # no process tears the group down while another still talks to it
            dist.destroy_process_group()


def run_two_processes(models, *, data="reviews", **options):
    """Every process's ranking (rank -> Ranking.to_dict()) from two gloo processes ranking
    ``models`` on the dataset ``data`` names (``_dataset``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(
        _worker, args=(2, port, models, options, queue, data), nprocs=2, start_method="spawn"
    )
    return dict(queue.get() for _ in range(2))


@pytest.mark.parametrize(
    "distribute, layers, batch_size",
    [
        ("samples", "last", 4),
        ("samples", "best", 3),
        ("samples", "last", "auto"),
        ("candidates", "last", "auto"),
    ],
)
def test_two_processes_rank_like_one(models, distribute, layers, batch_size):
    options = {"layers": layers, "max_samples": 20, "batch_size": batch_size}
    both = run_two_processes(models, distribute=distribute, **options)
    reference = rank_models(models, reviews_dataset(), progress=False, cache=False, **options)
    assert both[0] == both[1]  # every process returns the same ranking
    rows = both[0]["rows"]
    assert [row["model"] for row in rows] == [row.model for row in reference.rows]
    for row, expected in zip(rows, reference.rows):
        assert row["score"] == pytest.approx(expected.score, rel=1e-9)
        assert row["num_samples"] == expected.num_samples == 20
        assert row["best_layer"] == expected.best_layer
        if distribute == "candidates":  # whole candidates: one process's row groups
            assert row["score_se"] == pytest.approx(expected.score_se, rel=1e-9)
            assert row["p_best"] == pytest.approx(expected.p_best, abs=1e-12)
        else:  # row groups by each process's own positions, summed group-wise
            low, high = row["interval"]
            assert row["score_se"] > 0 and low < row["score"] < high
    assert sum(row["p_best"] for row in rows) == pytest.approx(1.0)
    assert both[0]["options"]["distribute"] == distribute


def test_a_candidate_failing_in_one_process_is_skipped_by_all(models, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    both = run_two_processes([models[0], str(broken)], distribute="samples")
    assert both[0] == both[1]
    assert [row["status"] for row in both[0]["rows"]] == ["ok", "skipped"]


def test_extract_shards_cover_every_row_once_bit_for_bit(models):
    import torch

    import hf_logme

    full = hf_logme.extract_features(models[1], reviews_dataset(), batch_size=5, progress=False)
    parts = [
        hf_logme.extract_features(
            models[1], reviews_dataset(), batch_size=5, shard=(i, 3), progress=False
        )
        for i in range(3)
    ]
    indices = sorted(int(i) for part in parts for i in part.indices)
    assert indices == sorted(int(i) for i in full.indices)
    position = {int(row): k for k, row in enumerate(full.indices)}
    for part in parts:
        rows = [position[int(row)] for row in part.indices]
        assert torch.equal(part.features, full.features[rows])
        assert list(part.labels) == list(full.labels[rows]) and part.num_samples == len(rows)
    with pytest.raises(ValueError, match=r"shard must be \(index, count\)"):
        hf_logme.extract_features(models[1], reviews_dataset(), shard=(3, 3))


def test_accelerate_launch_runs_the_cli(models, tmp_path):
    import csv
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    launcher = Path(sys.executable).with_name("accelerate")
    if not launcher.exists() and shutil.which("accelerate") is None:
        pytest.skip("accelerate is not installed")
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *REVIEWS])
    common = [
        "rank",
        "--dataset",
        str(data),
        "--models",
        *models,
        "--no-cache",
        "--batch-size",
        "4",
        "-q",
    ]
    launch = [
        str(launcher),
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
        "-m",
        "hf_logme.cli",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*launch, *common, "--distribute", "samples", "--output", str(tmp_path / "two.json")],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("rank  model") == 1  # only the main process reports
    single = subprocess.run(
        [sys.executable, "-m", "hf_logme.cli", *common, "--output", str(tmp_path / "one.json")],
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    two, one = (json.loads((tmp_path / f"{n}.json").read_text())["rows"] for n in ("two", "one"))
    assert [r["model"] for r in two] == [r["model"] for r in one]
    assert [r["score"] for r in two] == pytest.approx([r["score"] for r in one], rel=1e-9)
