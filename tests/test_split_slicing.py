"""``split`` in datasets' slicing syntax means the same rows for every kind of dataset source:
a save_to_disk folder (DatasetDict or Dataset), a CSV file, and a DatasetDict or Dataset passed
to rank_models. The reference is ``load_dataset(..., split=spec)`` on the same rows as a CSV."""

from __future__ import annotations

import csv

import datasets
import pytest
from hub_fixtures import REVIEWS, build_text_model

from hf_logme.data import load_dataset_source
from hf_logme.ranking import rank_models

TRAIN = [(t, y) for i, (t, y) in enumerate(REVIEWS) if i % 4 != 3]  # 18 rows
TEST = REVIEWS[3::4]  # 6 rows
SPECS = ["train[:5]", "train[25%:50%]", "train[-4:]", "train[:3]+test[:2]", "train[:500]"]


def as_dataset(rows, split=None):
    return datasets.Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [y for _, y in rows]}, split=split
    )


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    for name, rows in (("train", TRAIN), ("test", TEST)):
        with open(root / f"{name}.csv", "w", newline="") as f:
            csv.writer(f).writerows([("text", "label"), *rows])
    splits = datasets.DatasetDict({"train": as_dataset(TRAIN), "test": as_dataset(TEST)})
    splits.save_to_disk(str(root / "dict"))
    as_dataset(TRAIN, split="train").save_to_disk(str(root / "one"))  # knows its split name
    return root


def reference(root, spec):
    """What load_dataset's own slicing gives on the same rows as CSV files."""
    files = {name: str(root / f"{name}.csv") for name in ("train", "test")}
    return datasets.load_dataset("csv", data_files=files, split=spec)["text"]


@pytest.mark.parametrize("spec", SPECS)
def test_a_save_to_disk_folder_is_sliced_as_load_dataset_slices(sources, spec):
    expected = reference(sources, spec)
    assert load_dataset_source(str(sources / "dict"), split=spec)["text"] == expected
    if "test" not in spec:  # a CSV file and a saved Dataset hold one split, train
        assert load_dataset_source(str(sources / "train.csv"), split=spec)["text"] == expected
        assert load_dataset_source(str(sources / "one"), split=spec)["text"] == expected


def test_a_bare_split_name_keeps_the_split_itself(sources):
    loaded = load_dataset_source(str(sources / "dict"), split="test")
    assert loaded["text"] == [t for t, _ in TEST]


@pytest.mark.parametrize(
    ("source", "spec", "match"),
    [
        ("dict", "train[:5", "not a split name or slice"),
        ("dict", "valid[:5]", r"Unknown split \"valid\"|splits are \['test', 'train'\]"),
        ("dict", "valid", r"--split 'valid' is not in the dataset"),
        ("one", "test[:5]", r"names \['test'\], but the dataset is one split \('train'\)"),
    ],
)
def test_bad_slices_are_errors_that_name_the_flag(sources, source, spec, match):
    with pytest.raises(ValueError, match=match):
        load_dataset_source(str(sources / source), split=spec)


def test_rank_models_slices_a_dataset_dict_and_a_dataset(sources, tmp_path):
    model = str(build_text_model(tmp_path / "tiny"))
    splits = datasets.load_from_disk(str(sources / "dict"))
    sliced = rank_models([model], splits, split="train[:10]", cache=False, progress=False)
    whole = rank_models([model], splits["train"], split="train", cache=False, progress=False)
    direct = rank_models([model], as_dataset(TRAIN[:10]), cache=False, progress=False)
    assert sliced.rows[0].num_samples == 10 and whole.rows[0].num_samples == len(TRAIN)
    assert sliced.rows[0].score == pytest.approx(direct.rows[0].score, rel=1e-9)
    on_dataset = rank_models(
        [model], splits["train"], split="train[:10]", cache=False, progress=False
    )
    assert on_dataset.rows[0].score == pytest.approx(direct.rows[0].score, rel=1e-9)
