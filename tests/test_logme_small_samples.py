"""LogME with a weak prior on the noise precision (``prior=nu``): finite and continuous for any n.

The references are independent of the package's spectral profile: the dense n-dimensional
Gaussian marginal likelihood (tests/oracles.py) plus the Gamma log prior, maximised with scipy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from oracles import centre_by_contrasts, dense_log_evidence, one_hot, oracle_logme
from scipy.optimize import minimize

from hf_logme import LogME, logme

NU = 2.0


def dataset(n, d, seed=0, k=2):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    rng.shuffle(labels)
    features = rng.normal(size=(n, d)) + 1.5 * rng.normal(size=(k, d))[labels]
    return features, labels


def with_duplicates(features, labels, pairs=2):
    """The first ``pairs`` rows repeated over the next ones (same input, same label)."""
    features, labels = features.copy(), labels.copy()
    features[pairs : 2 * pairs], labels[pairs : 2 * pairs] = features[:pairs], labels[:pairs]
    return features, labels


def log_posterior(features, y, log_alpha, log_beta, nu):
    """Dense log evidence plus the log density of log beta under Gamma(nu / 2, nu s^2 / 2)."""
    s2 = y @ y / len(y)
    beta = math.exp(log_beta)
    evidence = dense_log_evidence(features, y, -log_alpha, 1.0 / beta)
    return evidence + 0.5 * nu * log_beta - 0.5 * nu * s2 * beta


def posterior_mode(features, y, nu):
    """argmax over (log alpha, log beta) of ``log_posterior`` by Nelder-Mead from several starts."""
    best = None
    for x0 in [(0, 0), (-4, 2), (4, 2), (0, 6), (-8, -2)]:
        res = minimize(
            lambda p: -log_posterior(features, y, p[0], p[1], nu),
            x0,
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 20000},
        )
        if best is None or res.fun < best.fun:
            best = res
    return best.x


@pytest.mark.parametrize("n, d", [(12, 30), (30, 30), (45, 30)], ids=["n<D", "n=D", "n>D"])
def test_finite_with_duplicate_rows_where_the_exact_score_is_infinite(n, d):
    features, labels = with_duplicates(*dataset(n, d, seed=n))
    for intercept in (False, True):
        exact_is_inf = n - intercept <= d + 2  # duplicates leave y in the column space of F
        if exact_is_inf:
            with pytest.warns(RuntimeWarning, match="prior="):
                assert logme(features, labels, intercept=intercept) == math.inf
        score = logme(features, labels, intercept=intercept, prior=NU)
        assert math.isfinite(score)
        result = LogME(intercept=intercept, prior=NU).update(features, labels).result
        assert np.isfinite(result.beta.numpy()).all()
        assert np.isfinite(result.weights.numpy()).all()


def test_mode_matches_the_dense_log_posterior_and_the_score_is_the_evidence_there():
    """n < D with a duplicate: the mode and the score against scipy on dense matrices."""
    features, targets = with_duplicates(*dataset(14, 25, seed=3))
    y = (targets == 1).astype(float)
    result = LogME(regression=True, prior=NU).update(features, y).result
    log_alpha, log_beta = posterior_mode(features, y, NU)
    assert math.log(float(result.alpha[0])) == pytest.approx(log_alpha, abs=1e-5)
    assert math.log(float(result.beta[0])) == pytest.approx(log_beta, abs=1e-5)
    alpha, beta = float(result.alpha[0]), float(result.beta[0])
    evidence = dense_log_evidence(features, y, -math.log(alpha), 1.0 / beta)
    assert result.score == pytest.approx(evidence / len(y), rel=1e-10)
    # Stationarity: both partial derivatives of the dense log posterior vanish at the mode.
    point, h = np.log([alpha, beta]), 1e-5
    for axis in range(2):
        step = np.eye(2)[axis] * h
        up = log_posterior(features, y, *(point + step), NU)
        down = log_posterior(features, y, *(point - step), NU)
        assert (up - down) / (2 * h) == pytest.approx(0.0, abs=1e-5)


def test_intercept_matches_the_dense_posterior_of_the_centred_contrasts():
    features, labels = dataset(20, 30, seed=4, k=3)
    contrasts_f, contrasts_y = centre_by_contrasts(features + 7.0, one_hot(labels))
    result = LogME(intercept=True, prior=NU).update(features + 7.0, labels).result
    expected = []
    for k, y in enumerate(contrasts_y.T):
        log_alpha, log_beta = posterior_mode(contrasts_f, y, NU)
        assert math.log(float(result.alpha[k])) == pytest.approx(log_alpha, abs=1e-5)
        evidence = dense_log_evidence(contrasts_f, y, -log_alpha, math.exp(-log_beta))
        expected.append(evidence / len(y))
    assert result.score == pytest.approx(np.mean(expected), rel=1e-7)


def weight_space_logme(features, y):
    """Exact maximum evidence per sample in the D-dimensional weight-space form (Bishop, PRML
    3.86): D/2 log a + n/2 log b - b/2 |y - F m|^2 - a/2 |m|^2 - 1/2 log|A| - n/2 log 2 pi with
    A = a I + b F^T F, m = b A^-1 F^T y; maximised by scipy. Fast for small D and large n."""
    n, d = features.shape
    gram, cross = features.T @ features, features.T @ y

    def negative(p):
        a, b = np.exp(p)
        A = a * np.eye(d) + b * gram
        m = b * np.linalg.solve(A, cross)
        fit = y @ y - 2 * m @ cross + m @ gram @ m
        return -(
            0.5 * d * p[0]
            + 0.5 * n * p[1]
            - 0.5 * b * fit
            - 0.5 * a * m @ m
            - 0.5 * np.linalg.slogdet(A)[1]
            - 0.5 * n * np.log(2 * np.pi)
        )

    best = min(
        minimize(negative, x0, method="Nelder-Mead", options={"xatol": 1e-11, "fatol": 1e-13}).fun
        for x0 in [(0, 0), (-5, 2), (5, -2)]
    )
    return -best / n


def test_converges_to_the_exact_maximum_evidence():
    features, labels = dataset(1280, 4, seed=5)
    y = (labels == 1).astype(float)
    gaps = []
    for n in (40, 160, 640, 1280):
        exact = weight_space_logme(features[:n], y[:n])
        with_prior = logme(features[:n], y[:n], regression=True, prior=NU)
        assert with_prior <= exact + 1e-12  # the evidence at the mode never exceeds its maximum
        gaps.append(exact - with_prior)
    assert gaps[-1] < 1e-4
    # O(1 / n^2) per sample: each doubling of n cuts the gap by about four, so x4 by about 16.
    assert gaps[1] < gaps[0] / 8 and gaps[2] < gaps[1] / 8
    assert gaps[3] < gaps[2] / 2.5
    assert (
        logme(features[:40], labels[:40], prior=NU)
        <= oracle_logme(features[:40], one_hot(labels[:40])) + 1e-12
    )


def test_no_jump_across_n_equal_d():
    d = 40
    features, labels = dataset(d + 12, d, seed=6)
    scores = {n: logme(features[:n], labels[:n], prior=NU) for n in range(d - 10, d + 12)}
    steps = {n: abs(scores[n + 1] - scores[n]) for n in range(d - 10, d + 11)}
    typical = max(steps[n] for n in steps if abs(n - d) > 2)
    assert max(steps[n] for n in (d - 2, d - 1, d, d + 1)) <= 1.5 * typical


def test_continuous_as_two_rows_become_duplicates():
    """Exact LogME blows up as a row approaches another; with the prior it converges."""
    features, labels = dataset(15, 30, seed=7)
    labels[1] = labels[0]
    direction = np.random.default_rng(0).normal(size=30)
    merged = features.copy()
    merged[1] = merged[0]
    limit = logme(merged, labels, prior=NU)
    near = {}
    for eps in (1e-2, 1e-4, 1e-6):
        moved = merged.copy()
        moved[1] = moved[0] + eps * direction
        near[eps] = logme(moved, labels, prior=NU)
    assert abs(near[1e-6] - limit) < 1e-4
    assert abs(near[1e-6] - limit) < abs(near[1e-2] - limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        moved = merged.copy()
        moved[1] = moved[0] + 1e-6 * direction
        assert logme(moved, labels) > limit + 0.5  # the exact score runs away meanwhile


@pytest.mark.parametrize("n, d", [(80, 12), (10, 30)])
def test_invariances(n, d):
    features, labels = with_duplicates(*dataset(n, d, seed=n))
    reference = logme(features, labels, prior=NU)
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(d, d)))[0]
    assert logme(features @ rotation, labels, prior=NU) == pytest.approx(reference, rel=1e-9)
    padded = np.hstack([features, np.zeros((n, 5))])
    assert logme(padded, labels, prior=NU) == pytest.approx(reference, rel=1e-9)
    for scale in (1e-3, 1e3):
        assert logme(features * scale, labels, prior=NU) == pytest.approx(reference, rel=1e-9)
    y = features[:, 0] + np.random.default_rng(2).normal(size=n)
    base = logme(features[:, 1:], y, regression=True, prior=NU)
    shifted = logme(features[:, 1:], 10 * y, regression=True, prior=NU)
    assert shifted == pytest.approx(base - math.log(10), rel=1e-9)


def test_no_signal_floor_is_reported():
    rng = np.random.default_rng(8)
    labels = np.arange(40) % 2
    # Features orthogonal to the constant and to the labels carry no signal by construction.
    basis = np.linalg.qr(np.column_stack([np.ones(40), labels]))[0]
    noise = rng.normal(size=(40, 60))
    noise -= basis @ (basis.T @ noise)
    result = LogME(prior=NU).update(noise, labels).result
    assert result.no_signal
    assert result.no_signal_targets.tolist() == [True, True]
    assert np.isinf(result.alpha.numpy()).all()
    # At the floor y ~ N(0, I / beta) with beta = n / y^T y: the score ignores the features.
    expected = -0.5 * (math.log(2 * math.pi * 0.5) + 1)
    assert result.score == pytest.approx(expected, rel=1e-12)
    informative = noise.copy()
    informative[:, :2] += 3.0 * np.eye(2)[labels]
    signal = LogME(prior=NU).update(informative, labels).result
    assert not signal.no_signal
    assert signal.no_signal_targets.tolist() == [False, False]


def test_merge_and_state_require_the_same_prior():
    features, labels = dataset(30, 5, seed=9)
    with pytest.raises(ValueError, match="options"):
        LogME(prior=NU).update(features, labels).merge(LogME().update(features, labels))
    a = LogME(prior=NU).update(features[:10], labels[:10])
    a.merge(LogME(prior=NU).update(features[10:], labels[10:]))
    assert a.compute() == pytest.approx(logme(features, labels, prior=NU), rel=1e-11)


@pytest.mark.parametrize(
    "prior, error, match",
    [
        ("2", TypeError, r"prior must be None .* got str '2'"),
        (True, TypeError, r"prior must be None .* got bool True"),
        (0.0, ValueError, r"positive, finite .* got 0\.0"),
        (-1, ValueError, r"positive, finite .* got -1"),
        (math.inf, ValueError, r"positive, finite .* got inf"),
        (math.nan, ValueError, r"positive, finite .* got nan"),
    ],
)
def test_prior_validation(prior, error, match):
    with pytest.raises(error, match=match):
        LogME(prior=prior)
