"""Open the user's dataset from what a command line can name: a Hub id, a folder or a data file."""

from __future__ import annotations

from pathlib import Path

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
        split: e.g. ``"train"`` or ``"train[:2000]"``; None returns every split.
        token: Hub token for private or gated datasets.
        revision: dataset revision on the Hub.

    Raises:
        ValueError: an unknown file type, or a named split the dataset does not have.
    """
    import datasets

    path = Path(source).expanduser()
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = datasets.load_from_disk(str(path))
        if split is None:
            return loaded
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(
                    f"--split {split!r} is not in {source}; it has splits {sorted(loaded)}."
                )
            return loaded[split]
        return loaded
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix not in _FILE_BUILDERS:
            raise ValueError(
                f"Cannot read a dataset from {source!r}: use .csv, .tsv, .json, .jsonl, .parquet "
                f"or .arrow, a folder written by save_to_disk, or a Hub dataset id."
            )
        builder, kwargs = _FILE_BUILDERS[suffix]
        return datasets.load_dataset(builder, data_files={"train": str(path)}, split=split or "train", **kwargs)
    return datasets.load_dataset(
        str(source) if path.exists() else source, config, split=split, token=token, revision=revision
    )
