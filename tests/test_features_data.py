"""What extract_features reads from a dataset: split, columns, targets, subsets, audio; and options.

These tests need no model (or fail before one would load), so they are fast.
"""

from __future__ import annotations

import io
import logging
import wave

import datasets
import numpy as np
import pytest
import torch
from tiny_models import food_reviews

import hf_logme
from hf_logme.features.audio import resample, waveform
from hf_logme.features.columns import find_inputs, resolve_split
from hf_logme.features.sampling import subsample
from hf_logme.features.targets import find_label_column, read_targets

# ---------------------------------------------------------------------------------------------
# Split and columns


def test_dataset_dict_needs_a_split_when_it_has_several():
    data = datasets.DatasetDict({"train": food_reviews(4), "test": food_reviews(2)})
    with pytest.raises(ValueError, match=r"splits \['train', 'test'\]; pass split="):
        resolve_split(data, None)
    with pytest.raises(ValueError, match=r"split 'dev' is not in the dataset"):
        resolve_split(data, "dev")
    assert len(resolve_split(data, "test")) == 2
    assert len(resolve_split(datasets.DatasetDict({"only": food_reviews(3)}), None)) == 3


def test_anything_but_a_dataset_is_refused():
    with pytest.raises(TypeError, match="must be a datasets.Dataset or DatasetDict; got dict"):
        resolve_split({"text": ["a"]}, None)


def test_text_column_is_found_by_type_and_name():
    data = food_reviews(4)  # string columns: product (ids) and review
    assert find_inputs(data, "text", exclude=("score",)).columns == ("review",)


def test_ambiguous_text_columns_are_listed_with_the_option_to_set():
    data = datasets.Dataset.from_dict({"title": ["a"], "body2": ["b"], "label": [0]})
    with pytest.raises(
        ValueError,
        match=r"several columns could be the text input: \['title', "
        r"'body2'\]; pass text_column='title'.*'label' \(Value\('int64'\)\)",
    ):
        find_inputs(data, "text", exclude=("label",))


def test_sentence_pairs_are_detected():
    data = datasets.Dataset.from_dict({"hypothesis": ["h"], "premise": ["p"], "label": [0]})
    assert find_inputs(data, "text", exclude=("label",)).columns == ("premise", "hypothesis")


def test_named_columns_must_exist():
    data = food_reviews(2)
    with pytest.raises(ValueError, match=r"text_column='body' is not a column.*'review' \(Value"):
        find_inputs(data, "text", text_column="body")
    with pytest.raises(ValueError, match="text_pair_column needs text_column too"):
        find_inputs(data, "text", text_pair_column="review")


def test_missing_modality_is_a_lookup_error():
    with pytest.raises(
        LookupError, match="the model reads image but the dataset has no image column"
    ):
        find_inputs(food_reviews(2), "image", exclude=("score",))


def test_custom_module_input_is_the_only_modality_present():
    data = datasets.Dataset.from_dict(
        {"audio": [{"array": [0.0, 1.0], "sampling_rate": 8}], "y": [1]}
    )
    assert find_inputs(data, None, exclude=("y",)).modality == "audio"
    both = datasets.Dataset.from_dict({"text": ["a"], "pixels": [[[0, 1], [1, 0]]], "y": [1]})
    with pytest.raises(ValueError, match=r"found \['text', 'image'\] input columns"):
        find_inputs(both, None, exclude=("y",))
    with pytest.raises(ValueError, match="columns for several modalities were given"):
        find_inputs(both, None, text_column="text", image_column="pixels")
    assert find_inputs(both, None, image_column="pixels").columns == ("pixels",)


# ---------------------------------------------------------------------------------------------
# Labels and targets


def test_label_column_detection():
    assert find_label_column(food_reviews(3), None) == "score"
    two = datasets.Dataset.from_dict({"text": ["a"], "label": [0], "target": [1]})
    with pytest.raises(ValueError, match=r"candidates: \['label', 'target'\].*Pass label_column="):
        find_label_column(two, None)
    none = datasets.Dataset.from_dict({"text": ["a"], "stars": [5]})
    with pytest.raises(
        ValueError,
        match=r"cannot tell which column holds the labels; columns: "
        r"'text' \(Value\('string'\)\), 'stars'",
    ):
        find_label_column(none, None)
    with pytest.raises(ValueError, match="label_column='gold' is not a column"):
        find_label_column(none, "gold")


def test_class_labels_unlabelled_rows_and_names():
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    data = datasets.Dataset.from_dict(
        {"text": list("abcde"), "label": [0, 1, -1, 1, 0]}, features=features
    )
    targets = read_targets(data, "label", "auto")
    assert targets.task == "classification" and targets.names == ["neg", "pos"]
    assert targets.missing.tolist() == [False, False, True, False, False]


