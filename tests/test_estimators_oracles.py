"""Every estimator against an independent formulation: the authors' reference code re-derived in
numpy/scipy, scikit-learn, or a hand-computed case."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from hf_logme import score
from hf_logme.estimators import NLEEP, LinearProbe
from hf_logme.estimators._gmm import _m_step, gmm_posteriors, kmeans_labels, pca
from hf_logme.estimators.linear_probe import stratified_folds


def classification(n=240, d=10, k=3, separation=1.0, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    rng.shuffle(labels)
    features = (
        rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d) + separation * np.eye(k, d)[labels]
    )
    return features + offset, labels


# --- Gram estimators -------------------------------------------------------------------------


def reference_hscore(f, y):
    """Bao et al.'s code: tr(pinv(cov f) cov g), g each row's class mean."""
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(0)
    return np.trace(np.linalg.pinv(np.cov(f, rowvar=False), rcond=1e-15) @ np.cov(g, rowvar=False))


def reference_shrinkage_hscore(f, y):
    """Ibrahim et al.'s code: Ledoit-Wolf covariance, (1 - alpha) cov g."""
    f = f - f.mean(0)
    lw = LedoitWolf(assume_centered=False).fit(f)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(0)
    cov_g = np.atleast_2d(np.cov(g, rowvar=False))
    return np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15) @ ((1 - lw.shrinkage_) * cov_g))


@pytest.mark.parametrize("offset", [0.0, 50.0])
@pytest.mark.parametrize("n, d", [(240, 10), (400, 30)])
def test_hscore_matches_reference(n, d, offset):
    f, y = classification(n, d, offset=offset, seed=d)
    assert score(f, y, method="hscore") == pytest.approx(reference_hscore(f, y), rel=1e-9)


@pytest.mark.parametrize("offset", [0.0, 20.0])
@pytest.mark.parametrize("n, d", [(240, 10), (30, 80), (200, 1)])
def test_shrinkage_hscore_matches_reference(n, d, offset):
    f, y = classification(n, d, k=3, offset=offset, seed=n + d)
    expected = reference_shrinkage_hscore(f, y)
    assert score(f, y, method="shrinkage_hscore") == pytest.approx(expected, rel=1e-8)


def test_hscore_closed_form_two_points_per_class():
    # One feature, classes {0: [-1, -1], 1: [1, 1]}: all variance is between classes, H = 1.
    f = np.array([[-1.0], [-1.0], [1.0], [1.0]])
    assert score(f, [0, 0, 1, 1], method="hscore") == pytest.approx(1.0, rel=1e-12)


# --- class statistics ------------------------------------------------------------------------


def reference_gbc(f, y, gaussian_type):
    """Pandy et al.'s code (google-research stable_transfer/transferability/gbc.py)."""
    stats = {c: (f[y == c].mean(0), np.maximum(f[y == c].var(0), 1e-4)) for c in np.unique(y)}
    total = 0.0
    for a, (m1, s1) in stats.items():
        for b, (m2, s2) in stats.items():
            if a == b:
                continue
            v1, v2 = (np.mean(s1), np.mean(s2)) if gaussian_type == "spherical" else (s1, s2)
            avg = (v1 + v2) / 2
            distance = np.sum((m1 - m2) ** 2 / avg) / 8 + 0.5 * (
                np.sum(np.log(avg)) - 0.5 * np.sum(np.log(v1)) - 0.5 * np.sum(np.log(v2))
            )
            total += np.exp(-distance)
    return -total


@pytest.mark.parametrize("gaussian_type", ["diagonal", "spherical"])
def test_gbc_matches_reference(gaussian_type):
    f, y = classification(300, 6, k=4, seed=2)
    f[:, 0] = 3.0  # a constant feature: the variance floor applies
    expected = reference_gbc(f, y, gaussian_type)
    assert score(f, y, method="gbc", gaussian_type=gaussian_type) == pytest.approx(
        expected, rel=1e-10
    )


