"""hf_logme.scoring: statistics -> scores, best layer and per-method errors, without any model.

Statistics are built from small arrays; LogME values are checked against the dense Gaussian
marginal likelihood of tests/oracles.py (which shares no code with the package).
"""

from __future__ import annotations

import numpy as np
import pytest
from oracles import centre_by_contrasts, one_hot, oracle_logme

from hf_logme import score
from hf_logme.estimators import ESTIMATORS, GramEstimator, LogME
from hf_logme.scoring import score_candidate, score_method


def gram(features, labels):
    return LogME().update(features, labels).statistics


@pytest.fixture(scope="module")
def layers():
    """Three layers of 16 samples, 2 classes: noise, class-separated features, noise."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [9, 7])
    noise = [rng.normal(size=(16, 3)) for _ in range(2)]
    separated = one_hot(labels) @ rng.normal(size=(2, 3)) * 3 + 0.3 * rng.normal(size=(16, 3))
    features = {0: noise[0], 1: separated, 2: noise[1]}
    return features, labels


def test_one_layer_scores_equal_the_dense_marginal_likelihood(layers):
    features, labels = layers
    stats = {"last": {"gram": gram(features[1], labels)}}
    paper = score_candidate(stats, {"logme": {"intercept": False}})
    assert paper.scores["logme"] == pytest.approx(
        oracle_logme(features[1], one_hot(labels)), rel=1e-6
    )
    assert paper.best_layer is None and paper.layer_scores is None and paper.method_errors == {}
    centred_f, centred_y = centre_by_contrasts(features[1], one_hot(labels))
    with_intercept = score_method("logme", stats["last"]["gram"], {"intercept": True})
    assert with_intercept == pytest.approx(oracle_logme(centred_f, centred_y), rel=1e-6)


def test_best_layer_is_the_primarys_best_and_layer_scores_are_each_layers(layers):
    features, labels = layers
    stats = {layer: {"gram": gram(f, labels)} for layer, f in features.items()}
    result = score_candidate(stats, {"logme": {"intercept": False}}, best_layer=True)
    expected = {layer: oracle_logme(f, one_hot(labels)) for layer, f in features.items()}
    assert result.layer_scores == pytest.approx(expected, rel=1e-6)
    assert result.best_layer == 1 == max(expected, key=expected.get)
    assert result.scores["logme"] == pytest.approx(expected[1], rel=1e-6)
    with pytest.raises(ValueError, match="statistics of 3 layers but best_layer=False"):
        score_candidate(stats, {"logme": {}})
    with pytest.raises(ValueError, match="layers is empty"):
        score_candidate({}, {"logme": {}})


class _Width(GramEstimator):
    """A test estimator: the feature width, lower is better."""

    name = "width_for_tests"
    higher_is_better = False

    def compute(self) -> float:
        return float(self.statistics.dim)


@pytest.fixture
def width(monkeypatch):
    monkeypatch.setitem(ESTIMATORS, _Width.name, _Width)
    return _Width.name


def test_each_method_keeps_its_own_best_layer_in_its_own_direction(layers, width):
    features, labels = layers
    stats = {i: {"gram": gram(features[1][:, :d], labels)} for i, d in enumerate((3, 1, 2))}
    expected = {
        i: oracle_logme(features[1][:, :d], one_hot(labels)) for i, d in enumerate((3, 1, 2))
    }
    result = score_candidate(stats, {"logme": {"intercept": False}, width: {}}, best_layer=True)
    assert result.scores[width] == 1.0  # the smallest width, as lower is better
    assert result.best_layer == max(expected, key=expected.get)
    assert result.layer_scores == pytest.approx(expected, rel=1e-6)

    first = score_candidate(stats, {width: {}, "logme": {"intercept": False}}, best_layer=True)
    assert first.best_layer == 1 and first.layer_scores == {0: 3.0, 1: 1.0, 2: 2.0}


def test_a_method_that_cannot_score_gets_its_reason_and_the_others_still_score(layers, width):
    features, _ = layers
    single_class = {"last": {"gram": gram(features[1], np.zeros(16, dtype=int))}}
    result = score_candidate(single_class, {"logme": {}, width: {}})
    assert result.scores == {width: 3.0}
    assert "single class" in result.method_errors["logme"]

    missing = score_candidate(
        {"last": {}}, {"logme": {}}, unavailable={"gram": "no features (test)"}
    )
    assert missing.scores == {} and missing.method_errors == {"logme": "no features (test)"}
    default = score_candidate({"last": {}}, {"logme": {}})
    assert default.method_errors == {"logme": "no gram statistics were gathered"}


def test_row_groups_give_the_primarys_jackknife_at_its_chosen_layer(layers):
    """Delete-a-group jackknife by hand: G leave-one-group-out dense marginal likelihoods."""
    features, labels = layers
    groups = 5
    which = np.arange(len(labels)) % groups
    row_groups = {
        layer: [gram(f[which == g], labels[which == g]) for g in range(groups)]
        for layer, f in features.items()
    }
    result = score_candidate(
        {layer: {"gram": gram(f, labels)} for layer, f in features.items()},
        {"logme": {}},
        best_layer=True,
        row_groups=row_groups,
    )
    assert result.best_layer == 1
    leave_out = np.array(
        [
            oracle_logme(features[1][which != g], one_hot(labels[which != g]))
            for g in range(groups)
        ]
    )
    se = np.sqrt((groups - 1) / groups * ((leave_out - leave_out.mean()) ** 2).sum())
    estimate = result.estimate
    assert estimate.leave_out == pytest.approx(leave_out, rel=1e-6)
    assert estimate.se == pytest.approx(se, rel=1e-5)
    assert estimate.score == pytest.approx(result.scores["logme"], rel=1e-12)
    assert result.no_signal is False
    # Without row groups there is no estimate.
    plain = score_candidate({1: {"gram": gram(features[1], labels)}}, {"logme": {}})
    assert plain.estimate is None


def test_features_orthogonal_to_the_labels_are_at_the_no_signal_floor():
    labels = np.tile([0, 0, 1, 1], 4)
    features = np.tile([1.0, -1.0, 1.0, -1.0], 4)[:, None]  # centred, orthogonal to the labels
    result = score_candidate(
        {"last": {"gram": gram(features, labels)}}, {"logme": {"intercept": True, "prior": 2.0}}
    )
    assert result.no_signal is True
    signal = np.tile([0.0, 0.1, 1.0, 1.1], 4)[:, None]
    assert score_candidate(
        {"last": {"gram": gram(signal, labels)}}, {"logme": {"intercept": True, "prior": 2.0}}
    ).no_signal is False


def test_h_score_has_no_error_bars_where_it_saturates():
    """With no more rows than features + 1, H-score is K - 1 for any features (and so is every
    leave-one-group-out score): no interval is given there, one is given with enough rows."""
    from hf_logme.estimators import HScore

    rng = np.random.default_rng(3)
    labels = np.arange(60) % 3

    def hscore_groups(features, groups=5):
        which = np.arange(len(labels)) % groups
        return [
            HScore().update(features[which == g], labels[which == g]).statistics
            for g in range(groups)
        ]

    for width, has_bars in ((50, False), (8, True)):
        features = rng.normal(size=(60, width))
        result = score_candidate(
            {0: {"gram": HScore().update(features, labels).statistics}},
            {"hscore": {}},
            row_groups={0: hscore_groups(features)},
        )
        if not has_bars:  # 48 rows in each complement <= 51: each one saturated at K - 1 = 2
            complement = np.arange(60) % 5 != 0
            assert score(features[complement], labels[complement], method="hscore") == (
                pytest.approx(2.0)
            )
        assert (result.estimate is not None) is has_bars
