"""The options of feature extraction: allowed values, checked before anything expensive runs.

Each check names the argument, what was allowed and what arrived. Device and dtype are resolved
here too, from "auto" to what this machine can do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from ..estimators._validation import check_bool, check_choice

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


def check_optional_str(name: str, value: Any) -> str | None:
    """Return ``value`` if it is None or a non-empty str (a column or split name)."""
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"{name} must be a column name (str) or None; got {value!r}.")
    return value


#: The options that decide which rows are scored and what their targets are (see ``prepare``).
DATA_FIELDS = ("split", "label_column", "task", "max_samples", "seed")
#: The input column options.
COLUMN_FIELDS = ("text_column", "text_pair_column", "image_column", "audio_column")


@dataclass(frozen=True)
class ExtractionOptions:
    """Every option of feature extraction, validated once, at construction.

    Built by :func:`hf_logme.extract_features` and :func:`hf_logme.rank_models` from their
    keyword arguments (see there for each option's meaning), so that a bad value fails before any
    dataset is read or model loaded, and so that one object, not two dozen keywords, travels
    to the cache key and the report.

    Raises:
        ValueError: a value outside the allowed ones (the message lists them).
        TypeError: a flag that is not a bool, a seed that is not an int, a column that is not a str.
    """

    split: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    image_column: str | None = None
    audio_column: str | None = None
    label_column: str | None = None
    task: str = "auto"
    pooling: str = "auto"
    layers: str = "last"
    batch_size: int | str = "auto"
    device: str | torch.device = "auto"
    dtype: str | torch.dtype = "auto"
    max_length: int | None = None
    max_samples: int | None = None
    seed: int = 0
    revision: str | None = None
    token: str | bool | None = field(default=None, repr=False)
    trust_remote_code: bool = False
    use_safetensors: bool = True
    sampling_rate: int | None = None
    num_workers: int | str = "auto"
    source_predictions: bool = False
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("split", *COLUMN_FIELDS, "label_column", "revision"):
            check_optional_str(name, getattr(self, name))
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("layers", self.layers, LAYERS)
        check_choice("task", self.task, TASKS)
        check_positive_int("batch_size", self.batch_size, allow=("auto",))
        check_positive_int("num_workers", self.num_workers, allow=("auto",))
        for name in ("max_length", "max_samples", "sampling_rate"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int; got {self.seed!r}.")
        for name in ("trust_remote_code", "use_safetensors", "source_predictions"):
            check_bool(name, getattr(self, name))
        if self.token is not None and not isinstance(self.token, (str, bool)):
            raise TypeError(
                f"token must be a str, a bool or None; got {type(self.token).__name__}."
            )
        shard = self.shard
        if shard is not None and not (
            isinstance(shard, tuple)
            and len(shard) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
            and 0 <= shard[0] < shard[1]
        ):
            raise ValueError(
                f"shard must be (index, count) with 0 <= index < count; got {shard!r}."
            )
        if self.pooling == "pooler" and self.layers == "all":
            raise ValueError(
                "pooling='pooler' exists only after the last layer; with layers='all' use 'cls', "
                "'mean', 'max', 'last' or 'auto'."
            )
        resolve_dtype(self.dtype, resolve_device(self.device))  # an unknown one fails now

    @property
    def resolved_device(self) -> torch.device:
        """``device`` with "auto" resolved for this machine."""
        return resolve_device(self.device)

    @property
    def resolved_dtype(self) -> torch.dtype:
        """``dtype`` with "auto" resolved for ``device`` on this machine."""
        return resolve_dtype(self.dtype, self.resolved_device)

    @property
    def columns(self) -> dict[str, str | None]:
        """The input column options by name (``text_column=...``)."""
        return {name: getattr(self, name) for name in COLUMN_FIELDS}

    def replace(self, **changes: Any) -> ExtractionOptions:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def cache_key(self) -> dict[str, Any]:
        """What changes the features' values, and nothing that does not.

        In: the rows and targets (split, label column, task, subsample and its seed), the input
        columns, pooling, layers, truncation and the resolved dtype. Out: batch size, device
        index, worker threads, the token, the loading permissions and ``shard`` (the shards of
        a run sum to the statistics of one process).
        """
        key = {name: getattr(self, name) for name in (*DATA_FIELDS, *COLUMN_FIELDS)}
        key.update(
            pooling=self.pooling,
            layers=self.layers,
            max_length=self.max_length,
            dtype=str(self.resolved_dtype),
        )
        if self.sampling_rate is not None:  # only then: keys of runs without it stay as they were
            key["sampling_rate"] = self.sampling_rate
        return key

    def reported(self) -> dict[str, Any]:
        """The options a ranking reports (columns and task are reported with the dataset)."""
        names = (
            "pooling",
            "layers",
            "batch_size",
            "device",
            "dtype",
            "max_length",
            "max_samples",
            "seed",
            "trust_remote_code",
            "use_safetensors",
        )
        return {name: getattr(self, name) for name in names}