# --- rows ------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 5])
def test_knn_matches_sklearn_leave_one_out(metric, k):
    f, y = classification(100, 6, k=4, seed=3)
    knn = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
    expected = cross_val_score(knn, f, y, cv=LeaveOneOut()).mean()
    assert score(f, y, method="knn", k=k, metric=metric) == pytest.approx(expected, abs=1e-12)


def test_knn_hand_case():
    # Points on a line; with k=1 each point's nearest other point decides.
    f = np.array([[0.0], [0.1], [1.0], [1.1], [5.0]])
    y = ["a", "a", "b", "b", "a"]  # the last point's neighbour is "b": 4 of 5 correct
    assert score(f, y, method="knn", k=1, metric="euclidean") == pytest.approx(0.8)


def test_pca_matches_sklearn():
    f, _ = classification(120, 9, seed=4)
    for n_components in (0.8, 5):
        ours = pca(torch.from_numpy(f), n_components).numpy()
        np.testing.assert_allclose(ours, PCA(n_components).fit_transform(f), atol=1e-10)


def test_gmm_matches_sklearn_from_the_same_start():
    f, _ = classification(300, 4, k=3, separation=3.0, seed=5)
    x = torch.from_numpy(f)
    resp = torch.nn.functional.one_hot(kmeans_labels(x, 6, seed=0), 6).double()
    weights, means, covs = _m_step(x, resp, 1e-6)
    gmm = GaussianMixture(
        6,
        weights_init=weights.numpy(),
        means_init=means.numpy(),
        precisions_init=np.linalg.inv(covs.numpy()),
        tol=1e-3,
        max_iter=100,
    ).fit(f)
    ours = gmm_posteriors(x, 6, seed=0, init=(weights, means, covs)).numpy()
    np.testing.assert_allclose(ours, gmm.predict_proba(f), atol=1e-8)


def test_nleep_matches_pca_gmm_leep_formula():
    # Well separated clusters: the mixture found is the one scikit-learn finds from any start.
    rng = np.random.default_rng(6)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]], dtype=float)
    y = np.repeat(np.arange(4), 60)
    f = centres[y] + rng.normal(size=(240, 3))
    reduced = PCA(0.8).fit_transform(f)
    posteriors = GaussianMixture(4, random_state=0).fit(reduced).predict_proba(reduced)
    joint = np.stack([posteriors[y == c].sum(0) for c in range(4)]) / len(y)
    conditional = joint / joint.sum(0)
    expected = np.mean(np.log((posteriors * conditional[y]).sum(1)))
    assert score(f, y, method="nleep", component_ratio=1) == pytest.approx(expected, abs=1e-8)


def reference_transrate(f, y, eps=1e-4):
    """Huang et al.'s code: coding rates by slogdet of D x D matrices."""

    def rate(z):
        n, d = z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]

    z = f - f.mean(0)
    classes = np.unique(y)
    return rate(z) - sum(rate(z[y == c]) for c in classes) / len(classes)


@pytest.mark.parametrize("n, d", [(240, 10), (40, 60)])
def test_transrate_matches_reference(n, d):
    f, y = classification(n, d, seed=7)
    assert score(f, y, method="transrate") == pytest.approx(reference_transrate(f, y), rel=1e-9)


def reference_sfda(f, y):
    """Shao et al.'s code, with its generalised eigenproblem (scipy), shrinkage and ConfMix."""

    def cov(x, shrinkage=-1.0):
        c = np.atleast_2d(np.cov(x.T, bias=1))
        if shrinkage < 0:
            return c
        d = c.shape[0]
        mu = np.trace(c) / d
        c = (1 - shrinkage) * c
        c.flat[:: d + 1] += shrinkage * mu
        return c

    def fit(x, shrinkage=None):
        classes, codes = np.unique(y, return_inverse=True)
        priors = np.bincount(codes) / len(y)
        means = np.stack([x[codes == i].mean(0) for i in range(len(classes))])
        within = sum(priors[i] * cov(x[codes == i]) for i in range(len(classes)))
        if shrinkage is None:
            v = within.sum(1)
            for _ in range(3):
                t = within @ v
                u = t / np.linalg.norm(t)
                t = within @ u
                v = t / np.linalg.norm(t)
            shrinkage = max(np.exp(-5 * (v @ within @ u)), 1e-10)
        d = within.shape[0]
        shrunk = (1 - shrinkage) * within
        shrunk.flat[:: d + 1] += shrinkage * np.trace(within) / d
        values, vectors = scipy.linalg.eigh(cov(x, shrinkage) - shrunk, shrunk)
        vectors = vectors[:, np.argsort(values)[::-1]]
        coef = means @ vectors @ vectors.T
        logits = x @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
        return scipy.special.softmax(logits, axis=1), shrinkage, means, codes

    x = f.copy()
    prob, shrinkage, means, codes = fit(x)
    prob = scipy.special.softmax(prob, axis=1)
    k = means.shape[0]
    others = (means.sum(0) - means) / (k - 1)
    q = prob[np.arange(len(y)), codes][:, None]
    x = q * x + (1 - q) * others[codes]
    prob, _, _, _ = fit(x, shrinkage)
    return prob[np.arange(len(y)), codes].mean()


