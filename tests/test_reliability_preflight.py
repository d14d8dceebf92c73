"""check_dataset: problems that affect every candidate are raised from the data alone."""

from __future__ import annotations

import logging

import datasets
import pytest

from hf_logme.features.preflight import MIN_ROWS, check_dataset


def dataset(**columns):
    return datasets.Dataset.from_dict(columns)


GOOD = {"text": ["good film", "bad film", "fine", "awful"] * 5, "label": [1, 0, 1, 0] * 5}


def test_a_good_dataset_passes_and_says_what_it_found():
    check = check_dataset(dataset(**GOOD), max_samples=10)
    assert (check.label_column, check.task, check.num_rows, check.num_classes) == (
        "label",
        "classification",
        10,
        2,
    )
    assert check.inputs.columns == ("text",)
    regression = check_dataset(
        dataset(text=GOOD["text"], y=[0.5, 1.5, 2.5, 3.5] * 5), label_column="y"
    )
    assert (regression.task, regression.num_classes) == ("regression", None)


@pytest.mark.parametrize(
    "columns, options, message",
    [
        (GOOD, {"split": None, "max_samples": 0}, "max_samples must be a positive int; got 0"),
        ({"text": [], "label": []}, {}, "has no rows"),
        ({"text": ["a", "b", "c"], "label": [0, 0, 0]}, {}, r"single class \(0\) among the 3"),
        ({"text": ["a", "b"] * 3, "label": ["x", None] * 3}, {}, r"single class \('x'\)"),
        (GOOD, {"max_samples": 1}, f"only 1 labelled row.*at least {MIN_ROWS}"),
        (GOOD, {"label_column": "stars"}, "label_column='stars' is not a column"),
        (GOOD, {"text_column": "body"}, "text_column='body' is not a column"),
        (GOOD, {"task": "clasification"}, "task must be one of"),
        ({"text": ["", " "] * 4, "label": [0, 1] * 4}, {}, "holds only empty texts in the 8"),
        ({"text": ["a", None] * 4, "label": [0, 1] * 4}, {}, "4 values that are not strings"),
        ({"text": ["a"] * 4, "label": [None] * 4}, {}, "has no labels"),
    ],
)
def test_problems_every_candidate_would_hit_are_raised(columns, options, message):
    with pytest.raises(ValueError, match=message):
        check_dataset(dataset(**columns), **options)


def test_a_named_text_column_is_checked_even_among_several():
    data = dataset(title=["a", "b"] * 4, body=["", ""] * 4, label=[0, 1] * 4)
    assert check_dataset(data).inputs is None  # ambiguous: the model's modality decides
    with pytest.raises(ValueError, match="'body' holds only empty texts"):
        check_dataset(data, text_column="body")


def test_warnings_for_what_is_suspicious_but_not_fatal(caplog):
    caplog.set_level(logging.WARNING)
    check_dataset(dataset(text=["x", ""] * 30, label=list(range(60))))
    assert "60 classes among 60 rows, from integer labels" in caplog.text
    assert "task='regression'" in caplog.text
    assert "30 of 60 texts are empty" in caplog.text
    caplog.clear()
    check_dataset(dataset(text=["x"] * 60, label=[f"c{i}" for i in range(60)]))
    assert "classes among" not in caplog.text  # named classes are meant as classes


def test_only_the_scored_rows_are_read(caplog):
    # The empty texts are in the rows without a label, which are not scored.
    data = dataset(text=["a", "b", "", ""], label=[0, 1, None, None])
    check = check_dataset(data)
    assert check.num_rows == 2 and "2 of 4 rows have no label" in caplog.text


@pytest.mark.parametrize(
    "columns, options, message",
    [
        ({"text": ["a", "b", "c"], "label": [0, 0, 0]}, {}, "single class"),
        # kept: by default the repeated empty text is scored once, and one row is too few
        (
            {"text": ["", ""] * 3, "label": [0, 1] * 3},
            {"keep_duplicates": True},
            "only empty texts",
        ),
        (GOOD, {"max_samples": 1}, "only 1 labelled row"),
        ({"text": [], "label": []}, {}, "has no rows"),
    ],
)
def test_rank_models_raises_before_any_model_loads(columns, options, message, tmp_path):
    from hf_logme.ranking import rank_models

    # The candidate does not exist: reaching it would be a skipped row, not this error.
    with pytest.raises(ValueError, match=message):
        rank_models([str(tmp_path / "no-model")], dataset(**columns), progress=False, **options)
