"""rank_models with several methods: one forward pass per candidate gathers every kind of input
(Gram statistics, capped rows, source predictions, the parameter count), the cache is extended
by kind, and a method that cannot score a candidate leaves the others' scores in place.

The test estimators below read the gathered statistics in the simplest way (how many rows were
kept, the source head's agreement with the labels); their expected values are recomputed from
``extract_features`` outputs and from the transformers models themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hub_fixtures import build_text_model

import hf_logme
from hf_logme.estimators import ESTIMATORS, Estimator
from hf_logme.estimators._rows import DEFAULT_MAX_ROWS
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.features import forward
from hf_logme.ranking import rank_models


class _RowsHeld(Estimator):
    """Test estimator over the row sample: the number of rows it holds."""

    name = "rows_held_for_tests"
    consumes = "rows"
    supports_regression = True

    def __init__(
        self, *, regression: bool = False, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
    ):
        super().__init__(regression=regression)
        self.max_rows, self.seed = max_rows, seed

    def gather_options(self) -> dict[str, Any]:
        return {"max_rows": self.max_rows, "seed": self.seed}

    def compute(self) -> float:
        return float(self.statistics.num_rows)


class _RowMean(_RowsHeld):
    """Test estimator over the row sample: the mean of the first feature over the rows held."""

    name = "row_mean_for_tests"

    def compute(self) -> float:
        return float(self.statistics.features[:, 0].double().mean())


class _HeadAgreement(Estimator):
    """Test estimator over source predictions: how often the source head's argmax is the label."""

    name = "head_agreement_for_tests"
    consumes = "source_predictions"

    def __init__(
        self, *, regression: bool = False, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
    ):
        super().__init__(regression=regression)
        self.max_rows, self.seed = max_rows, seed

    def gather_options(self) -> dict[str, Any]:
        return {"max_rows": self.max_rows, "seed": self.seed}

    def compute(self) -> float:
        _, _, hard = self.statistics.joints()
        return float(hard.diagonal().sum() / self.statistics.n)


@pytest.fixture(autouse=True)
def test_estimators(monkeypatch):
    for cls in (_RowsHeld, _RowMean, _HeadAgreement):
        monkeypatch.setitem(ESTIMATORS, cls.name, cls)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "plain": str(build_text_model(root / "plain", seed=1)),
        "head": str(build_text_model(root / "head", seed=2, head="sequence-classification")),
    }


@pytest.fixture
def forward_calls(monkeypatch):
    """Counts the model forward passes (one per batch) of every extraction."""
    calls = []
    original = forward.FeatureRunner._features

    def counted(self, inputs, *args):
        calls.append(self.loaded.model_id)
        return original(self, inputs, *args)

    monkeypatch.setattr(forward.FeatureRunner, "_features", counted)
    return calls


ALL = ("logme", _RowsHeld.name, _RowMean.name, _HeadAgreement.name, "num_parameters")


def test_several_methods_cost_one_forward_pass_and_each_scores_its_input(
    reviews, models, tmp_path, forward_calls
):
    options = {"cache": False, "progress": False, "batch_size": 8}
    alone = rank_models([models["plain"]], reviews, **options)
    assert len(forward_calls) == 3  # 24 rows, batches of 8
    forward_calls.clear()
    ranking = rank_models([models["plain"]], reviews, methods=ALL, **options)
    assert len(forward_calls) == 3  # the same single pass, whatever the methods
    row = ranking.rows[0]
    assert row.status == "ok" and list(ranking.methods) == list(ALL)
    assert row.scores["logme"] == pytest.approx(alone.rows[0].score, rel=1e-12)
    assert row.score == row.scores["logme"]  # the first method orders the ranking
    out = hf_logme.extract_features(models["plain"], reviews, progress=False)
    assert row.scores[_RowsHeld.name] == 24
    assert row.scores[_RowMean.name] == pytest.approx(
        out.features[:, 0].double().mean().item(), rel=1e-6
    )
    from transformers import AutoModel

    size = sum(p.numel() for p in AutoModel.from_pretrained(models["plain"]).parameters())
    assert row.scores["num_parameters"] == size == row.num_parameters
    # No classification head: that method is skipped for this candidate, with the reason.
    assert set(row.method_errors) == {_HeadAgreement.name}
    assert "no classification head" in row.method_errors[_HeadAgreement.name]
    assert "BertModel" in row.method_errors[_HeadAgreement.name]


