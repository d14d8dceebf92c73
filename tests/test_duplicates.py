"""Duplicate-input detection on text, text pairs, images and audio, against a Python reference."""

from __future__ import annotations

import io

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_logme.features.duplicates import find_duplicate_inputs


def first_occurrences(keys):
    """Reference: indices of the first occurrence of every distinct key."""
    seen, keep = set(), []
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def test_text_keeps_first_occurrences_whatever_the_labels():
    data = datasets.Dataset.from_dict(
        {"text": ["a", "b", "a", "c", "b", "a"], "label": [0, 1, 1, 0, 1, 0]}
    )
    keep, repeats = find_duplicate_inputs(data, ["text"])
    assert keep.dtype == np.int64
    assert keep.tolist() == [0, 1, 3] and repeats == 3


def test_many_rows_across_batches_match_the_reference():
    rng = np.random.default_rng(0)
    texts = [f"review {v}" for v in rng.integers(0, 15000, 30000)]
    data = datasets.Dataset.from_dict({"text": texts})
    keep, repeats = find_duplicate_inputs(data, "text")
    assert keep.tolist() == first_occurrences(texts)
    assert repeats == len(texts) - len(set(texts))


def test_text_pairs_repeat_only_when_both_texts_do():
    data = datasets.Dataset.from_dict(
        {"premise": ["a", "a", "a", "b"], "hypothesis": ["x", "y", "x", "x"]}
    )
    keep, repeats = find_duplicate_inputs(data, ["premise", "hypothesis"])
    assert keep.tolist() == [0, 1, 3] and repeats == 1
    assert find_duplicate_inputs(data, ["premise"])[0].tolist() == [0, 3]


def test_selection_and_shuffle_are_respected():
    data = datasets.Dataset.from_dict({"text": ["a", "b", "a", "c"]}).select([3, 2, 1, 0])
    assert find_duplicate_inputs(data, ["text"])[0].tolist() == [
        0,
        1,
        2,
    ]  # c, a, b; the last a repeats


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_are_keyed_by_their_bytes_without_decoding():
    rng = np.random.default_rng(1)
    red, blue = (rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(2))
    images = [{"bytes": _png(p), "path": None} for p in (red, blue, red, red)]
    data = datasets.Dataset.from_dict({"image": images}).cast_column("image", datasets.Image())
    keep, repeats = find_duplicate_inputs(data, ["image"])
    assert keep.tolist() == [0, 1] and repeats == 2


def test_image_and_audio_arrays_compare_values_and_shapes():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    arrays = [
        a.tolist(),
        b.tolist(),
        a.tolist(),
        a.reshape(3, 2).tolist(),
        a.reshape(1, 6).tolist(),
    ]
    data = datasets.Dataset.from_dict({"pixels": arrays})
    keep, repeats = find_duplicate_inputs(data, ["pixels"])
    assert keep.tolist() == [0, 1, 3, 4] and repeats == 1  # same values, other shape: distinct
    wave, other = rng.normal(size=1600), rng.normal(size=1600)
    audio = [
        {"array": wave.tolist(), "sampling_rate": 16000},
        {"array": wave.tolist(), "sampling_rate": 8000},  # same samples, another rate
        {"array": other.tolist(), "sampling_rate": 16000},
        {"array": wave.tolist(), "sampling_rate": 16000},
    ]
    keep, repeats = find_duplicate_inputs(
        datasets.Dataset.from_list([{"audio": x} for x in audio]), ["audio"]
    )
    assert keep.tolist() == [0, 1, 2] and repeats == 1


def test_missing_values_are_one_key():
    data = datasets.Dataset.from_dict(
        {"text": ["a", None, None, "a"], "pixels": [[1.0], None, None, [1.0]]}
    )
    assert find_duplicate_inputs(data, ["text"])[0].tolist() == [0, 1]
    assert find_duplicate_inputs(data, ["pixels"])[0].tolist() == [0, 1]


@pytest.mark.parametrize(
    "columns, match",
    [([], r"input_columns is empty"), (["txt"], r"\['txt'\] are not in the dataset.*\['text'\]")],
)
def test_errors_name_the_argument(columns, match):
    data = datasets.Dataset.from_dict({"text": ["a"]})
    with pytest.raises(ValueError, match=match):
        find_duplicate_inputs(data, columns)
