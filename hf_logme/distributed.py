"""Several processes, one result: the process group, and statistics summed across it.

``accelerate launch`` (or ``torchrun``) starts one process per device and sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`init_from_env` joins them into a process group (through
accelerate when it is installed). Each process folds its shard into its own accumulator; one
all-reduce of the D x D + K x D sums (plus a small all-gather of the class labels each process
saw) gives every process the statistics of the whole dataset. Works with gloo (CPU) and nccl (GPU).

:func:`broadcast` and :func:`gather` are torch.distributed's own ``broadcast_object_list`` and
``all_gather_object``, with a pass-through outside a process group; accelerate's helpers of the
same names call the same functions behind ``PartialState`` (and its ``gather_object`` flattens
one level of lists), and accelerate is an optional extra, so torch's are used directly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from .estimators._labels import ClassEncoder
from .estimators._statistics import GramStatistics

logger = logging.getLogger(__name__)
T = TypeVar("T")


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def init_from_env() -> bool:
    """Join the process group that ``accelerate launch`` / ``torchrun`` describe in the environment.

    A no-op for a single process or an already initialised group. Returns ``is_distributed()``.
    """
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return is_distributed()
    try:
        from accelerate import PartialState

        PartialState()  # picks the backend (nccl on GPUs, gloo on CPUs) and the local device
    except ImportError:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    logger.info(
        "Process %d of %d.", torch.distributed.get_rank(), torch.distributed.get_world_size()
    )
    return is_distributed()


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside a process group."""
    if not is_distributed():
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def local_device() -> str:
    """The accelerator of this process (``cuda:LOCAL_RANK``), or ``cpu``."""
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def broadcast(value: T, src: int = 0) -> T:
    """``value`` as process ``src`` holds it, on every process (any picklable object)."""
    if not is_distributed():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


def gather(value: T) -> list[T]:
    """Every process's ``value``, in rank order, on every process."""
    if not is_distributed():
        return [value]
    values: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(values, value)
    return values


def on_main_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on process 0 first, then on the others (e.g. a download the others then find
    in the shared cache). Every process must call it.

    Not accelerate's ``main_process_first()``: when the body raises on process 0, that context
    manager never reaches its barrier and the other processes wait forever; here process 0
    re-raises after the barrier, so the others go on (and fail or succeed on their own).
    """
    rank, _ = rank_and_world()
    if not is_distributed():
        return fn()
    result, error = None, None
    if rank == 0:
        try:
            result = fn()
        except Exception as err:  # re-raised after the barrier, which every process must reach
            error = err
    torch.distributed.barrier()
    if rank != 0:
        return fn()
    if error is not None:
        raise error
    return result


def all_reduce_statistics(stats: GramStatistics, group: Any = None) -> GramStatistics:
    """Statistics summed over all processes of ``group`` (the default group when None).

    Every process must call this, in the same order, even one whose shard was empty. The input is
    left unchanged; without an initialised multi-process group it is returned as is.

    Raises:
        ValueError: processes saw features of different dimensions or targets of different kinds.
    """
    if not is_distributed():
        return stats
    dist = torch.distributed
    world = dist.get_world_size(group)
    meta = {
        "n": stats.n,
        "dim": stats.dim,
        "num_targets": stats.num_targets,
        "regression": stats.regression,
        "classes": None if stats.regression else list(stats.encoder.classes),
        # the fourth moments (shrinkage H-score); states saved before them lack them
        "moments": stats.gram is None or stats.norm4_sum is not None,
    }
    metas: list[dict[str, Any]] = [{} for _ in range(world)]
    dist.all_gather_object(metas, meta, group=group)
    dims = {m["dim"] for m in metas if m["dim"] is not None}
    if len(dims) > 1 or len({m["regression"] for m in metas}) > 1:
        raise ValueError(
            f"Processes accumulated incompatible statistics (feature dims {sorted(dims)}, "
            f"regression flags {[m['regression'] for m in metas]}); all must use the same model, "
            f"layer and task."
        )
    if not dims:
        return stats
    dim = dims.pop()
    device = _reduce_device(stats, group)

    total = GramStatistics(regression=stats.regression, n=sum(m["n"] for m in metas))
    if stats.regression:
        counts = {m["num_targets"] for m in metas if m["num_targets"] is not None}
        if len(counts) > 1:
            raise ValueError(
                f"Processes saw different numbers of regression targets: {sorted(counts)}."
            )
        num_targets = counts.pop()
    else:
        total.encoder = ClassEncoder([c for m in metas for c in (m["classes"] or [])])
        num_targets = len(total.encoder)
    local = _aligned(stats, total.encoder, dim, num_targets, device)
    flat = torch.cat([t.reshape(-1) for t in local])
    dist.all_reduce(flat, group=group)
    sizes = [t.numel() for t in local]
    parts = list(torch.split(flat, sizes))
    total.gram = parts[0].reshape(dim, dim)
    total.cross = parts[1].reshape(num_targets, dim)
    total.target_sum = parts[2]
    if stats.regression:
        total.feature_sum_regression, total.target_sq_regression = parts[3], parts[4]
    if all(m["moments"] for m in metas):
        total.norm4_sum, total.norm2_feature_sum = parts[-2].reshape(()), parts[-1]
    return total


def _reduce_device(stats: GramStatistics, group: Any) -> torch.device:
    """nccl reduces CUDA tensors only; gloo takes CPU tensors."""
    if torch.distributed.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu") if stats.device is None else stats.device


def _aligned(
    stats: GramStatistics, encoder: ClassEncoder, dim: int, num_targets: int, device: torch.device
) -> list[torch.Tensor]:
    """This process's sums laid out for the union of targets (zeros for what it never saw)."""
    def zeros(*shape):
        return torch.zeros(shape, dtype=torch.float64, device=device)
    gram, cross, target_sum = zeros(dim, dim), zeros(num_targets, dim), zeros(num_targets)
    extra = [zeros(dim), zeros(num_targets)] if stats.regression else []
    moments = [zeros(1), zeros(dim)]
    if stats.gram is not None and stats.norm4_sum is not None:
        moments[0] += stats.norm4_sum.to(device)
        moments[1] += stats.norm2_feature_sum.to(device)
    if stats.gram is not None:
        gram += stats.gram.to(device)
        if stats.regression:
            cross += stats.cross.to(device)
            target_sum += stats.target_sum.to(device)
            extra[0] += stats.feature_sum_regression.to(device)
            extra[1] += stats.target_sq_regression.to(device)
        else:
            positions = torch.tensor(
                [encoder.index(c) for c in stats.encoder.classes], device=device
            )
            cross.index_add_(0, positions, stats.cross.to(device))
            target_sum.index_add_(0, positions, stats.target_sum.to(device))
    return [gram, cross, target_sum, *extra, *moments]
