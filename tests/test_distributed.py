"""Statistics summed across two gloo processes equal one process over all the data."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

import hf_logme
from hf_logme.distributed import all_reduce_statistics
from hf_logme.estimators import get_estimator


def _data(regression: bool):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(301, 12)) + 3.0
    if regression:
        labels = features[:, :2] @ rng.normal(size=(2, 2)) + rng.normal(size=(301, 2))
    else:
        labels = np.array(["ant", "bee", "cat", "dog"])[rng.integers(0, 4, 301)]
        labels[:5] = "eel"  # a class only rank 0 sees
    return features, labels


def _worker(rank: int, world: int, port: int, regression: bool, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        features, labels = _data(regression)
        shard = np.arange(len(features))[rank::world]
        metric = hf_logme.LogME(regression=regression, intercept=True)
        if rank == 1 and not regression:
            shard = shard[labels[shard] != "eel"]
        metric.update(features[shard], labels[shard])
        total = all_reduce_statistics(metric.statistics)
        metric = hf_logme.LogME.from_statistics(total, intercept=True)
        # the fourth moments travel too: shrinkage H-score needs them
        shrinkage = None
        if not regression:
            shrinkage = get_estimator("shrinkage_hscore").from_statistics(total).compute()
        queue.put((rank, metric.compute(), metric.statistics.n, shrinkage))
    finally:
        dist.barrier()  # no process tears the group down while another still talks to it
        dist.destroy_process_group()


@pytest.mark.parametrize("regression", [False, True])
def test_two_processes_equal_one(regression):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(2, port, regression, queue), nprocs=2, start_method="spawn")
    results = sorted(queue.get() for _ in range(2))
    features, labels = _data(regression)
    seen = np.concatenate([np.arange(0, 301, 2), np.arange(1, 301, 2)])
    if not regression:
        odd = np.arange(1, 301, 2)
        seen = np.concatenate([np.arange(0, 301, 2), odd[labels[odd] != "eel"]])
    expected = hf_logme.logme(features[seen], labels[seen], regression=regression, intercept=True)
    shrinkage = None
    if not regression:
        shrinkage = hf_logme.score(features[seen], labels[seen], method="shrinkage_hscore")
    for _, score, n, shrinkage_score in results:
        assert n == len(seen)
        assert score == pytest.approx(expected, rel=1e-9)
        assert shrinkage_score == (None if regression else pytest.approx(shrinkage, rel=1e-9))


def test_without_a_process_group_statistics_are_returned_unchanged():
    metric = hf_logme.LogME().update(np.random.rand(10, 3), np.arange(10) % 2)
    assert all_reduce_statistics(metric.statistics) is metric.statistics