@pytest.mark.parametrize("scale", [1.0, 0.05])
def test_sfda_matches_reference(scale):
    f, y = classification(240, 12, k=4, seed=8)
    f = f * scale
    assert score(f, y, method="sfda") == pytest.approx(reference_sfda(f, y), rel=1e-9)



def test_sfda_with_a_dead_feature_matches_reference():
    # A dimension with no variance (a saturated unit) leaves S_w singular before shrinkage.
    f, y = classification(240, 12, k=4, seed=9)
    f[:, 3] = 2.5
    assert score(f, y, method="sfda") == pytest.approx(reference_sfda(f, y), rel=1e-9)


def test_row_estimators_on_rows_that_are_all_the_same_vector():
    # What the [CLS] position of the embedding layer gives (layers="best" scores it): one vector
    # for every row. The class means coincide, so SFDA's classifier is its prior:
    # mean_i p(y_i) = sum_k p_k^2; PARC's feature arrangement is constant: correlation 0.
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    f = np.tile(np.linspace(-1.0, 3.0, 24), (100, 1))
    assert score(f, y, method="sfda") == pytest.approx(0.5**2 + 0.3**2 + 0.2**2, rel=1e-12)
    assert score(f, y, method="parc") == 0.0


def reference_parc(f, y, n_components=32):
    """Bolya et al.'s code, with the label dissimilarities' round-off ties made exact."""
    if n_components < f.shape[1]:
        f = PCA(n_components).fit_transform(f)
    f = StandardScaler().fit_transform(f)
    labels = np.eye(y.max() + 1)[y]
    upper = np.triu_indices(len(f), 1)
    label_rdm = np.round((1 - np.corrcoef(labels))[upper], 12)
    return scipy.stats.spearmanr((1 - np.corrcoef(f))[upper], label_rdm)[0] * 100


@pytest.mark.parametrize("n, d", [(150, 40), (60, 100), (80, 8)])
def test_parc_matches_reference(n, d):
    f, y = classification(n, d, k=3, seed=n)
    assert score(f, y, method="parc") == pytest.approx(reference_parc(f, y), rel=1e-9)


def test_parc_regression_uses_the_target_matrix():
    rng = np.random.default_rng(9)
    f = rng.normal(size=(70, 5))
    targets = f[:, :3] @ rng.normal(size=(3, 3)) + 0.3 * rng.normal(size=(70, 3))
    upper = np.triu_indices(70, 1)
    fs = StandardScaler().fit_transform(f)
    expected = (
        100
        * scipy.stats.spearmanr((1 - np.corrcoef(fs))[upper], (1 - np.corrcoef(targets))[upper])[0]
    )
    assert score(f, targets, method="parc", regression=True) == pytest.approx(expected, rel=1e-9)


# --- the linear probe against scikit-learn ---------------------------------------------------


