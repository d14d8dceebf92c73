"""Input checks at the estimator boundary: features and labels in, clean tensors out.

Everything past these functions trusts its inputs. Each error names the argument, what arrived and
what to do about it.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ._statistics import GramStatistics

# The largest column sum of squares of the features (the Gram diagonal) for which the float64
# solve stays exact: above, squares and eigenvalue products overflow; below, they are subnormal.
# For n rows of magnitude x that is about 1e-152 < x * sqrt(n) < 1e153 (measured: 100 rows of
# N(0, 1) scaled by 1e152 and 1e-152 give the unscaled score; 1e153 and 1e-154 fail).
GRAM_DIAGONAL_RANGE = (1e-304, 1e307)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a Python bool if it is a ``bool`` or ``numpy.bool_``, else raise.

    Strings are the trap this closes: ``"no"`` and ``"false"`` are truthy, so ``bool(value)``
    would silently turn them into True. Integers (0/1) are refused too: a flag is a flag.

    Raises:
        TypeError: naming ``name`` and echoing the value received.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__}).")


def as_feature_tensor(features: Any, *, name: str = "features") -> torch.Tensor:
    """Return ``features`` as a 2-D floating tensor on its own device, without copying if possible.

    Accepts numpy arrays (float16/32/64, or integers), torch tensors of any floating dtype on any
    device, and nested sequences. Rejects non-2-D input and non-finite values.
    """
    if isinstance(features, torch.Tensor):
        tensor = features.detach()
        if tensor.is_meta:
            raise ValueError(
                f"{name} is on the meta device (shape only, no values); pass materialised "
                f"tensors, e.g. from a model loaded without device_map='meta' / init_empty_weights."
            )
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
        raise ValueError(
            f"{name} has no columns (shape {tuple(tensor.shape)}); pass n_features >= 1."
        )
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
    """Return regression targets as a float64 (n_rows, n_targets) tensor (CPU or their device)."""
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
    if isinstance(labels, (list, tuple)) and len(set(map(type, labels))) > 1:
        # numpy turns [1, "1"] into ["1", "1"] and [True, 1] into [1, 1]: keep them as given.
        array = np.asarray(labels, dtype=object)
    else:
        array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D class labels for classification; got shape {array.shape}. "
            f"For multi-label 0/1 targets or several regression targets, pass regression=True."
        )
    _check_length(array.shape[0], n_rows, name)
    if array.dtype == object:
        array = _object_labels(array, name)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(
                f"{name} contains {bad} NaN or infinite values; drop those rows first."
            )
        if not np.array_equal(array, np.round(array)):
            example = array[array != np.round(array)][0]
            raise ValueError(
                f"{name} are floats that are not integers (e.g. {example!r}), so they are not "
                f"class labels. For continuous targets pass regression=True."
            )
        array = array.astype(np.int64)
    elif array.dtype.kind == "c":
        raise TypeError(f"{name} must not be complex; got dtype {array.dtype}.")
    return array


def _object_labels(array: np.ndarray, name: str) -> np.ndarray:
    """Check labels held as Python objects: none missing, one kind only (O(n), object input only).

    Returns a numeric array when every label is a number, so 1 and 1.0 are one class as they are
    in a numeric array, and the object array itself for strings, bools and other hashables.
    """
    missing = sum(1 for v in array if v is None or (isinstance(v, float) and math.isnan(v)))
    if missing:
        raise ValueError(
            f"{name} has {missing} missing values (None or NaN) among {len(array)}; a missing "
            f"label is not a class. Drop those rows (and their features) first; rank_models and "
            f"extract_features drop unlabelled dataset rows themselves."
        )
    kinds = {_label_kind(v) for v in array}
    if len(kinds) > 1:
        examples = {}
        for v in array:
            examples.setdefault(_label_kind(v), v)
        shown = ", ".join(f"{v!r} ({kind})" for kind, v in sorted(examples.items()))
        raise TypeError(
            f"{name} mixes label types: {shown}. Values such as 1 and '1' would be separate "
            f"classes or silently merged; convert them to one type first."
        )
    if kinds == {"number"}:
        return np.asarray(array.tolist())
    return array


def _label_kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, (str, np.str_)):
        return "str"
    return type(value).__name__


def check_statistics(stats: GramStatistics, name: str) -> None:
    """Checks on accumulated statistics before a solve: feature scale, classes vs. rows.

    O(D) on the Gram diagonal, once per ``compute()``; the batches are not read again.

    Raises:
        ValueError: the squared features overflowed or underflowed float64 (see
            ``GRAM_DIAGONAL_RANGE``); the message says how to rescale.
    Warns:
        UserWarning: integer class labels with more than half as many classes as rows (and at
            least 10): likely a numeric target read as classes.
    """
    diagonal = torch.diagonal(stats.gram)
    largest = float(diagonal.max())
    low, high = GRAM_DIAGONAL_RANGE
    if not math.isfinite(largest) or largest > high:
        raise ValueError(
            f"{name}: features are too large for float64 statistics (largest column sum of "
            f"squares {largest:.3g}, limit {high:.0e}). LogME is scale invariant: divide the "
            f"features by a constant, e.g. their max abs value."
        )
    if 0.0 < largest < low:
        raise ValueError(
            f"{name}: features are too small for float64 statistics (largest column sum of "
            f"squares {largest:.3g}, limit {low:.0e}). LogME is scale invariant: multiply the "
            f"features by a constant, e.g. 1 / their max abs value."
        )
    if stats.regression:
        return
    classes = stats.encoder.classes
    if (
        len(classes) >= 10
        and len(classes) > stats.n / 2
        and all(
            isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_))
            for c in classes
        )
    ):
        warnings.warn(
            f"{name}: {len(classes)} classes among {stats.n} rows, read from integer labels: "
            f"are these numeric targets? Pass regression=True (rank_models / extract_features: "
            f"task='regression'; CLI: --task-type regression) to score them as such.",
            UserWarning,
            stacklevel=3,
        )


def _check_length(n_labels: int, n_rows: int, name: str) -> None:
    if n_labels != n_rows:
        raise ValueError(
            f"{name} has {n_labels} rows but features has {n_rows}; they must be aligned, one "
            f"label per feature row."
        )


# ---------------------------------------------------------------------------------------------
# Option checks shared by the estimators and their statistics (added with the estimator suite).


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum`` (bools are rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def check_float(name: str, value: Any, *, positive: bool = True) -> float:
    """``value`` as a finite float (> 0 when ``positive``); bools and strings are TypeErrors."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        raise ValueError(
            f"{name} must be a finite{' positive' if positive else ''} number; got {value}."
        )
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")
    return value
