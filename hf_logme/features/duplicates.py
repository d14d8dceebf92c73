"""Exact duplicate inputs in a dataset, found before any model runs.

A row whose inputs repeat an earlier row's weighs twice in every estimator, and with n <= D it
makes the exact LogME infinite. ``find_duplicate_inputs`` keys every row by its input columns
(text as is; bytes, image and audio payloads and arrays by a BLAKE2 digest of their values and
shape) straight from the Arrow table, without decoding images or audio.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

_BATCH_ROWS = 10_000


def find_duplicate_inputs(dataset: Any, input_columns: Sequence[str]) -> tuple[np.ndarray, int]:
    """Rows to keep so that each distinct input is scored once, and how many rows repeat one.

    Args:
        dataset: a ``datasets.Dataset`` (selections and shuffles are respected).
        input_columns: the columns a model reads: a text, a text pair, an image or an audio
            column. Labels are not part of the key.

    Returns:
        ``(keep_indices, num_duplicates)``: the ascending int64 indices of the first occurrence
        of every distinct input, and ``len(dataset) - len(keep_indices)``.

    Example:
        >>> import datasets
        >>> texts = ["a", "b", "a", "c", "b"]
        >>> data = datasets.Dataset.from_dict({"text": texts, "label": [0, 1, 0, 1, 1]})
        >>> keep, repeats = find_duplicate_inputs(data, ["text"])
        >>> keep.tolist(), repeats
        ([0, 1, 3], 2)
    """
    columns = _check_columns(dataset, input_columns)
    first: dict[Hashable, int] = {}
    keep: list[int] = []
    row = 0
    for batch in dataset.with_format("arrow").iter(batch_size=_BATCH_ROWS):
        keys = zip(*(_keys(batch.column(name)) for name in columns))
        for key in keys:
            if first.setdefault(key, row) == row:
                keep.append(row)
            row += 1
    indices = np.asarray(keep, dtype=np.int64)
    return indices, row - len(indices)


def _check_columns(dataset: Any, input_columns: Sequence[str]) -> list[str]:
    if isinstance(input_columns, str):
        input_columns = [input_columns]
    columns = list(input_columns)
    if not columns:
        raise ValueError(
            "input_columns is empty; name the column(s) the model reads, e.g. ['text']."
        )
    missing = [name for name in columns if name not in dataset.column_names]
    if missing:
        raise ValueError(
            f"input_columns {missing} are not in the dataset; its columns are "
            f"{dataset.column_names}."
        )
    return columns


def _digest(*parts: bytes) -> bytes:
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))
        hasher.update(part)
    return hasher.digest()


def _keys(column: pa.ChunkedArray | pa.Array) -> list[Hashable]:
    """One hashable key per row of an Arrow column (equal keys <=> equal values)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_struct(kind):  # Image / Audio features: {"bytes", "path"}, or any record
        fields = [_keys(column.field(i)) for i in range(kind.num_fields)]
        valid = column.is_valid().to_pylist()
        return [key if ok else None for key, ok in zip(zip(*fields), valid)]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _list_keys(column)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return [None if value is None else _digest(value) for value in column.to_pylist()]
    return column.to_pylist()  # strings, numbers, bools, dates: the values themselves


def _list_keys(column: pa.Array) -> list[Hashable]:
    """Digest of each row's innermost values together with the lengths at every nesting level."""
    if column.null_count or pa.types.is_fixed_size_list(column.type):
        # Rare layouts: fall back to the Python values (exact, slower).
        return [None if v is None else _digest(repr(v).encode()) for v in column.to_pylist()]
    levels = []
    values = column
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        offsets = np.asarray(values.offsets)
        levels.append(offsets - offsets[0])
        values = values.flatten()
    if values.null_count or not (
        pa.types.is_integer(values.type)
        or pa.types.is_floating(values.type)
        or pa.types.is_boolean(values.type)
    ):
        return [None if v is None else _digest(repr(v).encode()) for v in column.to_pylist()]
    flat = np.ascontiguousarray(values.to_numpy(zero_copy_only=False))
    keys = []
    for row in range(len(column)):
        start, stop, lengths = row, row + 1, []
        for depth, offsets in enumerate(levels):
            if depth:  # lengths of the nested lists in this row's range: [[1, 2]] != [[1], [2]]
                lengths.append(np.diff(offsets[start : stop + 1]).tobytes())
            start, stop = int(offsets[start]), int(offsets[stop])
        keys.append(_digest(flat[start:stop].tobytes(), *lengths))
    return keys
