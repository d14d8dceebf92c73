"""The options of feature extraction: allowed values, checked before anything expensive runs.

Each check names the argument, what was allowed and what arrived. Device and dtype are resolved
here too, from "auto" to what this machine can do.
"""

from __future__ import annotations

from typing import Any

import torch

POOLINGS = ("auto", "cls", "mean", "pooler", "last", "max", "sentence-transformers")
LAYERS = ("last", "all")
TASKS = ("auto", "classification", "regression", "multilabel", "token-classification")
_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}.")
    return value


def check_positive_int(name: str, value: Any, *, allow: tuple[Any, ...] = ()) -> Any:
    """Return ``value`` if it is a positive int (bools excluded) or one of ``allow``."""
    if value in allow and not isinstance(value, bool):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        extra = f" or one of {list(allow)}" if allow else ""
        raise ValueError(f"{name} must be a positive int{extra}; got {value!r}.")
    return value


def resolve_device(device: str | torch.device) -> torch.device:
    """ "auto" -> cuda, then mps, then cpu; anything else must be a device torch knows."""
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto' or a torch device such as 'cpu', 'cuda', 'cuda:1', 'mps'; "
            f"got {device!r}."
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='auto'.")
    return resolved


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """ "auto" -> bfloat16 on a CUDA GPU that supports it, float32 elsewhere (CPU, MPS, older GPUs).

    bfloat16 has float32's range, so transformer activations do not overflow as they can in
    float16; its 8-bit mantissa costs LogME nothing measurable at the pooled-feature level.
    """
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype; got {dtype}.")
        return dtype
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return _DTYPES[dtype]
    except (KeyError, TypeError):
        raise ValueError(
            f"dtype must be 'auto', a torch floating dtype or one of {sorted(_DTYPES)}; "
            f"got {dtype!r}."
        ) from None
