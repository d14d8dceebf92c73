"""The statistics kinds against direct computations: what each holds, and that it does not depend on
batching, order or sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_logme.estimators import (
    STATISTICS,
    ClassStatistics,
    GramStatistics,
    MetadataStatistics,
    RowSample,
    SourcePredictions,
    load_statistics,
)
from hf_logme.estimators._rows import label_key, row_keys


def data(n=500, d=7, k=4, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    return (rng.normal(size=(n, d)) + offset).astype(np.float32), labels


def batches(n, parts, seed):
    return np.array_split(np.random.default_rng(seed).permutation(n), parts)


def test_every_kind_is_registered():
    assert set(STATISTICS) == {"gram", "class_statistics", "rows", "source_predictions", "metadata"}


def test_class_statistics_match_numpy_for_any_batching():
    features, labels = data(offset=1e4)  # a large offset: E[x^2] - E[x]^2 would cancel
    stats = ClassStatistics()
    for rows in batches(len(labels), 9, 1):
        stats.update(features[rows], labels[rows])
    classes, counts, means, sq_dev = stats.sorted()
    f64 = features.astype(np.float64)
    assert classes == [0, 1, 2, 3]
    for i, c in enumerate(classes):
        rows = f64[labels == c]
        assert counts[i] == len(rows)
        np.testing.assert_allclose(means[i].numpy(), rows.mean(0), rtol=1e-13)
        np.testing.assert_allclose(sq_dev[i].numpy() / len(rows), rows.var(0), rtol=1e-7)


def test_class_statistics_merge_aligns_classes_by_label():
    features, labels = data()
    names = np.array(["d", "c", "b", "a"])[labels]
    a, b = ClassStatistics(), ClassStatistics()
    a.update(features[names != "a"], names[names != "a"])  # never sees "a"
    b.update(features[names == "a"], names[names == "a"])
    one = ClassStatistics().update(features, names)
    merged = b.merge(a)
    for x, y in zip(merged.sorted()[1:], one.sorted()[1:]):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_class_statistics_refuse_regression():
    with pytest.raises(ValueError, match="class labels"):
        ClassStatistics(regression=True)


def test_gram_fourth_moments_match_direct_sums():
    features, labels = data()
    stats = GramStatistics(regression=False)
    for rows in batches(len(labels), 5, 2):
        stats.update(features[rows], labels[rows])
    f64 = features.astype(np.float64)
    norms = (f64**2).sum(1)
    assert float(stats.norm4_sum) == pytest.approx((norms**2).sum(), rel=1e-12)
    np.testing.assert_allclose(stats.norm2_feature_sum.numpy(), norms @ f64, rtol=1e-12)


def test_gram_state_saved_before_fourth_moments_still_loads():
    features, labels = data()
    state = GramStatistics(regression=False).update(features, labels).state_dict()
    del state["norm4_sum"], state["norm2_feature_sum"], state["kind"]
    old = load_statistics(state)
    assert isinstance(old, GramStatistics) and not old.has_fourth_moments
    old.update(features, labels)  # keeps working, still without them
    assert not old.has_fourth_moments


def bottom_keys(features, labels, max_rows, seed):
    """Independent selection: the max_rows rows of smallest (feature hash, label hash) pair."""
    keys = row_keys(torch.from_numpy(features), seed).numpy()
    ties = np.array([label_key(int(v)) for v in labels])
    return np.lexsort((ties, keys))[:max_rows]


@pytest.mark.parametrize("max_rows", [50, 499, 500, 800])
def test_row_sample_is_the_smallest_keys_for_any_batching_and_sharding(max_rows):
    features, labels = data()
    expected = bottom_keys(features, labels, max_rows, seed=3)
    one = RowSample(max_rows=max_rows, seed=3).update(features, labels)
    streamed = RowSample(max_rows=max_rows, seed=3)
    for rows in batches(len(labels), 11, 4):
        streamed.update(features[rows], labels[rows])
    shards = [
        RowSample(max_rows=max_rows, seed=3).update(features[i::3], labels[i::3]) for i in range(3)
    ]
    merged = shards[2].merge(shards[0]).merge(shards[1])
    for sample in (one, streamed, merged):
        np.testing.assert_array_equal(sample.features.numpy(), features[expected])
        classes, codes = sample.labels()
        np.testing.assert_array_equal(np.array(classes)[codes.numpy()], labels[expected])
        assert sample.n == len(labels)


def test_row_sample_prefix_is_the_smaller_sample():
    features, labels = data()
    big = RowSample(max_rows=300, seed=5).update(features, labels)
    small = RowSample(max_rows=40, seed=5).update(features, labels)
    torch.testing.assert_close(big.features[:40], small.features)


def test_row_sample_depends_on_the_seed_and_keeps_float64():
    features, labels = data()
    a = RowSample(max_rows=20, seed=0).update(features, labels)
    b = RowSample(max_rows=20, seed=1).update(features, labels)
    assert not torch.equal(a.features, b.features)
    assert a.features.dtype == torch.float32
    c = RowSample(max_rows=20).update(features.astype(np.float64), labels)
    assert c.features.dtype == torch.float64


def test_duplicate_rows_fill_the_sample_whatever_the_batching():
    # 60 copies of one row (two labels) among 40 others: the cap is always filled exactly and the
    # sample's content does not depend on which copies are cut.
    rng = np.random.default_rng(0)
    features = np.concatenate([np.ones((60, 3)), rng.normal(size=(40, 3))]).astype(np.float32)
    labels = np.concatenate([np.arange(60) % 2, rng.integers(0, 2, 40)])
    one = RowSample(max_rows=30).update(features, labels)
    streamed = RowSample(max_rows=30)
    for rows in batches(100, 13, 8):
        streamed.update(features[rows], labels[rows])
    assert one.num_rows == streamed.num_rows == 30
    torch.testing.assert_close(one.features, streamed.features, rtol=0, atol=0)
    torch.testing.assert_close(one.labels()[1], streamed.labels()[1], rtol=0, atol=0)


def test_row_keys_are_exact_integers_spread_over_62_bits():
    features, _ = data(n=2000)
    keys = row_keys(torch.from_numpy(features), 0)
    assert keys.dtype == torch.int64 and int(keys.min()) >= 0 and int(keys.max()) < 2**62
    assert len(torch.unique(keys)) == 2000
    half = row_keys(torch.from_numpy(features.astype(np.float16)), 0)
    assert len(torch.unique(half)) > 1990


def test_source_predictions_joint_counts():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(300, 5))
    labels = rng.integers(0, 3, 300)
    stats = SourcePredictions(max_rows=30)
    for rows in batches(300, 4, 7):
        stats.update(logits[rows], labels[rows])
    classes, soft, hard = stats.joints()
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected_soft = np.stack([probs[labels == c].sum(0) for c in classes])
    expected_hard = np.zeros((3, 5))
    np.add.at(expected_hard, (labels, logits.argmax(1)), 1)
    np.testing.assert_allclose(soft.numpy(), expected_soft, rtol=1e-12)
    np.testing.assert_array_equal(hard.numpy(), expected_hard)
    assert stats.num_rows == 30 and stats.n == 300
    restored = load_statistics(stats.state_dict())
    torch.testing.assert_close(restored.joints()[1], soft)


def test_source_predictions_refuse_regression():
    with pytest.raises(ValueError, match="classification"):
        SourcePredictions(regression=True)


def test_metadata_statistics_merge_requires_the_same_count():
    a = MetadataStatistics(num_parameters=10)
    with pytest.raises(ValueError, match="same options"):
        a.merge(MetadataStatistics(num_parameters=11))
    assert load_statistics(a.state_dict()).num_parameters == 10


@pytest.mark.parametrize("kind", sorted(STATISTICS))
def test_merge_refuses_other_kinds_and_dimensions(kind):
    cls = STATISTICS[kind]
    features, labels = data()
    other = next(c for k, c in STATISTICS.items() if k != kind)
    with pytest.raises(TypeError, match="Can only merge"):
        cls(regression=False).merge(other(regression=False))
    if kind == "metadata":
        return
    a = cls(regression=False).update(features, labels)
    b = cls(regression=False).update(features[:, :3], labels)
    with pytest.raises(ValueError, match="dimensional|source classes"):
        a.merge(b)
    with pytest.raises(ValueError, match="columns but earlier batches had"):
        a.update(features[:, :3], labels)


@pytest.mark.parametrize("kind", sorted(STATISTICS))
def test_a_string_regression_flag_is_a_type_error(kind):
    with pytest.raises(TypeError, match="regression must be True or False"):
        STATISTICS[kind](regression="no")
