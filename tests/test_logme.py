"""LogME against independent formulations, its invariances, streaming and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from oracles import centre_by_contrasts, one_hot, oracle_logme
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.linear_model import BayesianRidge

import hf_logme
from hf_logme import LogME, logme


def make_classification(n, d, k=3, separation=2.0, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k  # every class present
    rng.shuffle(labels)
    means = rng.normal(size=(k, d)) * separation
    features = means[labels] + rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, d)
    return features, labels


def make_regression(n, d, k=1, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, d)
    targets = features[:, : min(d, 4)] @ rng.normal(size=(min(d, 4), k)) + noise * rng.normal(
        size=(n, k)
    )
    return features, targets


# --- published values (scikit-learn's bundled data, converged maximum) ---------------------------


@pytest.mark.parametrize(
    "loader, regression, expected, as_float32",
    [
        (load_iris, False, -0.16006026, True),
        (load_digits, False, 0.27027763, False),
        (load_diabetes, True, -6.5235640, False),
    ],
)
def test_published_values(loader, regression, expected, as_float32):
    features, labels = loader(return_X_y=True)
    if as_float32:
        features = features.astype(np.float32)
    assert logme(features, labels, regression=regression) == pytest.approx(expected, rel=1e-6)


# --- against the dense n-dimensional oracle ------------------------------------------------------


@pytest.mark.parametrize(
    "n, d, separation",
    [(60, 8, 2.0), (60, 8, 0.1), (20, 40, 1.0), (30, 30, 1.0), (12, 100, 3.0)],
    ids=["separated", "overlapping", "n<D", "n=D", "n<<D"],
)
def test_classification_matches_oracle(n, d, separation):
    features, labels = make_classification(n, d, separation=separation, seed=n + d)
    expected = oracle_logme(features, one_hot(labels))
    assert logme(features, labels) == pytest.approx(expected, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("n, d, k", [(50, 6, 1), (50, 6, 3), (15, 30, 2), (25, 25, 1)])
def test_regression_matches_oracle(n, d, k):
    features, targets = make_regression(n, d, k, seed=n * d + k)
    expected = oracle_logme(features, targets)
    assert logme(features, targets, regression=True) == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_multilabel_is_regression_on_the_label_matrix():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(40, 10))
    labels = (features[:, :3] + 0.5 * rng.normal(size=(40, 3)) > 0).astype(np.int64)
    expected = oracle_logme(features, labels)
    assert logme(features, labels, regression=True) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("n, d", [(40, 6), (15, 30)])
def test_intercept_matches_explicit_centring(n, d):
    features, targets = make_regression(n, d, k=2, seed=7)
    features = features + 50.0  # a large common offset, as in mean-pooled transformer states
    targets = targets + 3.0
    centred_f, centred_y = centre_by_contrasts(features, targets)
    expected = oracle_logme(centred_f, centred_y)
    got = logme(features, targets, regression=True, intercept=True)
    assert got == pytest.approx(expected, rel=1e-7)


def test_intercept_classification_matches_explicit_centring():
    features, labels = make_classification(45, 7, seed=11)
    centred_f, centred_y = centre_by_contrasts(features + 20.0, one_hot(labels))
    expected = oracle_logme(centred_f, centred_y)
    assert logme(features + 20.0, labels, intercept=True) == pytest.approx(expected, rel=1e-7)


def test_intercept_removes_a_common_offset():
    features, labels = make_classification(80, 10, seed=5)
    with_offset = logme(features + 1000.0, labels, intercept=True)
    assert with_offset == pytest.approx(logme(features, labels, intercept=True), rel=1e-9)
    # Without the intercept the offset is a feature like any other and changes the score.
    assert logme(features + 1000.0, labels) != pytest.approx(logme(features, labels), rel=1e-3)


def test_matches_bayesian_ridge_evidence():
    """scikit-learn's BayesianRidge (MacKay's fixed point), flat hyper-priors: one-target LogME."""
    features, targets = make_regression(200, 12, seed=2)
    y = targets[:, 0]
    ridge = BayesianRidge(
        fit_intercept=False,
        alpha_1=0,
        alpha_2=0,
        lambda_1=0,
        lambda_2=0,
        compute_score=True,
        tol=1e-14,
        max_iter=100000,
    ).fit(features, y)
    metric = LogME(regression=True).update(features, y)
    assert metric.compute() == pytest.approx(ridge.scores_[-1] / len(y), rel=1e-8)
    # sklearn's lambda_ is our alpha (weight precision), its alpha_ our beta (noise precision).
    assert float(metric.result.alpha[0]) == pytest.approx(ridge.lambda_, rel=1e-5)
    assert float(metric.result.beta[0]) == pytest.approx(ridge.alpha_, rel=1e-5)
    np.testing.assert_allclose(
        metric.result.weights[:, 0].numpy(), ridge.coef_, rtol=1e-5, atol=1e-10
    )


def test_optimum_satisfies_mackay_fixed_point():
    features, labels = make_classification(300, 20, k=4, seed=9)
    metric = LogME().update(features, labels)
    result = metric.result
    sigma = np.linalg.eigvalsh(features.T @ features)
    for k, label in enumerate(result.targets):
        y = (labels == label).astype(float)
        alpha, beta = float(result.alpha[k]), float(result.beta[k])
        m = result.weights[:, k].numpy()
        gamma = np.sum(beta * sigma / (alpha + beta * sigma))
        assert alpha == pytest.approx(gamma / (m @ m), rel=1e-6)
        assert beta == pytest.approx((len(y) - gamma) / np.sum((y - features @ m) ** 2), rel=1e-6)


def test_posterior_mean_is_the_ridge_solution():
    features, targets = make_regression(100, 8, k=2, seed=4)
    metric = LogME(regression=True).update(features, targets)
    result = metric.result
    for k in range(2):
        ratio = float(result.alpha[k] / result.beta[k])
        ridge = np.linalg.solve(
            features.T @ features + ratio * np.eye(8), features.T @ targets[:, k]
        )
        np.testing.assert_allclose(result.weights[:, k].numpy(), ridge, rtol=1e-8)
    np.testing.assert_allclose(
        metric.predict(features).numpy(), features @ result.weights.numpy(), rtol=1e-10
    )


def test_predict_classification_returns_labels():
    features, labels = make_classification(200, 5, separation=5.0, seed=1)
    names = np.array(["cat", "dog", "eel"])[labels]
    metric = LogME().update(features, names)
    predicted = metric.predict(features)
    assert set(predicted) <= {"cat", "dog", "eel"}
    assert np.mean(predicted == names) > 0.9


def test_predict_with_intercept_uses_the_bias():
    features, targets = make_regression(120, 5, seed=6)
    metric = LogME(regression=True, intercept=True).update(features + 10.0, targets + 100.0)
    residual = metric.predict(features + 10.0).numpy() - (targets + 100.0)
    assert abs(residual.mean()) < 0.1
    assert residual.std() < 1.0


# --- the n <= D case -----------------------------------------------------------------------------


def test_n_below_d_takes_the_noise_free_limit_when_it_is_the_supremum():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 50))
    # Along the top singular direction: g(lambda) rises towards its noise-free limit.
    y = 3.0 * np.linalg.svd(features)[0][:, 0] + 0.1 * np.linalg.svd(features)[0][:, -1]
    metric = LogME(regression=True).update(features, y)
    assert math.isinf(float(metric.result.beta[0]))
    assert metric.compute() == pytest.approx(oracle_logme(features, y), rel=1e-8)
    # alpha at the limit: n / (y^T (F F^T)^-1 y)
    q = y @ np.linalg.solve(features @ features.T, y)
    assert float(metric.result.alpha[0]) == pytest.approx(10 / q, rel=1e-8)


def test_score_matches_oracle_for_every_n_up_to_d():
    features, labels = make_classification(64, 64, seed=3)
    for n in (4, 8, 16, 32, 63, 64):
        rows = np.arange(n)
        if len(np.unique(labels[rows])) < 2:
            continue
        value = logme(features[rows], labels[rows])
        assert math.isfinite(value)
        assert value == pytest.approx(oracle_logme(features[rows], one_hot(labels[rows])), rel=1e-7)


# --- rank deficiency and invariances -------------------------------------------------------------


def test_rank_deficient_features_match_oracle():
    features, labels = make_classification(50, 6, seed=8)
    deficient = np.hstack([features, features[:, :3], np.zeros((50, 4))])
    assert np.linalg.matrix_rank(deficient) == 6
    expected = oracle_logme(deficient, one_hot(labels))
    assert logme(deficient, labels) == pytest.approx(expected, rel=1e-7)
    assert LogME().update(deficient, labels).result.rank == 6


@pytest.mark.parametrize("n, d", [(80, 12), (10, 30)])
def test_invariances(n, d):
    features, labels = make_classification(n, d, seed=n)
    reference = logme(features, labels)
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(d, d)))[0]
    assert logme(features @ rotation, labels) == pytest.approx(reference, rel=1e-9)
    assert logme(np.hstack([features, np.zeros((n, 5))]), labels) == pytest.approx(
        reference, rel=1e-9
    )
    for scale in (1e-3, 1e3):
        assert logme(features * scale, labels) == pytest.approx(reference, rel=1e-9)


def test_label_scale_shifts_regression_score_by_log_scale():
    features, targets = make_regression(60, 5, seed=12)
    base = logme(features, targets, regression=True)
    assert logme(features, 10 * targets, regression=True) == pytest.approx(
        base - math.log(10), rel=1e-9
    )


# --- labels --------------------------------------------------------------------------------------


def test_gapped_string_and_bool_labels_equal_dense_integers():
    features, labels = make_classification(90, 7, k=3, seed=13)
    reference = logme(features, labels)
    assert logme(features, np.array([3, 10, 42])[labels]) == pytest.approx(reference, rel=1e-12)
    assert logme(features, np.array(["b", "a", "zz"])[labels]) == pytest.approx(
        reference, rel=1e-12
    )
    assert logme(features, [float(v) for v in labels]) == pytest.approx(reference, rel=1e-12)
    assert logme(features, torch.tensor(labels)) == pytest.approx(reference, rel=1e-12)
    two = labels % 2
    assert logme(features, two.astype(bool)) == pytest.approx(logme(features, two), rel=1e-12)


def test_missing_class_is_not_an_empty_target():
    """Labels 0 and 2 only: two targets, not three with an all-zero column for class 1."""
    features, labels = make_classification(60, 5, k=2, seed=14)
    assert logme(features, labels * 2) == pytest.approx(logme(features, labels), rel=1e-12)
    assert LogME().update(features, labels * 2).result.targets == [0, 2]


def test_targets_are_reported_in_sorted_order_whatever_the_batch_order():
    features, labels = make_classification(60, 5, k=3, seed=15)
    names = np.array(["c", "a", "b"])[labels]
    metric = LogME()
    order = np.argsort(names == "a")  # class "a" only in the last rows
    for rows in np.array_split(order, 3):
        metric.update(features[rows], names[rows])
    assert metric.result.targets == ["a", "b", "c"]
    single = LogME().update(features, names).result
    torch.testing.assert_close(metric.result.scores, single.scores, rtol=1e-10, atol=0)


# --- dtypes, streaming, merging, devices ---------------------------------------------------------


def test_low_precision_inputs_are_accumulated_in_float64():
    features, labels = make_classification(200, 16, seed=16)
    f16 = features.astype(np.float16)
    reference = logme(f16.astype(np.float64), labels)
    assert logme(f16, labels) == pytest.approx(reference, rel=1e-12)
    assert logme(torch.from_numpy(f16), labels) == pytest.approx(reference, rel=1e-12)
    bf16 = torch.from_numpy(features).to(torch.bfloat16)
    assert logme(bf16, labels) == pytest.approx(logme(bf16.double(), labels), rel=1e-12)
    f32 = features.astype(np.float32)
    assert logme(f32, labels) == pytest.approx(logme(f32.astype(np.float64), labels), rel=1e-12)


def test_uneven_batches_equal_one_pass(monkeypatch):
    features, labels = make_classification(500, 24, k=5, seed=17)
    reference = logme(features, labels)
    metric = LogME()
    for rows in np.split(np.arange(500), [1, 3, 60, 61, 300]):
        metric.update(features[rows].astype(np.float32), labels[rows])
    assert metric.compute() == pytest.approx(logme(features.astype(np.float32), labels), rel=1e-11)
    assert metric.compute() == pytest.approx(reference, rel=1e-6)
    # Small conversion chunks inside one update give the same statistics.
    from hf_logme.estimators import _statistics

    monkeypatch.setattr(_statistics, "CHUNK_BYTES", 8 * 24 * 7)
    assert logme(features.astype(np.float32), labels) == pytest.approx(metric.compute(), rel=1e-11)


def test_merge_of_shuffled_halves_equals_one_pass():
    features, targets = make_regression(400, 10, k=2, seed=18)
    order = np.random.default_rng(0).permutation(400)
    first, second = LogME(regression=True), LogME(regression=True)
    first.update(features[order[:150]], targets[order[:150]])
    second.update(features[order[150:]], targets[order[150:]])
    merged = first.merge(second)
    assert merged.compute() == pytest.approx(logme(features, targets, regression=True), rel=1e-11)


def test_merge_matches_classes_by_label():
    features, labels = make_classification(120, 6, k=4, seed=19)
    names = np.array(["w", "x", "y", "z"])[labels]
    a = LogME().update(features[names != "z"], names[names != "z"])
    b = LogME().update(features[names != "w"], names[names != "w"])
    a.merge(b)
    both = np.concatenate([np.flatnonzero(names != "z"), np.flatnonzero(names != "w")])
    assert a.compute() == pytest.approx(logme(features[both], names[both]), rel=1e-11)
    empty = LogME()
    assert empty.merge(a).compute() == pytest.approx(a.compute(), rel=1e-12)


def test_state_dict_round_trip_and_reset():
    features, labels = make_classification(100, 6, seed=20)
    metric = LogME(intercept=True).update(features, labels)
    restored = LogME(intercept=True)
    restored.load_state_dict(metric.state_dict())
    assert restored.compute() == pytest.approx(metric.compute(), rel=1e-14)
    with pytest.raises(ValueError, match="options"):
        LogME().load_state_dict(metric.state_dict())
    metric.reset()
    with pytest.raises(ValueError, match="before any data"):
        metric.compute()


def test_numpy_and_torch_inputs_agree_and_features_are_not_modified():
    features, labels = make_classification(80, 9, seed=21)
    before = features.copy()
    tensor = torch.from_numpy(features.astype(np.float32))
    assert logme(tensor, torch.from_numpy(labels)) == pytest.approx(
        logme(features.astype(np.float32), labels), rel=1e-12
    )
    np.testing.assert_array_equal(features, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    features, labels = make_classification(3000, 64, k=10, seed=22)
    cpu = logme(features.astype(np.float32), labels)
    gpu = logme(torch.from_numpy(features.astype(np.float32)).cuda(), labels)
    assert gpu == pytest.approx(cpu, rel=1e-10)


def test_score_registry():
    features, labels = make_classification(50, 4, seed=23)
    assert hf_logme.score(features, labels) == logme(features, labels)
    assert hf_logme.score(features, labels, method="logme", intercept=True) == logme(
        features, labels, intercept=True
    )
    with pytest.raises(ValueError, match=r"Unknown method 'leap'.*'logme'"):
        hf_logme.score(features, labels, method="leap")
    with pytest.raises(TypeError, match="intercep"):
        hf_logme.score(features, labels, intercep=True)


# --- degenerate targets --------------------------------------------------------------------------


def test_exact_linear_target_is_infinite_with_a_warning():
    rng = np.random.default_rng(24)
    features = rng.normal(size=(50, 5))
    with pytest.warns(RuntimeWarning, match="exact linear functions"):
        assert logme(features, features @ rng.normal(size=5), regression=True) == math.inf


def test_features_without_signal_give_the_no_signal_limit():
    rng = np.random.default_rng(25)
    labels = np.arange(100) % 2
    metric = LogME().update(np.zeros((100, 3)), labels)
    # All-zero features: y ~ N(0, I / beta) with beta = n / y^T y.
    expected = np.mean([-0.5 * (math.log(2 * math.pi * 0.5) + 1)] * 2)
    assert metric.compute() == pytest.approx(expected, rel=1e-12)
    assert math.isinf(float(metric.result.alpha[0]))
    assert rng is not None


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "features, labels, options, error, match",
    [
        (np.zeros((4, 3, 2)), [0, 1, 0, 1], {}, ValueError, r"2-D .*\(4, 3, 2\).*pooling"),
        (np.zeros(4), [0, 1, 0, 1], {}, ValueError, r"2-D.*reshape"),
        (np.zeros((4, 3)), [0, 1, 0], {}, ValueError, r"labels has 3 rows but features has 4"),
        (np.array([[np.nan, 1], [1, 2], [np.inf, 0]]), [0, 1, 0], {}, ValueError, r"2 of 3 rows"),
        (np.ones((3, 2)), [0.5, 1.0, 2.0], {}, ValueError, r"not integers.*regression=True"),
        (
            np.ones((3, 2)),
            [[0, 1], [1, 0], [1, 1]],
            {},
            ValueError,
            r"1-D class labels.*regression=True",
        ),
        (
            np.ones((3, 2)),
            [1.0, np.nan, 2.0],
            {"regression": True},
            ValueError,
            r"labels contains NaN.*1 of 3",
        ),
        (
            np.ones((3, 2)),
            ["a", "b", "c"],
            {"regression": True},
            TypeError,
            r"numeric for regression",
        ),
        (np.array([["a", "b"]]), [0], {}, TypeError, r"features must be numeric"),
        (np.zeros((0, 3)), [], {}, ValueError, r"no rows"),
        (np.zeros((1, 3)), [0], {}, ValueError, r"at least 2 samples"),
        (np.random.rand(5, 3), [1, 1, 1, 1, 1], {}, ValueError, r"single class \(1\)"),
        (
            np.random.rand(5, 3),
            [1, 1, 1, 1, 1],
            {"regression": True, "intercept": True},
            ValueError,
            r"constant",
        ),
    ],
)
def test_bad_input_errors(features, labels, options, error, match):
    with pytest.raises(error, match=match):
        logme(features, labels, **options)


def test_batch_mismatch_errors():
    metric = LogME().update(np.random.rand(5, 3), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="4 columns but earlier batches had 3"):
        metric.update(np.random.rand(5, 4), [0, 1, 0, 1, 0])
    reg = LogME(regression=True).update(np.random.rand(5, 3), np.random.rand(5, 2))
    with pytest.raises(ValueError, match="1 target columns but earlier batches had 2"):
        reg.update(np.random.rand(5, 3), np.random.rand(5))
    with pytest.raises(ValueError, match="options"):
        metric.merge(LogME(regression=True))
    with pytest.raises(ValueError, match="options"):
        metric.merge(LogME(intercept=True))
    with pytest.raises(ValueError, match="4-dimensional"):
        metric.merge(LogME().update(np.random.rand(5, 4), [0, 1, 0, 1, 0]))
    with pytest.raises(TypeError, match="Can only merge LogME"):
        metric.merge(object())
    # A failed update leaves the state as it was.
    assert metric.statistics.n == 5


def test_compute_on_empty_raises():
    with pytest.raises(ValueError, match=r"before any data.*update\(features, labels\)"):
        LogME().compute()
