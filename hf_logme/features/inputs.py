"""Model inputs for any set of dataset rows: tokenised text, processed images, processed audio.

Every source has ``lengths`` (a per-row size for length-sorted batching, or None where all rows
come out the same size) and ``batch(positions) -> dict of CPU tensors``. ``batch`` only reads the
dataset and runs numpy/PIL/processor code, so it runs on worker threads while the model computes.

Text is tokenised once, up front, without padding (a fast tokenizer does thousands of texts per
second per core) and kept as flat int32 arrays; each batch is then padded to its own longest row
on the right. Right padding gives the same states as no padding for bidirectional encoders (the
attention mask hides the pads) and for causal decoders (no token attends to later positions), and
keeps absolute position ids right without passing them, so the tokenizer's ``padding_side`` does
not matter.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .audio import resample, waveform
from .columns import InputColumns

logger = logging.getLogger(__name__)

_TOKENIZE_CHUNK = 2048  # rows tokenised per call: bounds the transient Python lists


class TextSource:
    """Pre-tokenised text, padded per batch."""

    def __init__(
        self,
        dataset: Any,
        columns: tuple[str, ...],
        tokenizer: Any,
        *,
        max_length: int | None,
        forward_args: frozenset[str],
    ) -> None:
        self._pad_id = _pad_id(tokenizer)
        dataset = dataset.select_columns(list(columns))  # never decode other columns (images)
        flat: dict[str, list[np.ndarray]] = {}
        lengths: list[np.ndarray] = []
        truncated = 0
        for start in range(0, len(dataset), _TOKENIZE_CHUNK):
            rows = dataset[start : start + _TOKENIZE_CHUNK]
            texts = _texts(rows[columns[0]], columns[0])
            pairs = _texts(rows[columns[1]], columns[1]) if len(columns) > 1 else None
            encoded = tokenizer(
                texts,
                pairs,
                truncation=max_length is not None,
                max_length=max_length,
                padding=False,
                return_attention_mask=False,
            )
            ids = encoded["input_ids"]
            chunk_lengths = np.fromiter(map(len, ids), np.int64, len(ids))
            if max_length is not None:
                truncated += int((chunk_lengths >= max_length).sum())
            lengths.append(chunk_lengths)
            for key, values in encoded.items():
                if not forward_args or key in forward_args:
                    total = int(chunk_lengths.sum())
                    flat.setdefault(key, []).append(
                        np.fromiter(itertools.chain.from_iterable(values), np.int32, total)
                    )
        self.lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self._flat = {key: np.concatenate(parts) for key, parts in flat.items()}
        self._with_mask = not forward_args or "attention_mask" in forward_args
        if truncated:
            logger.info(
                "%d of %d texts reached max_length=%d tokens (truncated or exactly as long).",
                truncated,
                len(self.lengths),
                max_length,
            )

    def batch(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        lengths = self.lengths[positions]
        width = int(lengths.max())
        out: dict[str, torch.Tensor] = {}
        for key, flat in self._flat.items():
            fill = self._pad_id if key == "input_ids" else 0
            array = np.full((len(positions), width), fill, dtype=np.int64)
            for row, (pos, length) in enumerate(zip(positions, lengths)):
                start = self._offsets[pos]
                array[row, :length] = flat[start : start + length]
            out[key] = torch.from_numpy(array)
        mask = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None]).long()
        if self._with_mask:
            out["attention_mask"] = mask
        else:  # the pooling still needs it
            out["_pool_mask"] = mask
        return out


def _texts(values: list[Any], column: str) -> list[str]:
    missing = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if missing:
        raise ValueError(
            f"text column {column!r} has {len(missing)} values that are not strings (e.g. "
            f"{values[missing[0]]!r}); drop or fill them first, e.g. dataset.filter(lambda r: "
            f"r[{column!r}] is not None)."
        )
    return values


def _pad_id(tokenizer: Any) -> int:
    """Any id works for padding (the mask hides it); prefer the tokenizer's own pad, then eos."""
    for candidate in (
        getattr(tokenizer, "pad_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ):
        if isinstance(candidate, int):
            return candidate
    return 0


class RawSource:
    """Reads raw inputs (strings, RGB images, waveforms) and turns them into model inputs.

    Args:
        dataset: rows to read.
        inputs: the input columns and their modality.
        encode: raw inputs list -> tensor or dict of tensors (a processor or ``preprocess``).
        sampling_rate: target rate of waveforms (the feature extractor's); None keeps each
            sample's own rate.
        column_rate: the rate of an audio column of bare arrays (``sampling_rate=`` of
            ``extract_features``).
    """

    def __init__(
        self,
        dataset: Any,
        inputs: InputColumns,
        encode: Callable[[list[Any]], Any],
        *,
        sampling_rate: int | None = None,
        column_rate: int | None = None,
    ) -> None:
        import datasets

        column = inputs.columns[0]
        view = dataset.select_columns(list(inputs.columns))
        feature = view.features[column]
        if inputs.modality == "audio" and isinstance(feature, datasets.Audio):
            if feature.decode and not datasets.config.TORCHCODEC_AVAILABLE:
                logger.info("torchcodec is not installed: decoding %r as WAV here.", column)
                view = view.cast_column(column, datasets.Audio(decode=False))
        elif isinstance(feature, datasets.Image):
            if not feature.decode:
                view = view.cast_column(column, datasets.Image())
        elif inputs.modality != "text":
            view = view.with_format("numpy")  # pixel or sample arrays: skip Python lists
        self._view, self._inputs, self._encode = view, inputs, encode
        self._rate, self._column_rate = sampling_rate, column_rate
        self.lengths = _audio_sizes(view, column) if inputs.modality == "audio" else None

    def batch(self, positions: np.ndarray) -> Any:
        rows = self._view[positions.tolist()]
        columns = self._inputs.columns
        if self._inputs.modality == "text":
            raw: list[Any] = _texts(rows[columns[0]], columns[0])
            if len(columns) > 1:
                raw = list(zip(raw, _texts(rows[columns[1]], columns[1])))
        elif self._inputs.modality == "image":
            raw = [_rgb(image) for image in rows[columns[0]]]
        else:
            raw = [self._waveform(value) for value in rows[columns[0]]]
        return self._encode(raw)

    def _waveform(self, value: Any) -> np.ndarray:
        signal, rate = waveform(value, sampling_rate=self._column_rate)
        if self._rate is not None and rate != self._rate:
            signal = resample(signal, rate, self._rate)
        return signal


def _rgb(image: Any) -> Any:
    """PIL images in RGB; arrays as (H, W, 3) (grey repeated, alpha dropped)."""
    if hasattr(image, "convert"):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[-1] == 4:
        return array[:, :, :3]
    return array


def _audio_sizes(view: Any, column: str) -> np.ndarray | None:
    """Samples per row (arrays), or encoded bytes per row (a duration proxy); None if unknown."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = view.with_format("arrow")[column]
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    if not pa.types.is_struct(array.type):
        return None
    names = {array.type.field(i).name for i in range(array.type.num_fields)}
    for name, size in (("array", pc.list_value_length), ("bytes", pc.binary_length)):
        if name in names:
            sizes = size(array.field(name)).fill_null(0)
            return sizes.to_numpy(zero_copy_only=False).astype(np.int64)
    return None


def processor_encoder(loaded: Any, modality: str) -> tuple[Callable[[list[Any]], Any], int | None]:
    """The callable that turns raw inputs into model inputs, and the audio rate it expects."""
    processor = loaded.processor
    if not loaded.is_transformers:
        return processor, None
    if modality == "image":
        image_processor = getattr(processor, "image_processor", processor)
        return lambda images: image_processor(images=images, return_tensors="pt"), None
    extractor = getattr(processor, "feature_extractor", processor)
    rate = getattr(extractor, "sampling_rate", None)
    padding = inspect.signature(extractor.__call__).parameters.get("padding")
    # Respect an extractor that pads on its own terms (Whisper: always 30 s); else pad per batch.
    pad = {} if padding is not None and padding.default not in (False, None) else {"padding": True}

    def encode(signals: list[np.ndarray]) -> Any:
        return extractor(signals, sampling_rate=rate, return_tensors="pt", **pad)

    return encode, rate
