"""The evaluate metric: equal to the core, batches, two processes, errors, the examples."""

from __future__ import annotations

import doctest
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import evaluate
import numpy as np
import pyarrow as pa
import pytest
import torch
from oracles import one_hot, oracle_logme

import hf_logme
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.metric import EXAMPLES, Logme
from hf_logme.metric_space import install_metric

METRIC_DIR = Path(__file__).resolve().parents[1] / "metric_card" / "logme"


@pytest.fixture
def load(tmp_path):
    """evaluate.load of the Space folder, its cache files in a folder of this test."""

    def _load(config: str = "default", **options):
        return evaluate.load(str(METRIC_DIR), config, cache_dir=str(tmp_path / "cache"), **options)

    return _load


def make_data(config: str, n: int = 120, d: int = 8, seed: int = 0):
    """float32 features that carry signal about references of the config's kind."""
    rng = np.random.default_rng(seed)
    classes = np.arange(n) % 3
    features = (rng.normal(size=(n, d)) + 1.5 * np.eye(3, d)[classes] + 0.5).astype(np.float32)
    if config == "default":
        return features, classes
    if config == "regression":
        return features, features[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=n)
    return features, np.stack([classes == 0, classes != 1, rng.random(n) < 0.5], axis=1).astype(int)


# --- equal to the core ---------------------------------------------------------------------------

#: The metric's default: the LogME rankings use (intercept, small-sample prior).
RANKING = {"intercept": True, "prior": RANKING_PRIOR}


@pytest.mark.parametrize(
    "options, expected_options",
    [
        ({}, RANKING),  # the default: the same LogME as hf-logme rank
        ({"intercept": False, "prior": None}, {"intercept": False, "prior": None}),  # the papers'
        ({"intercept": True, "prior": None}, {"intercept": True, "prior": None}),
        ({"prior": 0.5}, {"intercept": True, "prior": 0.5}),
    ],
)
@pytest.mark.parametrize(
    "config, label_kind",
    [
        ("default", "int"),
        ("default", "str"),
        ("default", "bool"),
        ("regression", None),
        ("multilabel", None),
    ],
)
def test_compute_equals_core(load, config, label_kind, options, expected_options):
    features, references = make_data(config)
    if label_kind == "str":
        references = np.array(["neg", "neutral", "pos"])[references]
    elif label_kind == "bool":
        references = references == 1
    expected = hf_logme.logme(
        features, references, regression=config != "default", **expected_options
    )
    result = load(config).compute(predictions=features, references=references, **options)
    assert result == {"logme": pytest.approx(expected, rel=1e-12, abs=1e-12)}
    assert isinstance(result["logme"], float)


def test_first_card_example_matches_the_dense_oracle(load):
    # The card's data, scored by the dense Gaussian marginal likelihood maximised numerically.
    labels = np.array([0, 0, 0, 1, 1, 1])
    model_a = np.array([[1.0, 0.1], [0.9, 0.0], [1.1, -0.1], [0.1, 1.0], [-0.1, 0.9], [0.0, 1.1]])
    expected = oracle_logme(model_a.astype(np.float32).astype(np.float64), one_hot(labels))
    paper = {"intercept": False, "prior": None}  # the papers' model: what the oracle computes
    result = load().compute(predictions=model_a, references=["cat"] * 3 + ["dog"] * 3, **paper)
    assert result["logme"] == pytest.approx(expected, abs=1e-6)


def test_float64_predictions_are_stored_as_float32(load):
    features, labels = make_data("default")
    doubles = features.astype(np.float64) + 1e-3 * np.random.default_rng(1).normal(
        size=features.shape
    )
    result = load().compute(predictions=doubles, references=labels)["logme"]
    as_float32 = hf_logme.logme(doubles.astype(np.float32), labels, **RANKING)
    assert result == pytest.approx(as_float32, rel=1e-12)
    assert result == pytest.approx(hf_logme.logme(doubles, labels, **RANKING), rel=1e-5)


# --- batches, input kinds, processes -------------------------------------------------------------


@pytest.mark.parametrize("config", ["default", "regression", "multilabel"])
def test_batches_and_input_kinds_equal_one_call(load, config):
    features, references = make_data(config)
    one_call = load(config).compute(predictions=features, references=references)

    metric = load(config)
    bounds = [0, 7, 8, 60, 61, 120]  # uneven sizes, a single-row batch
    for i, (start, stop) in enumerate(itertools.pairwise(bounds)):
        rows, refs = features[start:stop], references[start:stop]
        if i % 3 == 1:
            rows, refs = torch.from_numpy(rows), torch.as_tensor(refs)
        elif i % 3 == 2:
            rows, refs = rows.tolist(), refs.tolist()
        metric.add_batch(predictions=rows, references=refs)
    assert metric.compute()["logme"] == pytest.approx(one_call["logme"], rel=1e-12)

    single = load(config)
    for row, ref in zip(features, references):
        single.add(prediction=row, reference=ref)
    assert single.compute()["logme"] == pytest.approx(one_call["logme"], rel=1e-12)


