"""Open what a command line can name: a dataset (Hub id, folder, data file) or a saved array.

Every failure to read is a ``ValueError`` (or ``FileNotFoundError``) whose message names the file
and the fix, never a parser's traceback: an empty or header-only file, text that is not UTF-8, a
malformed CSV or JSON, a ``.pt`` file holding anything but tensors (refused unread: unpickling
arbitrary objects can run code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InputNotFoundError

_FILE_BUILDERS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
    ".arrow": ("arrow", {}),
}


def load_dataset_source(
    source: str,
    *,
    config: str | None = None,
    split: str | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
):
    """A ``datasets.Dataset`` (or ``DatasetDict`` when no split is named) from ``source``.

    Args:
        source: a folder written by ``Dataset.save_to_disk``; a .csv/.tsv/.json/.jsonl/.parquet
            file (its rows are the "train" split); a local folder of data files or loading
            script; or a Hub dataset id such as ``"imdb"`` or ``"user/name"``.
        config: the dataset configuration (Hub datasets with several).
        split: e.g. ``"train"``, ``"train[:2000]"``, ``"test[10%:20%]"`` (datasets' split syntax,
            the same for every source: a save_to_disk folder is sliced as load_dataset slices);
            None returns every split.
        token: Hub token for private or gated datasets.
        revision: dataset revision on the Hub.

    Raises:
        ValueError: an unknown file type, an empty, header-only, non-UTF-8 or malformed file (the
            message says which and how to fix it), or a named split the dataset does not have.
        InputNotFoundError: a local path (./x, /x, x.csv...) that does not exist.
    """
    import datasets

    path = Path(source).expanduser()
    if path.is_dir() and (
        (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
    ):
        from .features.columns import resolve_split

        loaded = datasets.load_from_disk(str(path))
        if split is None:
            return loaded
        # The same split syntax as load_dataset ("train[:50]", "test[10%:]"), sliced here.
        return resolve_split(loaded, split, option="--split")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix not in _FILE_BUILDERS:
            raise ValueError(
                f"Cannot read a dataset from {source!r}: use .csv, .tsv, .json, .jsonl, .parquet "
                f"or .arrow, a folder written by save_to_disk, or a Hub dataset id."
            )
        builder, kwargs = _FILE_BUILDERS[suffix]
        if path.stat().st_size == 0:
            raise ValueError(f"{source} is empty (0 bytes); pass a file with a header and rows.")
        try:
            loaded = datasets.load_dataset(
                builder, data_files={"train": str(path)}, split=split or "train", **kwargs
            )
        except datasets.exceptions.DatasetGenerationError as err:
            raise ValueError(f"Cannot read {source}: {_reason(err)}") from err
        except ValueError as err:
            if "corresponds to no data" in str(err):
                raise ValueError(f"{source} has no rows (a header at most).") from err
            raise
        if len(loaded) == 0:
            raise ValueError(f"{source} has no rows (a header at most).")
        return loaded
    if _looks_like_path(source):
        raise InputNotFoundError(f"{source}: no such file or folder ({path.absolute()}).")
    return datasets.load_dataset(
        str(source) if path.exists() else source,
        config,
        split=split,
        token=token,
        revision=revision,
    )


def _looks_like_path(source: str) -> bool:
    """Whether ``source`` can only be a local path (never a Hub dataset id)."""
    return (
        source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or source.endswith("/")
        or Path(source).suffix.lower() in _FILE_BUILDERS
    )


def _reason(err: BaseException) -> str:
    """The root cause of a dataset builder's failure, as advice."""
    causes = []
    while err is not None and len(causes) < 10:
        causes.append(err)
        err = err.__cause__ or err.__context__
    for cause in causes:
        if isinstance(cause, UnicodeDecodeError):
            return (
                f"it is not UTF-8 text (byte {cause.object[cause.start : cause.start + 1]!r} at "
                f"position {cause.start}). Save it as UTF-8, e.g. iconv -f latin1 -t utf-8."
            )
    for cause in causes:
        if type(cause).__name__ == "EmptyDataError":
            return "it has no columns (an empty file?)."
    root = causes[-1]
    return (
        f"{type(root).__name__}: {str(root).strip().splitlines()[0] if str(root).strip() else ''}"
    )