def test_float_labels_are_regression_and_strings_are_not():
    data = datasets.Dataset.from_dict({"y": [0.5, 1.25, None], "s": ["a", "b", "c"]})
    targets = read_targets(data, "y", "auto")
    assert targets.task == "regression" and targets.values.dtype == np.float64
    assert targets.missing.tolist() == [False, False, True]
    with pytest.raises(ValueError, match="task='regression' needs numeric labels; 's' holds"):
        read_targets(data, "s", "regression")
    with pytest.raises(ValueError, match="non-integer floats, which are not classes"):
        read_targets(data, "y", "classification")
    assert read_targets(
        datasets.Dataset.from_dict({"y": [1.0, 2.0]}), "y", "classification"
    ).values.tolist() == [1.0, 2.0]


def test_label_sets_become_a_multi_hot_matrix():
    features = datasets.Features(
        {"tags": datasets.List(datasets.ClassLabel(names=["a", "b", "c"]))}
    )
    data = datasets.Dataset.from_dict({"tags": [[0, 2], [], [1]]}, features=features)
    targets = read_targets(data, "tags", "auto")
    assert targets.task == "multilabel" and targets.names == ["a", "b", "c"]
    np.testing.assert_array_equal(targets.values, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    strings = datasets.Dataset.from_dict({"tags": [["x"], ["y", "x"]]})
    np.testing.assert_array_equal(read_targets(strings, "tags", "auto").values, [[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="task='regression' needs float vectors"):
        read_targets(strings, "tags", "regression")
    with pytest.raises(
        ValueError, match="holds lists .* use task='auto', 'multilabel' or 'regression'"
    ):
        read_targets(strings, "tags", "classification")


def test_float_vectors_are_multilabel_when_binary_else_regression():
    binary = datasets.Dataset.from_dict({"y": [[0.0, 1.0], [1.0, 1.0]]})
    assert read_targets(binary, "y", "auto").task == "multilabel"
    scores = datasets.Dataset.from_dict({"y": [[0.2, 1.0], [1.5, 0.0]]})
    assert read_targets(scores, "y", "auto").task == "regression"
    with pytest.raises(ValueError, match="task='multilabel' needs 0/1 vectors"):
        read_targets(scores, "y", "multilabel")
    ragged = datasets.Dataset.from_dict({"y": [[0.0, 1.0], [1.0]]})
    with pytest.raises(ValueError, match=r"float lists of different lengths \[1, 2\]"):
        read_targets(ragged, "y", "auto")
    with pytest.raises(ValueError, match="task='multilabel' needs a label column of lists"):
        read_targets(datasets.Dataset.from_dict({"y": [1, 0]}), "y", "multilabel")


# ---------------------------------------------------------------------------------------------
# Stratified subsets


def test_stratified_subsample_keeps_class_ratios():
    labels = np.array(["great"] * 2600 + ["other"] * 1300 + ["rare"] * 100)
    rows = subsample(len(labels), 400, seed=3, classes=labels)
    assert len(rows) == 400 and len(set(rows)) == 400 and np.all(np.diff(rows) > 0)
    _, counts = np.unique(labels[rows], return_counts=True)
    assert np.all(np.abs(counts - np.array([260, 130, 10])) < 1)
    assert np.array_equal(rows, subsample(len(labels), 400, seed=3, classes=labels))
    assert not np.array_equal(rows, subsample(len(labels), 400, seed=4, classes=labels))


def test_stratified_subsample_keeps_every_class_and_all_rows_when_small():
    labels = np.array([0] * 98 + [1, 2])
    rows = subsample(100, 5, seed=0, classes=labels)
    assert sorted(set(labels[rows])) == [0, 1, 2]
    assert np.array_equal(subsample(100, 100, seed=0, classes=labels), np.arange(100))
    assert len(subsample(100, 7, seed=0)) == 7


# ---------------------------------------------------------------------------------------------
# Audio decoding and resampling


def _wav(samples: np.ndarray, rate: int, width: int) -> bytes:
    buffer = io.BytesIO()
    frames = samples if samples.ndim == 2 else samples[:, None]
    scale = 2 ** (8 * width - 1)
    ints = np.clip(np.round(frames * scale), -scale, scale - 1).astype(np.int64)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    else:
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints.reshape(-1))
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(frames.shape[1])
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(raw)
    return buffer.getvalue()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_wav_is_decoded_at_every_sample_width(width):
    signal = np.sin(np.linspace(0, 20, 300)) * 0.8
    decoded, rate = waveform({"bytes": _wav(signal, 11025, width), "path": None})
    assert rate == 11025 and decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, signal, atol=2.0 / 2 ** (8 * width - 1))


def test_stereo_wav_is_averaged_to_mono(tmp_path):
    left, right = np.full(50, 0.5), np.full(50, -0.25)
    path = tmp_path / "stereo.wav"
    path.write_bytes(_wav(np.stack([left, right], axis=1), 8000, 2))
    decoded, _ = waveform({"bytes": None, "path": str(path)})
    np.testing.assert_allclose(decoded, 0.125, atol=1e-4)


def test_undecodable_audio_names_the_fix():
    with pytest.raises(ValueError, match="only PCM WAV is decoded here.*Install torchcodec"):
        waveform({"bytes": b"ID3 not a wav file at all", "path": "song.mp3"})
    with pytest.raises(ValueError, match="bare arrays: pass sampling_rate="):
        waveform(np.zeros(10))
    assert waveform([0.0, 1.0], sampling_rate=8000)[1] == 8000
    with pytest.raises(ValueError, match="must be 1-D or 2-D"):
        waveform({"array": np.zeros((2, 2, 2)), "sampling_rate": 8000})


@pytest.mark.parametrize("rates", [(8000, 16000), (44100, 16000), (22050, 16000), (48000, 44100)])
def test_resampling_reproduces_a_band_limited_tone(rates):
    orig, new = rates
    t = np.arange(orig // 2) / orig
    out = resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), orig, new)
    assert len(out) == int(np.ceil(len(t) * new / orig))
    expected = np.sin(2 * np.pi * 440 * np.arange(len(out)) / new)
    interior = slice(new // 50, -new // 50)  # away from the edges, where the signal was cut
    np.testing.assert_allclose(out[interior], expected[interior], atol=2e-3)


def test_downsampling_removes_frequencies_above_the_new_nyquist():
    t = np.arange(16000) / 16000
    out = resample(np.sin(2 * np.pi * 7000 * t).astype(np.float32), 16000, 8000)
    assert np.abs(out[400:-400]).max() < 5e-3  # 7 kHz would alias to 1 kHz at 8 kHz


# ---------------------------------------------------------------------------------------------
# Options are checked before anything is loaded (the model id below does not exist)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"pooling": "first"}, ValueError, r"pooling must be one of \['auto', 'cls'"),
        ({"layers": 3}, ValueError, r"layers must be one of \['last', 'all'\]; got 3"),
        ({"task": "ranking"}, ValueError, "task must be one of"),
        ({"batch_size": 0}, ValueError, r"batch_size must be a positive int or one of \['auto'\]"),
        ({"batch_size": "big"}, ValueError, "batch_size must be a positive int"),
        ({"num_workers": -1}, ValueError, "num_workers must be a positive int"),
        ({"max_samples": 0}, ValueError, "max_samples must be a positive int; got 0"),
        ({"max_length": True}, ValueError, "max_length must be a positive int; got True"),
        ({"sampling_rate": 1.5}, ValueError, "sampling_rate must be a positive int"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
        ({"on_batch": 3}, TypeError, "on_batch must be callable"),
        ({"return_features": False}, ValueError, "nothing would be produced"),
        ({"pooling": "pooler", "layers": "all"}, ValueError, "pooler' exists only after the last"),
        ({"split": "dev"}, ValueError, "split 'dev' is not in the dataset"),
        ({"label_column": "gold"}, ValueError, "label_column='gold' is not a column"),
        ({"task": "regression"}, ValueError, "task='regression' needs numeric labels"),
    ],
)
def test_bad_options_fail_before_loading(options, error, message):
    data = datasets.DatasetDict({"train": food_reviews(4)})
    with pytest.raises(error, match=message):
        hf_logme.extract_features("no-such-org/no-such-model", data, **options)


def test_device_and_dtype_are_validated():
    from hf_logme.features.options import resolve_device, resolve_dtype

    with pytest.raises(ValueError, match="device must be 'auto' or a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match=r"dtype must be 'auto', a torch floating dtype"):
        resolve_dtype("float8", torch.device("cpu"))
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        resolve_dtype(torch.int8, torch.device("cpu"))
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16


def test_rows_without_labels_are_left_out_with_a_warning(caplog):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])}
    )
    data = datasets.Dataset.from_dict({"text": ["x"] * 3, "label": [-1] * 3}, features=features)
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="has no labels"):
        hf_logme.extract_features("no-such-org/no-such-model", data)
    assert "3 of 3 rows have no label" in caplog.text
