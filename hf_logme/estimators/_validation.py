"""Input checks at the estimator boundary: features and labels in, clean tensors out.

Everything past these functions trusts its inputs. Each error names the argument, what arrived and
what to do about it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch


def as_feature_tensor(features: Any, *, name: str = "features") -> torch.Tensor:
    """Return ``features`` as a 2-D floating tensor on its own device, without copying if possible.

    Accepts numpy arrays (float16/32/64, or integers), torch tensors of any floating dtype on any
    device, and nested sequences. Rejects non-2-D input and non-finite values.
    """
    if isinstance(features, torch.Tensor):
        tensor = features.detach()
    else:
        array = np.asarray(features)
        if array.dtype.kind not in "fiub":
            raise TypeError(
                f"{name} must be numeric; got an array of dtype {array.dtype}. "
                f"Pass the feature vectors, not the raw inputs."
            )
        with warnings.catch_warnings():
            # Read-only arrays (e.g. memory maps) are never written to; skip torch's warning.
            warnings.simplefilter("ignore", UserWarning)
            tensor = torch.from_numpy(array)
    if tensor.is_complex():
        raise TypeError(f"{name} must be real; got dtype {tensor.dtype}.")
    if tensor.ndim != 2:
        hint = (
            " Pool token features first, e.g. extract_features(..., pooling='mean')."
            if tensor.ndim == 3
            else " Use features.reshape(-1, 1) for a single feature."
            if tensor.ndim == 1
            else ""
        )
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got shape {tuple(tensor.shape)}.{hint}"
        )
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} has no rows; pass at least one sample.")
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} has no columns (shape {tuple(tensor.shape)}); pass n_features >= 1.")
    if not tensor.is_floating_point():  # integer or bool features
        tensor = tensor.to(torch.float64)
    _check_finite(tensor, name)
    return tensor


def _check_finite(tensor: torch.Tensor, name: str) -> None:
    """Raise if any value is NaN or infinite, saying how many rows are affected."""
    if tensor.device.type == "cpu" and tensor.dtype != torch.bfloat16:
        # numpy's isfinite is ~10x faster than torch's on CPU.
        array = tensor.numpy()
        if np.isfinite(array).all():
            return
        bad_rows = int((~np.isfinite(array)).any(axis=tuple(range(1, array.ndim))).sum())
    else:
        finite = torch.isfinite(tensor)
        if bool(finite.all()):
            return
        bad_rows = int((~finite).reshape(finite.shape[0], -1).any(dim=1).sum())
    raise ValueError(
        f"{name} contains NaN or infinite values in {bad_rows} of {tensor.shape[0]} rows. "
        f"Drop or impute those rows first (a model that produces them may be broken, or run "
        f"in a dtype that overflows: try float32)."
    )


def as_regression_targets(labels: Any, n_rows: int, *, name: str = "labels") -> torch.Tensor:
    """Return regression targets as a float64 (n_rows, n_targets) tensor on the CPU or its device."""
    if isinstance(labels, torch.Tensor):
        tensor = labels.detach()
    else:
        array = np.asarray(labels)
        if array.dtype.kind not in "fiub":
            raise TypeError(
                f"{name} must be numeric for regression=True; got dtype {array.dtype}. "
                f"For class labels, use regression=False."
            )
        tensor = torch.from_numpy(np.array(array, dtype=np.float64, copy=True))
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(1)
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must be 1-D (n_samples,) or 2-D (n_samples, n_targets) for regression; "
            f"got shape {tuple(tensor.shape)}."
        )
    _check_length(tensor.shape[0], n_rows, name)
    if tensor.shape[1] == 0:
        raise ValueError(f"{name} has no target columns; pass at least one.")
    tensor = tensor.to(torch.float64)
    _check_finite(tensor, name)
    return tensor


def as_class_labels(labels: Any, n_rows: int, *, name: str = "labels") -> np.ndarray:
    """Return class labels as a 1-D numpy array of hashable values (ints, strings, bools...)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D class labels for classification; got shape {array.shape}. "
            f"For multi-label 0/1 targets or several regression targets, pass regression=True."
        )
    _check_length(array.shape[0], n_rows, name)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"{name} contains {bad} NaN or infinite values; drop those rows first.")
        if not np.array_equal(array, np.round(array)):
            example = array[array != np.round(array)][0]
            raise ValueError(
                f"{name} are floats that are not integers (e.g. {example!r}), so they are not class "
                f"labels. For continuous targets pass regression=True."
            )
        array = array.astype(np.int64)
    elif array.dtype.kind == "c":
        raise TypeError(f"{name} must not be complex; got dtype {array.dtype}.")
    return array


def _check_length(n_labels: int, n_rows: int, name: str) -> None:
    if n_labels != n_rows:
        raise ValueError(
            f"{name} has {n_labels} rows but features has {n_rows}; they must be aligned, one "
            f"label per feature row."
        )


# ---------------------------------------------------------------------------------------------
# Option checks shared by the estimators and their statistics (added with the estimator suite).


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool; a string or a number is a TypeError, never a truthy value."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False); got {value!r}.")
    return bool(value)


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum`` (bools are rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def check_float(value: Any, name: str, *, positive: bool = True) -> float:
    """``value`` as a finite float (> 0 when ``positive``); bools and strings are TypeErrors."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite{' positive' if positive else ''} number; got {value}.")
    return value


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")
    return value
