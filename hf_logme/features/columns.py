"""Which split and which input columns of the user's dataset to read.

Columns are detected from the dataset's feature types when that is unambiguous; otherwise the
error lists every column with its type and names the option to set. Each guess is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Column pairs of sentence-pair tasks (NLI, paraphrase, QA), in the order the model reads them.
_TEXT_PAIRS = (
    ("premise", "hypothesis"),
    ("sentence1", "sentence2"),
    ("sentence_A", "sentence_B"),
    ("question1", "question2"),
    ("question", "sentence"),
    ("question", "passage"),
    ("question", "context"),
    ("query", "passage"),
    ("text_a", "text_b"),
    ("text1", "text2"),
)
# Names that mark the one text column among several string columns.
_TEXT_NAMES = ("text", "sentence", "review", "content", "document", "tweet", "comment", "utterance")


@dataclass(frozen=True)
class InputColumns:
    """The input column(s) a model reads: (text,), (text, pair), (image,) or (audio,)."""

    modality: str
    columns: tuple[str, ...]


def resolve_split(dataset: Any, split: str | None, *, option: str = "split") -> Any:
    """A ``datasets.Dataset`` from a Dataset, or from a DatasetDict and ``split``.

    ``split`` takes datasets' split syntax, as ``load_dataset(split=...)`` does, for every kind
    of dataset: a name (``"train"``), a slice (``"train[:50]"``, ``"test[10%:20%]"``,
    ``"train[-100:]"``) or a union (``"train[:10]+test[:10]"``). A Dataset is its own split: a
    bare name is accepted as it is (a debug message), a slice selects its rows.

    Raises:
        ValueError: a DatasetDict with several splits and no ``split``, an unknown split, a
            malformed slice, or a slice naming another split than a Dataset's own.
        TypeError: anything that is not a Dataset or DatasetDict.
    """
    import datasets

    if isinstance(dataset, datasets.Dataset):
        if split is None:
            return dataset
        if _is_name(split):
            logger.debug("split=%r ignored: a Dataset was passed, not a DatasetDict.", split)
            return dataset
        own = str(dataset.split) if dataset.split is not None else None
        names = {part.split("[", 1)[0].strip() for part in split.split("+")}
        if len(names) > 1 or (own is not None and names != {own}):
            raise ValueError(
                f"{option} {split!r} names {sorted(names)}, but the dataset is one split"
                f"{f' ({own!r})' if own else ''}; slice that one, e.g. "
                f"{(own or 'train') + '[:100]'!r}, or pass the DatasetDict."
            )
        return _sliced({next(iter(names)): dataset}, split, option)
    if isinstance(dataset, datasets.DatasetDict):
        names = list(dataset)
        if split is None:
            if len(names) == 1:
                logger.info("Using the only split, %r.", names[0])
                return dataset[names[0]]
            raise ValueError(
                f"dataset is a DatasetDict with splits {names}; pass {option}= to choose one "
                f"(e.g. {option}={names[0]!r})."
            )
        if split in dataset:
            return dataset[split]
        if _is_name(split):
            raise ValueError(f"{option} {split!r} is not in the dataset; its splits are {names}.")
        return _sliced(dict(dataset), split, option)
    raise TypeError(
        f"dataset must be a datasets.Dataset or DatasetDict; got {type(dataset).__name__}. "
        f"Build one with datasets.Dataset.from_dict / from_pandas."
    )


def _is_name(split: str) -> bool:
    """A bare split name (no slice, no union)."""
    return "[" not in split and "+" not in split


def _sliced(splits: dict[str, Any], split: str, option: str) -> Any:
    """The rows ``split`` (datasets' syntax) selects from ``splits``, through
    ``datasets.ReadInstruction``, so slices mean what they mean in ``load_dataset``."""
    import datasets

    try:
        instruction = datasets.ReadInstruction.from_spec(split)
    except (ValueError, AssertionError) as err:
        raise ValueError(
            f"{option} {split!r} is not a split name or slice: {err}. Write e.g. 'train', "
            f"'train[:50]', 'train[10%:20%]' or 'train[:10]+test[:10]'."
        ) from err
    try:
        parts = instruction.to_absolute({name: len(data) for name, data in splits.items()})
    except ValueError as err:
        raise ValueError(
            f"{option} {split!r}: {err} (the dataset's splits are {sorted(splits)})."
        ) from err
    selected = [splits[p.splitname].select(range(p.from_, p.to)) for p in parts]
    logger.info("Using %s: %d rows.", split, sum(len(s) for s in selected))
    return selected[0] if len(selected) == 1 else datasets.concatenate_datasets(selected)


def describe(dataset: Any) -> str:
    """``"name (type), ..."`` for every column, for error messages."""
    return ", ".join(
        f"{name!r} ({_type_name(feature)})" for name, feature in dataset.features.items()
    )


def check_column(dataset: Any, option: str, column: str | None) -> None:
    """Raise if an explicitly named column is not in the dataset."""
    if column is not None and column not in dataset.column_names:
        raise ValueError(
            f"{option}={column!r} is not a column of the dataset; its columns are: "
            f"{describe(dataset)}."
        )


def find_inputs(
    dataset: Any,
    modality: str | None,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    image_column: str | None = None,
    audio_column: str | None = None,
    exclude: tuple[str, ...] = (),
) -> InputColumns:
    """The input columns for a model of ``modality`` (None: whichever one the dataset has).

    Args:
        dataset: the ``datasets.Dataset``.
        modality: "text", "image", "audio", or None for custom modules.
        text_column, text_pair_column, image_column, audio_column: explicit choices, which win.
        exclude: columns that are not inputs (the label column).

    Raises:
        ValueError: a named column is missing, or the choice is ambiguous (the message lists the
            columns and the option to set).
        LookupError: the dataset has no column of that modality (the caller turns this into an
            ``UnsupportedModelError`` for a model of that modality).
    """
    for option, column in (
        ("text_column", text_column),
        ("text_pair_column", text_pair_column),
        ("image_column", image_column),
        ("audio_column", audio_column),
    ):
        check_column(dataset, option, column)
    if text_pair_column is not None and text_column is None:
        raise ValueError("text_pair_column needs text_column too: pass both.")
    explicit = {
        "text": (text_column, text_pair_column) if text_pair_column else (text_column,),
        "image": (image_column,),
        "audio": (audio_column,),
    }
    if modality is None:
        given = [name for name, cols in explicit.items() if cols[0] is not None]
        if len(given) > 1:
            raise ValueError(f"columns for several modalities were given ({given}); pass one.")
        if given:
            modality = given[0]
        else:
            found = [m for m in ("text", "image", "audio") if _candidates(dataset, m, exclude)]
            if len(found) != 1:
                raise ValueError(
                    f"cannot tell which column the model reads (found {found or 'no'} input "
                    f"columns); columns: {describe(dataset)}. Pass text_column=, image_column= "
                    f"or audio_column=."
                )
            modality = found[0]
    if explicit[modality][0] is not None:
        return InputColumns(modality, explicit[modality])
    candidates = _candidates(dataset, modality, exclude)
    option = f"{modality}_column"
    if not candidates:
        raise LookupError(
            f"the model reads {modality} but the dataset has no {modality} column; columns: "
            f"{describe(dataset)}. Pass {option}= if one of them holds {modality}."
        )
    if modality == "text" and len(candidates) > 1:
        for first, second in _TEXT_PAIRS:
            if first in candidates and second in candidates:
                logger.info("Text pair columns: %r and %r.", first, second)
                return InputColumns("text", (first, second))
        named = [c for c in candidates if c.lower() in _TEXT_NAMES]
        if len(named) == 1:
            candidates = named
    if len(candidates) > 1:
        extra = " (and text_pair_column= for sentence pairs)" if modality == "text" else ""
        raise ValueError(
            f"several columns could be the {modality} input: {candidates}; pass "
            f"{option}={candidates[0]!r} or another{extra}. Columns: {describe(dataset)}."
        )
    logger.info("%s column: %r.", modality.capitalize(), candidates[0])
    return InputColumns(modality, (candidates[0],))


def _candidates(dataset: Any, modality: str, exclude: tuple[str, ...]) -> list[str]:
    check = {"text": _is_text, "image": _is_image, "audio": _is_audio}[modality]
    return [name for name, f in dataset.features.items() if name not in exclude and check(f)]


def _is_text(feature: Any) -> bool:
    return getattr(feature, "dtype", None) in ("string", "large_string")


def _is_image(feature: Any) -> bool:
    import datasets

    if isinstance(feature, (datasets.Image, datasets.Array2D, datasets.Array3D)):
        return True
    return _list_depth(feature) >= 2  # nested numeric lists: (H, W) or (H, W, C) pixels


def _is_audio(feature: Any) -> bool:
    import datasets

    if isinstance(feature, datasets.Audio):
        return True
    if isinstance(feature, dict):
        return "array" in feature and "sampling_rate" in feature
    return _list_depth(feature) == 1  # bare waveforms (their rate given as sampling_rate=)


def _list_depth(feature: Any) -> int:
    """How many list levels wrap a numeric value (0 for a scalar or non-numeric)."""
    import datasets

    depth = 0
    while isinstance(feature, (datasets.List, datasets.LargeList, list)):
        feature = feature[0] if isinstance(feature, list) else feature.feature
        depth += 1
    numeric = getattr(feature, "dtype", "").startswith(("int", "uint", "float"))
    return depth if numeric else 0


def _type_name(feature: Any) -> str:
    return repr(feature) if not isinstance(feature, dict) else "{" + ", ".join(feature) + "}"
