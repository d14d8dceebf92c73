"""Bad inputs at the estimator boundary: flags, labels, feature scale, merging, the meta device."""

from __future__ import annotations

import copy
import warnings

import datasets
import numpy as np
import pytest
import torch

import hf_logme
from hf_logme.estimators._validation import check_bool


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    features = rng.normal(size=(90, 6)) + 1.5 * np.eye(3, 6)[labels]
    return features, labels


@pytest.mark.parametrize("value", ["no", "false", "False", 0, 1, None, [], np.array([True])])
def test_check_bool_refuses_everything_but_bools(value):
    with pytest.raises(TypeError, match="flag_name must be True or False"):
        check_bool("flag_name", value)


def test_check_bool_accepts_python_and_numpy_bools():
    assert check_bool("x", True) is True and check_bool("x", np.bool_(False)) is False


@pytest.mark.parametrize(
    "call",
    [
        lambda f, y: hf_logme.logme(f, y, intercept="no"),
        lambda f, y: hf_logme.logme(f, y, regression="no"),
        lambda f, y: hf_logme.LogME(intercept="false"),
        lambda f, y: hf_logme.score(f, y, method="logme", intercept="no"),
    ],
)
def test_string_flags_are_type_errors_not_truthy(data, call):
    with pytest.raises(TypeError, match=r"(intercept|regression) must be True or False; got '"):
        call(*data)


def test_rank_models_refuses_a_string_flag_in_method_options(data):
    # Refused while the options are resolved, before the dataset or any model is looked at.
    with pytest.raises(TypeError, match="intercept must be True or False"):
        hf_logme.rank_models(["org/m"], None, methods={"logme": {"intercept": "no"}})


def test_missing_labels_in_object_arrays_are_counted_not_classes(data):
    features, labels = data
    with_none = labels.astype(object)
    with_none[::3] = None
    with pytest.raises(ValueError, match=r"labels has 30 missing values \(None or NaN\) among 90"):
        hf_logme.logme(features, with_none)
    with_nan = labels.astype(object)
    with_nan[:7] = float("nan")  # each NaN would have been its own class (nan != nan)
    with pytest.raises(ValueError, match="labels has 7 missing values"):
        hf_logme.logme(features, with_nan)


@pytest.mark.parametrize(
    "mixed, kinds",
    [
        ([1, "1"], r"1 \(number\), '1' \(str\)"),
        (["a", True], r"True \(bool\), 'a' \(str\)"),  # kinds are listed sorted
        ([True, 1], r"True \(bool\), 1 \(number\)"),  # True == 1 would merge the two classes
    ],
)
def test_mixed_label_types_are_an_error(data, mixed, kinds):
    features, _ = data
    labels = (mixed * 45)[:90]
    with pytest.raises(TypeError, match=f"labels mixes label types: {kinds}"):
        hf_logme.logme(features, labels)
    with pytest.raises(TypeError, match="mixes label types"):
        hf_logme.logme(features, np.asarray(labels, dtype=object))


def test_numbers_in_an_object_array_are_one_kind(data):
    features, labels = data
    as_objects = np.array([float(v) if i % 2 else int(v) for i, v in enumerate(labels)], object)
    assert hf_logme.logme(features, as_objects) == hf_logme.logme(features, labels)
    as_strings = [f"c{v}" for v in labels]  # a list of str stays str
    assert hf_logme.logme(features, as_strings) == pytest.approx(hf_logme.logme(features, labels))


def test_integer_targets_with_a_class_per_row_warn(data):
    features, _ = data
    nearly_unique = np.arange(90) % 60
    with pytest.warns(UserWarning, match=r"60 classes among 90 rows.*regression=True"):
        hf_logme.logme(features, nearly_unique)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hf_logme.logme(features, np.arange(90) % 40)  # 40 classes, 90 rows: no warning
        hf_logme.logme(features, [f"c{v}" for v in nearly_unique])  # strings are named classes


@pytest.mark.parametrize("scale", [1e150, 1e-150, 1e100, 1e-100])
def test_scale_invariance_holds_inside_the_float64_range(data, scale):
    features, labels = data
    for intercept in (False, True):
        reference = hf_logme.logme(features, labels, intercept=intercept)
        scaled = hf_logme.logme(features * scale, labels, intercept=intercept)
        assert scaled == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("scale, word", [(1e155, "too large"), (1e-160, "too small")])
def test_outside_the_float64_range_it_raises_instead_of_a_wrong_score(data, scale, word):
    features, labels = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own overflow warning
        with pytest.raises(ValueError, match=f"features are {word} for float64 statistics"):
            hf_logme.logme(features * scale, labels)


def test_merge_into_itself_is_refused_and_a_copy_doubles_the_data(data):
    features, labels = data
    estimator = hf_logme.LogME().update(features, labels)
    with pytest.raises(ValueError, match="into itself"):
        estimator.merge(estimator)
    doubled = estimator.merge(copy.deepcopy(estimator)).compute()
    twice = np.concatenate([features, features]), np.concatenate([labels, labels])
    assert doubled == pytest.approx(hf_logme.logme(*twice), rel=1e-12)


def test_meta_tensors_get_a_clear_error(data):
    _, labels = data
    with pytest.raises(ValueError, match="features is on the meta device"):
        hf_logme.logme(torch.empty(90, 6, device="meta"), labels)


@pytest.mark.parametrize("flag", ["trust_remote_code", "use_safetensors"])
@pytest.mark.parametrize("value", ["false", "False", 0])
def test_loading_flags_are_checked_before_anything_is_read(flag, value, tmp_path):
    from hf_logme.features import load_model
    from hf_logme.features.loading import inspect_checkpoint

    # The folder does not even exist: the flag is refused before any file or the Hub is read.
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        load_model(str(tmp_path / "none"), **{flag: value})
    if flag == "trust_remote_code":
        with pytest.raises(TypeError, match=f"{flag} must be True or False"):
            inspect_checkpoint(str(tmp_path / "none"), trust_remote_code=value)
        ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
        with pytest.raises(TypeError, match=f"{flag} must be True or False"):
            hf_logme.extract_features(str(tmp_path / "none"), ds, trust_remote_code=value)
