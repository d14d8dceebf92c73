"""Audio samples to mono float32 waveforms at the feature extractor's sampling rate.

datasets 5 decodes its ``Audio`` feature with torchcodec, which needs FFmpeg and a torch build it
was compiled against. Where torchcodec is not importable, ``Audio`` columns are read undecoded
(``Audio(decode=False)``) and WAV files (PCM, 8 to 32 bit) are decoded here with the standard
library; other formats then need torchcodec, or a column of ``{"array", "sampling_rate"}`` dicts.
Resampling is a windowed-sinc polyphase filter written here in torch, so neither torchaudio nor
librosa is required.
"""

from __future__ import annotations

import functools
import io
import math
import wave
from typing import Any

import numpy as np
import torch

_ZERO_CROSSINGS = 6  # half-width of the sinc kernel, in zero crossings of the lower rate
_ROLLOFF = 0.99  # cutoff as a fraction of the lower Nyquist frequency


def waveform(value: Any, *, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """One audio sample as a (mono float32 array, sampling rate) pair.

    Args:
        value: a dict (or datasets' decoded audio object) with ``array`` and ``sampling_rate``;
            a dict with WAV ``bytes`` or a local ``path`` (an undecoded ``Audio`` value); or a
            bare 1-D array, with ``sampling_rate`` given.
        sampling_rate: the rate of bare arrays.

    Raises:
        ValueError: a bare array without ``sampling_rate``, or an encoded file that is not PCM WAV.
    """
    if isinstance(value, dict) and "array" not in value and ("bytes" in value or "path" in value):
        return _decode_wav(value.get("bytes"), value.get("path"))
    if isinstance(value, (np.ndarray, list, tuple, torch.Tensor)):
        if sampling_rate is None:
            raise ValueError(
                "audio values are bare arrays: pass sampling_rate= (their rate in Hz), or store "
                "them as {'array': ..., 'sampling_rate': ...} dicts."
            )
        array, rate = value, sampling_rate
    else:
        array, rate = value["array"], value["sampling_rate"]
    return _mono(np.asarray(array, dtype=np.float32)), int(rate)


def _mono(array: np.ndarray) -> np.ndarray:
    if array.ndim == 1:
        return array
    if array.ndim == 2:  # channels are the shorter axis
        return array.mean(axis=0 if array.shape[0] <= array.shape[1] else 1).astype(np.float32)
    raise ValueError(f"an audio sample must be 1-D or 2-D (channels); got shape {array.shape}.")


def _decode_wav(data: bytes | None, path: str | None) -> tuple[np.ndarray, int]:
    source = io.BytesIO(data) if data is not None else path
    try:
        with wave.open(source, "rb") as reader:
            width, channels = reader.getsampwidth(), reader.getnchannels()
            rate, raw = reader.getframerate(), reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(
            f"cannot decode audio {path or '(bytes)'} without torchcodec: only PCM WAV is decoded "
            f"here ({err}). Install torchcodec (and FFmpeg) for other formats, or give the column "
            f"as {{'array', 'sampling_rate'}} dicts."
        ) from err
    if width == 1:  # 8-bit WAV is unsigned
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        bytes3 = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        ints = (
            bytes3[:, 0].astype(np.int32)
            | (bytes3[:, 1].astype(np.int32) << 8)
            | (bytes3[:, 2].astype(np.int8).astype(np.int32) << 16)
        )
        samples = ints.astype(np.float32) / float(1 << 23)
    else:
        dtype = {2: np.int16, 4: np.int32}[width]
        samples = np.frombuffer(raw, f"<{np.dtype(dtype).str[1:]}").astype(np.float32)
        samples /= float(np.iinfo(dtype).max) + 1.0
    return samples.reshape(-1, channels).mean(axis=1).astype(np.float32), rate


def resample(signal: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D signal with a Hann-windowed sinc low-pass (band-limited interpolation).

    The output has ``ceil(len * new_rate / orig_rate)`` samples; sample ``m`` estimates the
    signal at time ``m / new_rate``. Frequencies above ``0.99 *`` the lower Nyquist frequency
    are removed (anti-aliasing when downsampling).
    """
    if orig_rate == new_rate or signal.size == 0:
        return signal
    divisor = math.gcd(orig_rate, new_rate)
    down, up = orig_rate // divisor, new_rate // divisor
    kernels, width = _kernels(down, up)
    tensor = torch.from_numpy(np.require(signal, np.float32, ["C", "W"]))
    padded = torch.nn.functional.pad(tensor[None, None], (width, width + down))
    blocks = torch.nn.functional.conv1d(padded, kernels, stride=down)  # (1, up, n_blocks)
    out = blocks[0].transpose(0, 1).reshape(-1)
    return out[: math.ceil(signal.size * up / down)].numpy()


@functools.lru_cache(maxsize=16)
def _kernels(down: int, up: int) -> tuple[torch.Tensor, int]:
    """(up, 1, K) filters: phase j computes the output at input position ``j * down / up``."""
    cutoff = min(1.0, up / down) * _ROLLOFF  # in cycles per input sample, times 2
    width = math.ceil(_ZERO_CROSSINGS / cutoff)
    taps = torch.arange(2 * width + down, dtype=torch.float64)
    phases = torch.arange(up, dtype=torch.float64)[:, None] * down / up
    t = phases + width - taps  # distance from each tap to the output position, in input samples
    window = torch.where(t.abs() <= width, 0.5 * (1 + torch.cos(math.pi * t / width)), 0.0)
    kernels = cutoff * torch.special.sinc(cutoff * t) * window
    return kernels.to(torch.float32)[:, None, :], width
