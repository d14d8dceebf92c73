"""The label column and the targets LogME scores: classes, regression values or a 0/1 matrix.

``task="auto"`` reads the column's type: ``ClassLabel``, ints, strings and bools are classes;
floats are regression targets; lists are multi-label (label sets of ``ClassLabel``/ints/strings
become a 0/1 matrix; float vectors are taken as a 0/1 matrix when they hold only 0 and 1, and as
several regression targets otherwise). Rows without a label (None, NaN, or ``ClassLabel``'s -1 of
unlabelled test splits) are reported in ``missing`` and left out of the score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .columns import check_column, describe

logger = logging.getLogger(__name__)

_LABEL_NAMES = ("label", "labels", "target", "targets", "score", "class", "category", "y")


@dataclass(frozen=True)
class Targets:
    """Targets of every dataset row.

    Attributes:
        values: classification: (N,) class labels (ints or strings); regression: float64 (N,)
            or (N, K); multilabel: float64 (N, K) 0/1 matrix. Rows flagged in ``missing`` hold a
            placeholder.
        task: "classification", "regression" or "multilabel".
        names: class names of a ``ClassLabel`` or the label of each multi-label column; None
            otherwise.
        missing: (N,) bool, rows without a label.
    """

    values: np.ndarray
    task: str
    names: list[Any] | None
    missing: np.ndarray


def find_label_column(dataset: Any, label_column: str | None) -> str:
    """The label column: the named one, the only ``ClassLabel``, or the only usual label name.

    Raises:
        ValueError: the named column is missing, or no single column qualifies; the message
            lists the columns and says to pass ``label_column=``.
    """
    import datasets

    check_column(dataset, "label_column", label_column)
    if label_column is not None:
        return label_column
    features = dataset.features
    class_labels = [
        name
        for name, f in features.items()
        if isinstance(f, datasets.ClassLabel) or isinstance(_inner(f), datasets.ClassLabel)
    ]
    if len(class_labels) == 1:
        logger.info("Label column: %r (the only ClassLabel).", class_labels[0])
        return class_labels[0]
    named = [name for name in features if name.lower() in _LABEL_NAMES]
    if len(named) == 1 and not class_labels:
        logger.info("Label column: %r.", named[0])
        return named[0]
    found = class_labels or named
    raise ValueError(
        f"cannot tell which column holds the labels"
        f"{f' (candidates: {found})' if found else ''}; columns: {describe(dataset)}. "
        f"Pass label_column=."
    )


def read_targets(dataset: Any, column: str, task: str) -> Targets:
    """Read ``column`` as targets of ``task`` ("auto" decides from the column type).

    Raises:
        ValueError: the column cannot hold targets of the requested task (e.g. strings for
            regression, non-integer floats for classification, scalars for multi-label).
    """
    import datasets

    feature = dataset.features[column]
    values = dataset[column][:]
    inner = _inner(feature)
    if inner is not None:
        if task not in ("auto", "multilabel", "regression"):
            raise ValueError(
                f"label column {column!r} holds lists ({feature}), which are multi-label or "
                f"multi-target regression targets; use task='auto', 'multilabel' or 'regression'."
            )
        return _read_lists(values, inner, task, column)
    if task == "multilabel":
        raise ValueError(
            f"task='multilabel' needs a label column of lists (label sets or 0/1 vectors); "
            f"{column!r} holds {feature}."
        )
    dtype = getattr(feature, "dtype", None)
    is_class_label = isinstance(feature, datasets.ClassLabel)
    if task == "auto":
        task = "regression" if str(dtype).startswith("float") else "classification"
        logger.info("Task: %s (label column %r of type %s).", task, column, feature)
    missing = np.array(
        [
            v is None or (isinstance(v, float) and np.isnan(v)) or (is_class_label and v == -1)
            for v in values
        ],
        dtype=bool,
    )
    if task == "regression":
        if not (str(dtype).startswith(("float", "int", "uint")) or dtype == "bool"):
            raise ValueError(
                f"task='regression' needs numeric labels; {column!r} holds {feature}. "
                f"Use task='classification' for class labels."
            )
        array = np.array([np.nan if m else v for v, m in zip(values, missing)], dtype=np.float64)
        return Targets(array, "regression", None, missing)
    return Targets(
        _class_array(values, missing, column),
        "classification",
        list(feature.names) if is_class_label else None,
        missing,
    )


def _class_array(values: list[Any], missing: np.ndarray, column: str) -> np.ndarray:
    present = [v for v, m in zip(values, missing) if not m]
    if present and isinstance(present[0], float):
        array = np.asarray(present, dtype=np.float64)
        if not np.array_equal(array, np.round(array)):
            raise ValueError(
                f"label column {column!r} holds non-integer floats, which are not classes; use "
                f"task='regression' (or task='auto')."
            )
    fill = next(iter(present), 0)
    return np.asarray([fill if m else v for v, m in zip(values, missing)])


def _read_lists(values: list[Any], inner: Any, task: str, column: str) -> Targets:
    import datasets

    missing = np.array([v is None for v in values], dtype=bool)
    rows = [[] if v is None else v for v in values]
    dtype = str(getattr(inner, "dtype", ""))
    if dtype.startswith("float") or dtype == "bool":  # vectors, one value per target
        lengths = {len(r) for r, m in zip(rows, missing) if not m}
        if len(lengths) != 1:
            raise ValueError(
                f"label column {column!r} holds float lists of different lengths "
                f"{sorted(lengths)}; "
                f"multi-target labels need one value per target in every row."
            )
        width = lengths.pop()
        matrix = np.array(
            [r if not m else [np.nan] * width for r, m in zip(rows, missing)], dtype=np.float64
        )
        matrix[missing] = 0.0
        binary = bool(np.isin(matrix, (0.0, 1.0)).all())
        if task == "auto":
            task = "multilabel" if binary else "regression"
            logger.info("Task: %s (label column %r of float vectors).", task, column)
        if task == "multilabel" and not binary:
            raise ValueError(
                f"task='multilabel' needs 0/1 vectors; {column!r} holds other values. "
                f"Use task='regression' for several continuous targets."
            )
        return Targets(matrix, task, None, missing)
    if task == "regression":
        raise ValueError(
            f"task='regression' needs float vectors; {column!r} holds label sets of {inner}."
        )
    names = list(inner.names) if isinstance(inner, datasets.ClassLabel) else None
    classes = list(range(len(names))) if names else sorted({v for r in rows for v in r})
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(rows), len(classes)), dtype=np.float64)
    for i, row in enumerate(rows):
        matrix[i, [index[v] for v in row]] = 1.0
    logger.info("Task: multilabel, %d labels from sets in column %r.", len(classes), column)
    return Targets(matrix, "multilabel", names or classes, missing)


def _inner(feature: Any) -> Any:
    """The element feature of a list feature, else None."""
    import datasets

    if isinstance(feature, (datasets.List, datasets.LargeList)):
        return feature.feature
    return None