def test_bfloat16_and_half_tensors(load):
    features, labels = make_data("default")
    for dtype in (torch.bfloat16, torch.float16):
        tensor = torch.from_numpy(features).to(dtype)
        expected = hf_logme.logme(tensor.float().numpy(), labels, **RANKING)
        assert load().compute(predictions=tensor, references=labels)["logme"] == pytest.approx(
            expected, rel=1e-12
        )


_WORKER = """
import json, sys
import evaluate, numpy as np
rank, world, folder, metric_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
features, labels = np.load(folder + "/features.npy"), np.load(folder + "/labels.npy")
metric = evaluate.load(metric_dir, num_process=world, process_id=rank, experiment_id="two-procs",
                       cache_dir=folder + "/cache")
mine = np.array_split(np.arange(len(labels)), world)[rank]
for rows in np.array_split(mine, 3):
    metric.add_batch(predictions=features[rows], references=labels[rows])
print(json.dumps(metric.compute()))
"""


def test_two_processes_equal_one(tmp_path):
    features, labels = make_data("default", n=300)
    labels = np.array(["a", "b", "c"])[labels]
    np.save(tmp_path / "features.npy", features)
    np.save(tmp_path / "labels.npy", labels)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(rank), "2", str(tmp_path), str(METRIC_DIR)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
    main, other = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert other is None  # only process 0 computes, on both processes' examples
    expected = hf_logme.logme(features, labels, **RANKING)
    assert main == {"logme": pytest.approx(expected, rel=1e-12)}
    # Each process alone sees different data: the gathered score is not either half's.
    half = hf_logme.logme(features[:150], labels[:150], **RANKING)
    assert abs(main["logme"] - half) > 1e-3


# --- bad input surfaces clear errors -------------------------------------------------------------


def test_bad_predictions_fail_in_add_batch(load):
    metric = load()
    labels = [0, 1, 0, 1]
    with pytest.raises(
        ValueError,
        match=r"predictions must be 2-D \(n_samples, n_features\); got shape \(4, 2, 3\)\. Pool",
    ):
        metric.add_batch(predictions=np.zeros((4, 2, 3)), references=labels)
    nan = np.ones((4, 3))
    nan[2, 1] = np.nan
    with pytest.raises(
        ValueError, match="predictions contains NaN or infinite values in 1 of 4 rows"
    ):
        metric.add_batch(predictions=nan, references=labels)
    with pytest.raises(ValueError, match=r"feature vectors of different lengths \[2, 3\]"):
        metric.add_batch(
            predictions=[[1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0], [0.0, 1.0]], references=labels
        )
    with pytest.raises(TypeError, match="predictions must be numeric"):
        metric.add_batch(predictions=np.array([["a", "b"]] * 4), references=labels)
    with pytest.raises(ValueError, match="references has 3 rows but features has 4"):
        metric.add_batch(predictions=np.ones((4, 3)), references=[0, 1, 0])
    overflow = np.full((4, 3), 1e300)  # finite in float64, infinite once stored as float32
    with pytest.raises(
        ValueError, match="predictions contains NaN or infinite values in 4 of 4 rows"
    ):
        metric.add_batch(predictions=overflow, references=labels)


def test_batches_of_different_widths_fail_in_compute(load):
    metric = load()
    metric.add_batch(predictions=np.ones((3, 2)), references=[0, 1, 0])
    metric.add_batch(predictions=np.ones((3, 5)), references=[0, 1, 0])
    with pytest.raises(
        ValueError, match=r"predictions vectors have different lengths across batches \[2, 5\]"
    ):
        metric.compute()