def test_linear_probe_classification_matches_logistic_regression_cv():
    f, y = classification(90, 5, k=3, separation=0.8, seed=10)
    probe = LinearProbe(Cs=(0.1, 1.0), folds=3, tol=1e-8).update(f, y)
    sample = probe.statistics
    codes = sample.labels()[1]
    fold = stratified_folds(codes, 3).numpy()
    folds = [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(3)]
    x = StandardScaler().fit_transform(sample.features.double().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        reference = LogisticRegressionCV(
            Cs=[0.1, 1.0], cv=folds, scoring="accuracy", tol=1e-10, max_iter=10000
        ).fit(x, codes.numpy())
    expected = next(iter(reference.scores_.values())).mean(0).max()
    assert probe.compute() == pytest.approx(expected, abs=1e-12)


def test_stratified_folds_balance_each_class():
    codes = torch.tensor([0] * 7 + [1] * 5)
    fold = stratified_folds(codes, 3)
    for k in (0, 1):
        counts = torch.bincount(fold[codes == k], minlength=3)
        assert int(counts.max() - counts.min()) <= 1


@pytest.mark.parametrize("targets", [1, 2])
def test_linear_probe_regression_matches_ridge_cv(targets):
    rng = np.random.default_rng(11)
    f = rng.normal(size=(120, 8)) * rng.uniform(0.5, 3, 8)
    y = f[:, :3] @ rng.normal(size=(3, targets)) + 0.7 * rng.normal(size=(120, targets))
    alphas = (0.1, 1.0, 10.0, 100.0)
    probe = LinearProbe(regression=True, alphas=alphas).update(f, y)
    x = StandardScaler().fit_transform(probe.statistics.features.double().numpy())
    t = probe.statistics.targets.numpy()
    reference = RidgeCV(alphas=alphas, store_cv_results=True).fit(x, t)
    cv = reference.cv_results_.reshape(len(t), targets, len(alphas))  # squared LOO errors
    best = int(np.argmin(cv.mean((0, 1))))
    expected = np.mean(1 - cv[:, :, best].mean(0) / t.var(0))
    assert alphas[best] == reference.alpha_
    assert probe.compute() == pytest.approx(expected, rel=1e-9)


# --- source predictions ----------------------------------------------------------------------


def test_leep_and_nce_hand_case():
    # Source predicts z for 4 rows; labels align perfectly with the argmax: NCE = 0.
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7]])
    labels = ["cat", "cat", "dog", "dog"]
    joint = np.array([[1.7, 0.3], [0.4, 1.6]]) / 4  # P(y, z) = sum of theta per label / n
    conditional = joint / joint.sum(0)
    codes = np.array([0, 0, 1, 1])
    expected = np.mean(np.log((probs * conditional[codes]).sum(1)))
    assert score(np.log(probs), labels, method="leep") == pytest.approx(expected, rel=1e-12)
    assert score(np.log(probs), labels, method="nce") == 0.0


def test_nce_is_minus_conditional_entropy():
    rng = np.random.default_rng(12)
    logits = rng.normal(size=(500, 6))
    y = rng.integers(0, 4, 500)
    z = logits.argmax(1)
    joint = np.zeros((4, 6))
    np.add.at(joint, (y, z), 1 / 500)
    pz = joint.sum(0)
    expected = sum(
        joint[a, b] * math.log(joint[a, b] / pz[b])
        for a in range(4)
        for b in range(6)
        if joint[a, b]
    )
    assert score(logits, y, method="nce") == pytest.approx(expected, rel=1e-12)


def test_leep_over_all_rows_when_uncapped():
    rng = np.random.default_rng(13)
    logits = rng.normal(size=(300, 5)) * 2
    y = rng.integers(0, 3, 300)
    theta = scipy.special.softmax(logits, axis=1)
    joint = np.stack([theta[y == c].sum(0) for c in range(3)]) / 300
    expected = np.mean(np.log((theta * (joint / joint.sum(0))[y]).sum(1)))
    assert score(logits, y, method="leep") == pytest.approx(expected, rel=1e-12)


def test_num_parameters_is_the_count():
    assert score(None, None, method="num_parameters", num_parameters=123) == 123.0
    with pytest.raises(ValueError, match="num_parameters is unknown"):
        score(None, None, method="num_parameters")


def test_nleep_rejects_more_components_than_rows():
    f, y = classification(20, 3, k=4)
    with pytest.raises(ValueError, match="component_ratio"):
        NLEEP(component_ratio=10).update(f, y).compute()