def test_source_predictions_come_from_the_checkpoints_own_head(reviews, models, forward_calls):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ranking = rank_models(
        [models["head"], models["plain"]],
        reviews,
        cache=False,
        progress=False,
        methods=[_HeadAgreement.name, "logme"],
        batch_size=8,
    )
    assert len(forward_calls) == 6  # one pass of three batches per candidate
    rows = {row.model: row for row in ranking.rows}
    classifier = AutoModelForSequenceClassification.from_pretrained(models["head"]).eval()
    tokens = AutoTokenizer.from_pretrained(models["head"])(
        list(reviews["text"]), padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        predicted = classifier(**tokens).logits.argmax(1).numpy()
    agreement = float(np.mean(predicted == np.asarray(reviews["label"])))
    assert rows[models["head"]].score == pytest.approx(agreement, abs=1e-12)
    # The features are still the base model's: LogME as of a plain extraction.
    out = hf_logme.extract_features(models["head"], reviews, progress=False, batch_size=8)
    assert rows[models["head"]].scores["logme"] == pytest.approx(
        hf_logme.logme(out.features, out.labels, intercept=True, prior=RANKING_PRIOR), rel=1e-9
    )
    # The primary method cannot score the headless candidate: a skipped row, other scores kept.
    plain = rows[models["plain"]]
    assert plain.status == "skipped" and plain.reason.startswith(f"{_HeadAgreement.name}: ")
    assert "no classification head" in plain.reason and "logme" in plain.scores
    assert ranking.rows[-1] is plain


def test_the_cache_is_extended_by_the_kinds_a_run_adds(reviews, models, tmp_path, forward_calls):
    options = {"cache_dir": tmp_path, "progress": False, "batch_size": 8}
    first = rank_models([models["plain"]], reviews, **options)
    more = rank_models([models["plain"]], reviews, methods=["logme", _RowsHeld.name], **options)
    assert not more.rows[0].cached and len(forward_calls) == 6  # one new pass for the rows
    assert more.rows[0].scores["logme"] == first.rows[0].score
    forward_calls.clear()
    again = rank_models(
        [models["plain"]], reviews, methods=[_RowsHeld.name, "logme", "num_parameters"], **options
    )
    assert again.rows[0].cached and forward_calls == []  # everything is there now
    assert again.rows[0].scores == more.rows[0].scores | {
        "num_parameters": first.rows[0].num_parameters
    }
    # Another row cap is other statistics: extended again, and both caps stay cached.
    capped = rank_models(
        [models["plain"]], reviews, methods=[_RowsHeld.name], max_rows=10, **options
    )
    assert not capped.rows[0].cached and capped.rows[0].score <= 10
    assert capped.methods == {_RowsHeld.name: {"max_rows": 10, "seed": 0}}
    forward_calls.clear()
    both = rank_models(
        [models["plain"]],
        reviews,
        max_rows=1000,
        **options,
        methods={_RowsHeld.name: {"max_rows": DEFAULT_MAX_ROWS}, _RowMean.name: {"max_rows": 10}},
    )
    assert both.rows[0].cached and forward_calls == []
    assert both.rows[0].scores[_RowsHeld.name] == 24  # a method's own max_rows wins


def test_rows_are_gathered_per_layer_with_layers_best(reviews, models, tmp_path):
    ranking = rank_models(
        [models["plain"]],
        reviews,
        methods=[_RowMean.name, "logme"],
        layers="best",
        cache=False,
        progress=False,
    )
    row = ranking.rows[0]
    out = hf_logme.extract_features(models["plain"], reviews, layers="all", progress=False)
    means = {layer: f[:, 0].double().mean().item() for layer, f in out.features.items()}
    assert row.layer_scores == pytest.approx(means, rel=1e-6)
    assert row.best_layer == max(means, key=means.get)


def test_max_rows_is_validated_before_any_model_loads(reviews, models, monkeypatch):
    from hf_logme.features import extract

    monkeypatch.setattr(extract, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(ValueError, match="max_rows must be a positive int; got 0"):
        rank_models([models["plain"]], reviews, methods=[_RowsHeld.name], max_rows=0)
    with pytest.raises(ValueError, match="max_rows"):
        rank_models([models["plain"]], reviews, methods={_RowsHeld.name: {"max_rows": 1}})


def test_registered_estimators_of_every_kind_from_one_pass(reviews, models, forward_calls):
    # (linear_probe reads the same row sample as knn; it is left out only for its ~10 s of CV.)
    methods = ["logme", "hscore", "gbc", "knn", "leep", "nce", "num_parameters"]
    ranking = rank_models(
        [models["head"], models["plain"]],
        reviews,
        methods=methods,
        cache=False,
        progress=False,
        batch_size=8,
    )
    assert len(forward_calls) == 6  # three batches per candidate, whatever the methods
    rows = {row.model: row for row in ranking.rows}
    for name in models.values():
        out = hf_logme.extract_features(name, reviews, progress=False, batch_size=8)
        row = rows[name]
        assert row.scores["logme"] == pytest.approx(
            hf_logme.logme(out.features, out.labels, intercept=True, prior=RANKING_PRIOR), rel=1e-9
        )
        for method in ("hscore", "gbc", "knn"):
            expected = hf_logme.score(out.features, out.labels, method=method)
            assert row.scores[method] == pytest.approx(expected, rel=1e-6, abs=1e-9), (name, method)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    classifier = AutoModelForSequenceClassification.from_pretrained(models["head"]).eval()
    tokens = AutoTokenizer.from_pretrained(models["head"])(
        list(reviews["text"]), padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        logits = classifier(**tokens).logits
    labels = np.asarray(reviews["label"])
    for method in ("leep", "nce"):
        expected = hf_logme.score(logits, labels, method=method)
        assert rows[models["head"]].scores[method] == pytest.approx(expected, rel=1e-5)
        reason = rows[models["plain"]].method_errors[method]
        assert "no classification head" in reason and "BertModel" in reason
        assert method not in rows[models["plain"]].scores
    assert rows[models["plain"]].status == "ok" and set(rows[models["plain"]].method_errors) == {
        "leep",
        "nce",
    }


def test_an_entry_written_before_kinds_existed_is_still_used(
    reviews, models, tmp_path, forward_calls
):
    first = rank_models([models["plain"]], reviews, cache_dir=tmp_path, progress=False)
    (path,) = (tmp_path / "statistics").glob("*.pt")
    stored = torch.load(path, weights_only=True)
    value = stored["value"]  # rewrite it as the old layout: {layer: Gram state}, meta
    old = {
        "statistics": {layer: held["gram"] for layer, held in value["statistics"].items()},
        "meta": {k: v for k, v in value["meta"].items() if k != "dim"},
    }
    torch.save({**stored, "value": old}, path)
    forward_calls.clear()
    again = rank_models([models["plain"]], reviews, cache_dir=tmp_path, progress=False)
    assert again.rows[0].cached and forward_calls == []
    assert (
        again.rows[0].score == first.rows[0].score and again.rows[0].dim == first.rows[0].dim == 16
    )
    extended = rank_models(
        [models["plain"]],
        reviews,
        cache_dir=tmp_path,
        progress=False,
        methods=["logme", _RowsHeld.name],
    )
    assert not extended.rows[0].cached and extended.rows[0].scores["logme"] == first.rows[0].score
