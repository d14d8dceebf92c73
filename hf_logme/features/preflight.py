"""Dataset checks that hold for every candidate, run once before the first model loads.

A dataset with no rows, one class, no text, or fewer labelled rows than a score needs fails for
every checkpoint alike; finding that after each model has downloaded and run wastes the whole run
and ends in an all-skipped ranking. :func:`check_dataset` finds it from the data alone, in one
pass over the label column and (when the text input is unambiguous) the text columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .columns import InputColumns, check_column, find_inputs, resolve_split
from .options import TASKS, check_choice, check_positive_int
from .sampling import rows_to_score
from .targets import find_label_column

logger = logging.getLogger(__name__)

MIN_ROWS = 2  # the fewest labelled rows any estimator scores (LogME's evidence needs two)
# Integer classes warn when there are at least this many and more than half as many as rows.
_MANY_CLASSES = 10


@dataclass(frozen=True)
class DatasetCheck:
    """What :func:`check_dataset` found; reuse it instead of reading the dataset again.

    Attributes:
        data: the ``datasets.Dataset`` (the chosen split).
        label_column: the label column, as named or detected.
        task: "classification", "regression" or "multilabel" ("auto" resolved).
        num_rows: rows that will be scored (labelled, after ``max_samples``).
        num_classes: distinct classes among them (classification), else None.
        inputs: the input columns when the dataset makes them unambiguous without a model
            (one modality, one column or a known pair), else None: the model's modality decides.
        targets: every row's targets, as read once (``features.targets.Targets``); None for
            token classification, whose tags are read per word at extraction.
        rows: the rows to score (labelled, subsampled), sorted.
    """

    data: Any
    label_column: str
    task: str
    num_rows: int
    num_classes: int | None
    inputs: InputColumns | None
    targets: Any
    rows: np.ndarray


def check_dataset(
    dataset: Any,
    *,
    split: str | None = None,
    label_column: str | None = None,
    task: str = "auto",
    text_column: str | None = None,
    text_pair_column: str | None = None,
    image_column: str | None = None,
    audio_column: str | None = None,
    max_samples: int | None = None,
    seed: int = 0,
) -> DatasetCheck:
    """Raise now for every dataset problem that would make every candidate fail.

    Args:
        dataset: a ``datasets.Dataset``, or a ``DatasetDict`` with ``split``.
        split, label_column, task, text_column, text_pair_column, image_column, audio_column,
            max_samples, seed: as in :func:`hf_logme.extract_features`.

    Returns:
        A :class:`DatasetCheck`.

    Raises:
        ValueError: no rows; an unknown column; ``max_samples`` not a positive int; a label
            column without labels; fewer than ``MIN_ROWS`` labelled rows to score; a single class
            among them; a text column with values that are not strings, or only empty texts.
        TypeError: ``dataset`` is not a Dataset or DatasetDict.

    Warns (logged):
        Rows without a label (left out), some empty texts, and integer labels with nearly as many
        classes as rows (likely a numeric target: ``task="regression"``).

    Example:
        >>> import datasets
        >>> ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 0, 0]})
        >>> check_dataset(ds)
        Traceback (most recent call last):
        ...
        ValueError: label column 'label' holds a single class (0) among the 3 rows to score; ...
    """
    check_choice("task", task, TASKS)
    if max_samples is not None:
        check_positive_int("max_samples", max_samples)
    data = resolve_split(dataset, split)
    if len(data) == 0:
        raise ValueError(
            f"the dataset{f' split {split!r}' if split else ''} has no rows; pass a dataset with "
            f"labelled examples (check --split and any slicing such as train[:0])."
        )
    explicit = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "image_column": image_column,
        "audio_column": audio_column,
    }
    for option, column in explicit.items():
        check_column(data, option, column)
    label_column = find_label_column(data, label_column)
    from .tokens import TOKEN_TASK, is_token_task  # tokens imports extract, which imports this

    if is_token_task(data, label_column, task, text_column):
        # Words and tags per sentence: sentences are sampled and words counted at extraction.
        rows = np.arange(len(data))
        return DatasetCheck(data, label_column, TOKEN_TASK, len(rows), None, None, None, rows)
    targets, rows = rows_to_score(data, label_column, task, max_samples, seed)
    if len(rows) < MIN_ROWS:
        raise ValueError(
            f"only {len(rows)} labelled row(s) to score (max_samples={max_samples}); a score needs "
            f"at least {MIN_ROWS}. Raise max_samples or use a larger dataset."
        )
    num_classes = None
    if targets.task == "classification":
        classes = np.unique(targets.values[rows])
        num_classes = len(classes)
        if num_classes < 2:
            raise ValueError(
                f"label column {label_column!r} holds a single class ({classes[0].item()!r}) "
                f"among the {len(rows)} rows to score; a transferability score needs at least 2 "
                f"classes. Check label_column and the split."
            )
        _warn_many_classes(label_column, classes, len(rows))
    inputs = _unambiguous_inputs(data, explicit, label_column)
    if inputs is not None and inputs.modality == "text":
        for column in inputs.columns:
            _check_texts(data, column, rows)
    return DatasetCheck(
        data, label_column, targets.task, len(rows), num_classes, inputs, targets, rows
    )


def _warn_many_classes(column: str, classes: np.ndarray, num_rows: int) -> None:
    integer = classes.dtype.kind in "iu"
    if integer and len(classes) >= _MANY_CLASSES and len(classes) > num_rows / 2:
        logger.warning(
            "Label column %r: %d classes among %d rows, from integer labels. If these are numeric "
            "targets, pass task='regression' (CLI: --task-type regression).",
            column,
            len(classes),
            num_rows,
        )


def _unambiguous_inputs(
    data: Any, explicit: dict[str, str | None], label_column: str
) -> InputColumns | None:
    """The input columns when the data alone decides them; None when the model must."""
    try:
        return find_inputs(data, None, **explicit, exclude=(label_column,))
    except (ValueError, LookupError):
        if any(explicit.values()):
            raise  # a named column that cannot work fails for every model alike
        return None


def _check_texts(data: Any, column: str, rows: np.ndarray) -> None:
    """Every scored text must be a string, and not all of them empty."""
    texts = data.select_columns([column])
    if len(rows) != len(data):
        texts = texts.select(rows)
    values = texts[column][:]
    not_text = [v for v in values if not isinstance(v, str)]
    if not_text:
        raise ValueError(
            f"text column {column!r} has {len(not_text)} values that are not strings (e.g. "
            f"{not_text[0]!r}) among the rows to score; drop or fill them first, e.g. "
            f"dataset.filter(lambda r: r[{column!r}] is not None)."
        )
    empty = sum(1 for v in values if not v.strip())
    if empty == len(values):
        raise ValueError(
            f"text column {column!r} holds only empty texts in the {len(values)} rows to score; "
            f"pass the column that holds the inputs (text_column=)."
        )
    if empty:
        logger.warning("Text column %r: %d of %d texts are empty.", column, empty, len(values))