_ARRAY_SUFFIXES = ".npy, .npz, .pt/.pth, .safetensors (or .txt/.csv/.tsv for labels, one per line)"


def load_array(path: str, *, what: str) -> Any:
    """One array from a file, for ``hf-logme score``: features or labels.

    Reads .npy, .npz (one array), .pt/.pth (one tensor, or a dict holding exactly one),
    .safetensors (one tensor), or .txt/.csv/.tsv (one value per line; floats when every value
    parses, else strings). Nothing is unpickled: ``.npy`` with ``allow_pickle=False`` and
    ``.pt`` with ``weights_only=True``.

    Raises:
        InputNotFoundError: no such file (a FileNotFoundError and a ValueError).
        ValueError: an unknown extension, an unreadable or empty file, pickled objects, or more
            than one array; the message names ``what`` and the file.
    """
    file = Path(path)
    if not file.is_file():
        raise InputNotFoundError(f"{what} file {path!r} does not exist.")
    suffix = file.suffix.lower()
    try:
        value = _read_array(file, suffix)
    except _Unreadable:
        raise
    except Exception as err:  # every reader's own failure becomes one message
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"Cannot read {what} from {path}: {type(err).__name__}: {first[:200]}"
        ) from err
    if value is None:
        raise ValueError(f"Cannot read {what} from {path!r}: use {_ARRAY_SUFFIXES}.")
    return value


class _Unreadable(ValueError):
    """A reading failure already explained (the file named, the fix given)."""


def _read_array(file: Path, suffix: str) -> Any:
    import numpy as np

    if suffix in (".npy", ".npz"):
        try:
            loaded = np.load(file, allow_pickle=False)
        except ValueError as err:
            if "allow_pickle" in str(err):
                raise _Unreadable(
                    f"{file} is not a numpy array file, or holds pickled Python objects, which "
                    f"are not loaded (that can run code). Save a numeric or string array with "
                    f"numpy.save."
                ) from err
            raise
        if suffix == ".npy":
            return loaded
        with loaded as archive:
            if len(archive.files) != 1:
                raise _Unreadable(f"{file} holds {archive.files}; save exactly one array.")
            return archive[archive.files[0]]
    if suffix in (".pt", ".pth"):
        return _read_torch(file)
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(file))
        if len(tensors) != 1:
            raise _Unreadable(f"{file} holds tensors {sorted(tensors)}; save exactly one.")
        return next(iter(tensors.values()))
    if suffix in (".txt", ".csv", ".tsv"):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise _Unreadable(f"{file} is not UTF-8 text; save it as UTF-8.") from err
        values = [line.strip() for line in text.splitlines() if line.strip()]
        if not values:
            raise _Unreadable(f"{file} holds no values (one per line expected).")
        try:
            return np.array([float(v) for v in values])
        except ValueError:
            return np.array(values)
    return None


def _read_torch(file: Path) -> Any:
    import pickle

    import torch

    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _Unreadable(
            f"{file} is not a plain tensor file: not written by torch.save, or holding objects "
            f"other than tensors, which are not unpickled (that can run code). Save the array "
            f"with torch.save(tensor) or as .npy / .safetensors."
        ) from err
    if isinstance(loaded, dict):
        tensors = [v for v in loaded.values() if isinstance(v, torch.Tensor)]
        if len(loaded) != 1 or len(tensors) != 1:
            raise _Unreadable(f"{file} holds {sorted(map(str, loaded))}; save exactly one tensor.")
        loaded = tensors[0]
    if not isinstance(loaded, torch.Tensor):
        raise _Unreadable(f"{file} holds a {type(loaded).__name__}, not a tensor.")
    return loaded