def test_bad_class_labels(load):
    features = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(
        ValueError, match=r"floats that are not integers \(e\.g\. 0\.5\).*'regression' config"
    ):
        load().compute(predictions=features, references=[0.5, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"references has shape \(4, 2\).*'multilabel' config"):
        load().compute(predictions=features, references=[[0, 1]] * 4)
    with pytest.raises(ValueError, match="single class"):
        load().compute(predictions=features, references=["a"] * 4)
    with pytest.raises(ValueError, match="references contains 1 NaN"):
        load().compute(predictions=features, references=[0.0, 1.0, np.nan, 1.0])


def test_label_kinds_cannot_change_between_batches(load):
    features = np.ones((2, 3))
    ints_first = load()
    ints_first.add_batch(predictions=features, references=[0, 1])
    with pytest.raises(
        ValueError,
        match=r"references mix kinds: these are <U3 labels \(e\.g\. 'cat'\) but the first batch "
        r"held integers",
    ):
        ints_first.add_batch(predictions=features, references=["cat", "dog"])
    strings_first = load()
    strings_first.add_batch(predictions=features, references=["cat", "dog"])
    with pytest.raises(
        ValueError, match="references mix kinds: these are int64 labels .* held strings"
    ):
        strings_first.add(prediction=features[0], reference=0)


def test_bad_regression_and_multilabel_references(load):
    features = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match="'regression' config takes one float target per example"):
        load("regression").compute(predictions=features, references=[[1.0, 2.0]] * 4)
    with pytest.raises(
        ValueError, match="references contains NaN or infinite values in 1 of 4 rows"
    ):
        load("regression").compute(predictions=features, references=[1.0, np.inf, 2.0, 3.0])
    with pytest.raises(ValueError, match="multilabel references must be 0/1 flags; got 2.0"):
        load("multilabel").compute(
            predictions=features, references=[[0, 1], [1, 2], [0, 0], [1, 1]]
        )
    with pytest.raises(ValueError, match="0/1 lists of different lengths"):
        load("multilabel").compute(predictions=features, references=[[0, 1], [1], [0, 0], [1, 1]])
    flat = [[0, 0], [1, 0], [0, 0], [1, 0]]
    with pytest.raises(ValueError, match=r"target column\(s\) \[1\] are constant"):
        load("multilabel").compute(predictions=features, references=flat)
    with pytest.raises(ValueError, match=r"target column\(s\) \[1\] are all zero"):
        load("multilabel").compute(
            predictions=features, references=flat, intercept=False, prior=None
        )


def test_multilabel_widths_must_agree_across_batches(load):
    metric = load("multilabel")
    metric.add_batch(predictions=np.ones((2, 3)), references=[[0, 1], [1, 0]])
    metric.add_batch(predictions=np.ones((2, 3)), references=[[0, 1, 1], [1, 0, 0]])
    with pytest.raises(
        ValueError, match=r"references vectors have different lengths across batches \[2, 3\]"
    ):
        metric.compute()


def test_bad_options(load):
    features, labels = make_data("default")
    with pytest.raises(TypeError, match="intercept must be True or False; got 'yes'"):
        load().compute(predictions=features, references=labels, intercept="yes")
    with pytest.raises(ValueError, match="prior"):
        load().compute(predictions=features, references=labels, prior=-1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'regression'"):
        load().compute(predictions=features, references=labels, regression=True)
    with pytest.raises(
        ValueError,
        match=r"config_name must be one of \['default', 'regression', 'multilabel'\]; "
        r"got 'ranking'",
    ):
        load("ranking")


# --- the Arrow path: whole batches, exact types ---------------------------------------------------


@pytest.mark.parametrize("config", ["regression", "multilabel"])
def test_batches_are_encoded_as_arrow_arrays_of_the_schema_types(config):
    features, references = make_data(config, n=5)
    schema = Logme(config_name=config, keep_in_memory=True).features
    encoded = schema.encode_batch({"predictions": features, "references": references})
    for name, column in encoded.items():
        assert isinstance(column, pa.Array)
        assert column.type == schema.arrow_schema.field(name).type
    stored = np.stack(encoded["predictions"].to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(stored, features)
    assert encoded["references"].to_pylist() == np.asarray(references).tolist()


# --- the examples of the module and of the card ---------------------------------------------------


def _run_doctests(text: str, name: str) -> doctest.TestResults:
    test = doctest.DocTestParser().get_doctest(text, {}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    return runner.summarize(verbose=False)


@pytest.fixture(scope="module")
def installed():
    return install_metric()


def test_module_docstring_examples_run(installed, load):
    text = load().inputs_description
    assert all(code in text.replace("\n    ", "\n") for _, code in EXAMPLES)
    results = _run_doctests(text, "inputs_description")
    assert results.failed == 0 and results.attempted >= 20


def test_card_examples_run(installed):
    card = (METRIC_DIR / "README.md").read_text(encoding="utf-8")
    examples = card.split("### Examples", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", examples, flags=re.DOTALL)
    assert blocks == [code + "\n" for _, code in EXAMPLES]
    for i, block in enumerate(blocks):
        results = _run_doctests(block, f"card example {i}")
        assert results.failed == 0 and results.attempted >= 5
