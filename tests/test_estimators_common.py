"""One suite over every registered estimator: streaming, merging, state round trips, determinism,
label handling, invariances and option errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import hf_logme
from hf_logme.estimators import ESTIMATORS, get_estimator, load_statistics

# Options that keep each estimator fast on the small data below.
FAST = {
    "nleep": {"component_ratio": 1},
    "linear_probe": {"Cs": (1.0,), "folds": 2},
    "parc": {"n_components": 4},
}
DATA_METHODS = sorted(name for name in ESTIMATORS if name != "num_parameters")
SOURCE = {"leep", "nce"}
# Statistics that are sums (Gram, class statistics, joint counts) or exact samples give the same
# score to float64 round-off; iterative fits on a sample (GMM, L-BFGS) to their tolerance.
TOLERANCE = {"nleep": 1e-6, "linear_probe": 1e-6}


def data(n=150, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    rng.shuffle(labels)
    features = rng.normal(size=(n, d)) + 2.0 * np.eye(k, d)[labels]
    return features.astype(np.float32), labels


def make(name, **options):
    return get_estimator(name)(**{**FAST.get(name, {}), **options})


def full_score(name, features, labels, **options):
    return make(name, **options).update(features, labels).compute()


def approx(name, value):
    return pytest.approx(value, rel=TOLERANCE.get(name, 1e-9), abs=1e-12)


@pytest.mark.parametrize("name", DATA_METHODS)
def test_any_batching_gives_the_same_score(name):
    features, labels = data()
    expected = full_score(name, features, labels)
    streamed = make(name)
    for rows in np.array_split(np.random.default_rng(1).permutation(len(labels)), 7):
        streamed.update(features[rows], labels[rows])
    assert streamed.compute() == approx(name, expected)


@pytest.mark.parametrize("name", DATA_METHODS)
def test_merged_shards_equal_one_pass(name):
    features, labels = data()
    expected = full_score(name, features, labels)
    shards = [make(name).update(features[i::3], labels[i::3]) for i in range(3)]
    merged = make(name)
    for shard in reversed(shards):
        merged.merge(shard)
    assert merged.compute() == approx(name, expected)


@pytest.mark.parametrize("name", DATA_METHODS)
def test_state_dict_round_trip_through_torch_save(name):
    features, labels = data()
    estimator = make(name).update(features, labels)
    buffer = io.BytesIO()
    torch.save(estimator.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = make(name)
    restored.load_state_dict(state)
    assert restored.compute() == approx(name, estimator.compute())
    rebuilt = type(estimator).from_statistics(
        load_statistics(state["statistics"]), **FAST.get(name, {})
    )
    assert rebuilt.compute() == approx(name, estimator.compute())


@pytest.mark.parametrize("name", DATA_METHODS)
def test_one_statistics_object_feeds_the_estimator(name):
    features, labels = data()
    cls = get_estimator(name)
    statistics = cls.new_statistics(regression=False).update(features, labels)
    assert statistics.kind == cls.consumes
    assert cls.from_statistics(statistics, **FAST.get(name, {})).compute() == approx(
        name, full_score(name, features, labels)
    )


@pytest.mark.parametrize("name", DATA_METHODS)
def test_deterministic_and_label_kind_independent(name):
    features, labels = data()
    expected = full_score(name, features, labels)
    assert full_score(name, features, labels) == expected
    names = np.array(["zebra", "ant", "moth"])[labels]  # strings, a different sorted order
    assert full_score(name, features, names) == approx(name, expected)
    gaps = np.array([7, 100, -3])[labels]
    assert full_score(name, features, gaps) == approx(name, expected)


@pytest.mark.parametrize("name", ["hscore", "knn", "logme", "shrinkage_hscore"])
def test_invariant_to_rotation_and_scale(name):
    features, labels = data(d=5)
    features = features.astype(np.float64)
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(5, 5)))
    expected = full_score(name, features, labels)
    assert full_score(name, 3.0 * features @ q, labels) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("name", ["hscore", "shrinkage_hscore", "gbc", "transrate", "sfda", "parc"])
def test_invariant_to_feature_offset(name):
    features, labels = data()
    features = features.astype(np.float64)
    expected = full_score(name, features, labels)
    assert full_score(name, features + 5.0, labels) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("name", sorted(SOURCE))
def test_source_scores_ignore_logit_shifts_and_class_order(name):
    features, labels = data(d=4)
    features = features.astype(np.float64)
    expected = full_score(name, features, labels)
    shifted = features + np.arange(len(labels))[:, None]  # a constant per row
    assert full_score(name, shifted[:, ::-1].copy(), labels) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_a_string_flag_is_a_type_error(name):
    with pytest.raises(TypeError, match="regression must be True or False"):
        get_estimator(name)(regression="False")


@pytest.mark.parametrize(
    "name", sorted(n for n, c in ESTIMATORS.items() if not c.supports_regression)
)
def test_regression_is_refused_at_construction(name):
    with pytest.raises(ValueError, match="does not support regression=True"):
        get_estimator(name)(regression=True)


@pytest.mark.parametrize("name", DATA_METHODS)
def test_compute_before_data_and_single_class_raise(name):
    with pytest.raises(ValueError, match="before any data"):
        make(name).compute()
    features, _ = data()
    with pytest.raises(ValueError, match="single class"):
        make(name).update(features, np.zeros(len(features), dtype=int)).compute()


@pytest.mark.parametrize("name", DATA_METHODS)
def test_reset_forgets(name):
    features, labels = data()
    estimator = make(name).update(features[:10], labels[:10])
    estimator.reset()
    assert estimator.update(features, labels).compute() == approx(
        name, full_score(name, features, labels)
    )


def test_merge_refuses_other_options():
    features, labels = data()
    with pytest.raises(ValueError, match="same options"):
        make("knn", k=3).update(features, labels).merge(make("knn", k=5).update(features, labels))
    with pytest.raises(TypeError, match="Can only merge"):
        make("hscore").merge(make("logme"))


def test_from_statistics_checks_kind_and_gather_options():
    features, labels = data()
    rows = get_estimator("knn").new_statistics(max_rows=50).update(features, labels)
    with pytest.raises(TypeError, match="consumes GramStatistics"):
        get_estimator("hscore").from_statistics(rows)
    with pytest.raises(ValueError, match="max_rows=100 disagrees"):
        get_estimator("knn").from_statistics(rows, max_rows=100)
    assert get_estimator("knn").from_statistics(rows).max_rows == 50


def test_statistics_is_read_only():
    estimator = make("logme")
    with pytest.raises(AttributeError):
        estimator.statistics = None


@pytest.mark.parametrize(
    "name, option, value, error",
    [
        ("knn", "k", "5", TypeError),
        ("knn", "k", 0, ValueError),
        ("knn", "metric", "manhattan", ValueError),
        ("knn", "max_rows", 1, ValueError),
        ("knn", "seed", True, TypeError),
        ("gbc", "gaussian_type", "full", ValueError),
        ("gbc", "variance_floor", -1.0, ValueError),
        ("nleep", "variance", 1.5, ValueError),
        ("transrate", "eps", "small", TypeError),
        ("linear_probe", "Cs", (), TypeError),
        ("linear_probe", "folds", 1, ValueError),
        ("parc", "num_rows", 2, ValueError),
        ("num_parameters", "num_parameters", 0, ValueError),
    ],
)
def test_bad_options_name_the_option(name, option, value, error):
    with pytest.raises(error, match=option.split("_")[0]):
        get_estimator(name)(**{option: value})


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        get_estimator("hscore")(intercept=True)


@pytest.mark.parametrize("name", ["logme", "linear_probe", "parc"])
def test_regression_methods_score_targets(name):
    rng = np.random.default_rng(3)
    features = rng.normal(size=(80, 5))
    targets = features[:, :2] @ rng.normal(size=(2, 2)) + 0.1 * rng.normal(size=(80, 2))
    good = full_score(name, features, targets, regression=True)
    noise = full_score(name, rng.normal(size=(80, 5)), targets, regression=True)
    assert good > noise


@pytest.mark.parametrize("name", DATA_METHODS)
def test_informative_features_score_higher_than_noise(name):
    features, labels = data(n=150, d=6)
    rng = np.random.default_rng(4)
    noise = rng.normal(size=features.shape).astype(np.float32)
    if name in SOURCE:  # logits that point at the label, against random logits
        features = 3.0 * np.eye(3)[labels] + rng.normal(size=(150, 3))
        noise = rng.normal(size=(150, 3))
    assert full_score(name, features, labels) > full_score(name, noise, labels)


def test_score_reaches_every_method():
    features, labels = data()
    for name in DATA_METHODS:
        assert np.isfinite(hf_logme.score(features, labels, method=name, **FAST.get(name, {})))
