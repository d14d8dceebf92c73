"""rank_models: scores equal LogME of the extracted features, layers, caching, skips, options."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from hub_fixtures import REVIEWS, build_text_model

import hf_logme
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.ranking import rank_models


@pytest.fixture(scope="module")
def local_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "small": str(build_text_model(root / "small", seed=1)),
        "deep": str(build_text_model(root / "deep", seed=2, hidden_size=32, num_layers=2)),
    }


def one_shot(model, dataset, *, intercept=True, layers="last"):
    """LogME of features extracted in one piece, then scored in one call: an independent path.
    (Rankings use LogME with ``intercept=True, prior=RANKING_PRIOR`` unless told otherwise.)"""
    out = hf_logme.extract_features(model, dataset, layers=layers, progress=False)
    if layers == "last":
        return hf_logme.logme(out.features, out.labels, intercept=intercept, prior=RANKING_PRIOR)
    return {
        k: hf_logme.logme(f, out.labels, intercept=intercept, prior=RANKING_PRIOR)
        for k, f in out.features.items()
    }


def test_rows_are_sorted_and_scores_match_one_shot_logme(reviews, local_models, tmp_path):
    ranking = rank_models(list(local_models.values()), reviews, cache_dir=tmp_path, progress=False)
    assert [row.status for row in ranking.rows] == ["ok", "ok"]
    assert ranking.rows[0].score >= ranking.rows[1].score
    for row in ranking.rows:
        assert row.score == pytest.approx(one_shot(row.model, reviews), rel=1e-9)
        assert row.num_samples == len(reviews)
        assert row.cached is False
    assert {row.model: row.dim for row in ranking.rows} == {
        local_models["small"]: 16,
        local_models["deep"]: 32,
    }
    assert {row.model: row.num_parameters for row in ranking.rows}[local_models["small"]] > 1000
    assert ranking.best == ranking.rows[0].model
    assert (
        ranking.dataset["task"] == "classification" and ranking.dataset["label_column"] == "label"
    )


def test_best_layer_and_mean_of_layers(reviews, local_models, tmp_path):
    deep = local_models["deep"]
    best = rank_models([deep], reviews, layers="best", cache_dir=tmp_path, progress=False).rows[0]
    per_layer = one_shot(deep, reviews, layers="all")
    assert sorted(best.layer_scores) == sorted(per_layer) == [0, 1, 2]
    for layer, value in per_layer.items():
        assert best.layer_scores[layer] == pytest.approx(value, rel=1e-9)
    assert best.best_layer == max(per_layer, key=per_layer.get)
    assert best.score == pytest.approx(max(per_layer.values()), rel=1e-9)

    mean = rank_models([deep], reviews, layers="mean", cache_dir=tmp_path, progress=False).rows[0]
    out = hf_logme.extract_features(deep, reviews, layers="all", progress=False)
    averaged = sum(out.features.values()) / len(out.features)
    assert mean.score == pytest.approx(
        hf_logme.logme(averaged, out.labels, intercept=True, prior=RANKING_PRIOR), rel=1e-6
    )
    assert mean.best_layer is None


def test_cache_is_reused_across_scoring_options_and_bypassed_on_request(
    reviews, local_models, tmp_path
):
    models = list(local_models.values())
    first = rank_models(models, reviews, cache_dir=tmp_path, progress=False)
    paper = rank_models(
        models, reviews, cache_dir=tmp_path, progress=False, methods={"logme": {"intercept": False}}
    )
    assert paper.methods == {"logme": {"intercept": False, "prior": RANKING_PRIOR}}
    assert first.methods == {"logme": {"intercept": True, "prior": RANKING_PRIOR}}
    assert all(row.cached for row in paper.rows)
    for row in paper.rows:
        assert row.score == pytest.approx(one_shot(row.model, reviews, intercept=False), rel=1e-9)
    fresh = rank_models(models, reviews, cache_dir=tmp_path, progress=False, cache=False)
    assert not any(row.cached for row in fresh.rows)
    assert [r.score for r in fresh.rows] == pytest.approx([r.score for r in first.rows], rel=1e-12)
    # Other data (a subsample) is another key.
    sub = rank_models(models, reviews, cache_dir=tmp_path, progress=False, max_samples=12)
    assert not any(row.cached for row in sub.rows) and sub.rows[0].num_samples == 12


def test_a_failing_candidate_becomes_a_skipped_row(reviews, local_models, tmp_path):
    missing = str(tmp_path / "no-such-model")
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    ranking = rank_models(
        [missing, local_models["small"], str(not_a_model)],
        reviews,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert [row.model for row in ranking.scored] == [local_models["small"]]
    reasons = {row.model: row.reason for row in ranking.skipped}
    assert "is not a model folder" in reasons[missing]
    assert reasons[str(not_a_model)]  # transformers' own complaint, with the error class
    assert ranking.rows[-1].status == "skipped"


def test_regression_targets(local_models, tmp_path):
    rng = np.random.default_rng(0)
    data = datasets.Dataset.from_dict(
        {"text": [t for t, _ in REVIEWS], "rating": rng.normal(size=len(REVIEWS))}
    )
    ranking = rank_models(
        [local_models["small"]], data, label_column="rating", cache_dir=tmp_path, progress=False
    )
    out = hf_logme.extract_features(
        local_models["small"], data, label_column="rating", progress=False
    )
    assert ranking.dataset["task"] == "regression"
    expected = hf_logme.logme(
        out.features, out.labels, regression=True, intercept=True, prior=RANKING_PRIOR
    )
    assert ranking.rows[0].score == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"layers": "first"}, ValueError, r"layers must be one of .*; got 'first'"),
        ({"task": "ranking"}, ValueError, r"task must be one of .*; got 'ranking'"),
        ({"distribute": "gpus"}, ValueError, r"distribute must be one of"),
        ({"methods": ("nope",)}, ValueError, r"Unknown method 'nope'"),
        ({"methods": {"logme": {"intercep": True}}}, TypeError, r"intercep"),
        ({"methods": ()}, ValueError, r"methods is empty"),
        ({"label_column": "stars"}, ValueError, r"label_column='stars' is not a column.*'text'"),
        ({"text_column": "body"}, ValueError, r"text_column='body' is not a column"),
        ({"split": "test"}, ValueError, r"split"),
        (
            {"batch_size": 0},
            ValueError,
            r"batch_size must be a positive int or one of \['auto'\]; got 0",
        ),
        ({"max_length": -3}, ValueError, r"max_length must be a positive int; got -3"),
        ({"max_samples": 2.5}, ValueError, r"max_samples must be a positive int; got 2.5"),
        ({"pooling": "sum"}, ValueError, r"pooling must be one of .*; got 'sum'"),
        ({"dtype": "float8"}, ValueError, r"dtype must be 'auto', a torch floating dtype"),
        ({"device": "gpu0"}, ValueError, r"device must be 'auto' or a torch device"),
        ({"seed": "0"}, TypeError, r"seed must be an int"),
        (
            {"trust_remote_code": "no"},
            TypeError,
            r"trust_remote_code must be True or False; got 'no'",
        ),
        ({"use_safetensors": 1}, TypeError, r"use_safetensors must be True or False; got 1"),
        ({"cache": "false"}, TypeError, r"cache must be True or False; got 'false'"),
        ({"delete_after": None}, TypeError, r"delete_after must be True or False"),
        ({"progress": "yes"}, TypeError, r"progress must be True or False"),
        ({"text_column": 3}, TypeError, r"text_column must be a column name"),
    ],
)
def test_bad_options_fail_before_any_model_loads(
    reviews, local_models, options, error, match, monkeypatch
):
    from hf_logme.features import extract

    monkeypatch.setattr(extract, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    dataset = datasets.DatasetDict({"train": reviews}) if "split" in options else reviews
    with pytest.raises(error, match=match):
        rank_models([local_models["small"]], dataset, **{"progress": False, **options})


def test_cache_key_holds_what_changes_the_statistics_and_nothing_else():
    from hf_logme.features.options import ExtractionOptions

    base = ExtractionOptions(label_column="label", task="classification")
    same = [
        {"batch_size": 8},
        {"device": "cpu"},
        {"num_workers": 3},
        {"token": "hf_x"},
        {"trust_remote_code": True},
        {"use_safetensors": False},
        {"shard": (1, 2)},
    ]
    for change in same:
        assert base.replace(**change).cache_key() == base.cache_key(), change
    other = [
        {"pooling": "cls"},
        {"layers": "all"},
        {"max_length": 8},
        {"max_samples": 5},
        {"seed": 1},
        {"dtype": "bfloat16"},
        {"split": "test"},
        {"label_column": "stars"},
        {"task": "regression"},
        {"text_column": "body"},
        {"text_pair_column": "b"},
        {"sampling_rate": 8000},
    ]
    keys = [base.replace(**change).cache_key() for change in other]
    assert all(key != base.cache_key() for key in keys)
    assert len({str(sorted(key.items())) for key in keys}) == len(other)
    with pytest.raises(TypeError, match="trust_remote_code must be True or False"):
        base.replace(trust_remote_code="yes")  # a copy is validated too


def test_the_dataset_is_prepared_once_per_run(reviews, local_models, tmp_path, monkeypatch):
    from hf_logme.features import sampling

    reads = []
    read_targets = sampling.read_targets
    monkeypatch.setattr(
        sampling, "read_targets", lambda *a, **k: reads.append(a[1]) or read_targets(*a, **k)
    )
    ranking = rank_models(list(local_models.values()), reviews, cache=False, progress=False)
    assert [row.status for row in ranking.rows] == ["ok", "ok"]
    assert reads == ["label"]  # one read of the labels for two candidates


def test_extract_features_takes_a_prepared_dataset(reviews, local_models):
    from hf_logme.features.extract import prepare_dataset
    from hf_logme.features.options import ExtractionOptions

    prepared = prepare_dataset(reviews, ExtractionOptions(max_samples=12, seed=3))
    assert (
        prepared.label_column == "label"
        and prepared.task == "classification"
        and len(prepared.rows) == 12
    )
    again = hf_logme.extract_features(
        local_models["small"], prepared, max_samples=12, seed=3, progress=False
    )
    direct = hf_logme.extract_features(
        local_models["small"], reviews, max_samples=12, seed=3, progress=False
    )
    assert np.array_equal(again.indices, direct.indices) and np.array_equal(
        again.labels, direct.labels
    )
    assert again.features.numpy() == pytest.approx(direct.features.numpy(), abs=1e-6)
    with pytest.raises(
        ValueError, match=r"max_samples=None, but the dataset was prepared with max_samples=12"
    ):
        hf_logme.extract_features(local_models["small"], prepared, progress=False)
    with pytest.raises(ValueError, match=r"seed=0, but the dataset was prepared with seed=3"):
        hf_logme.extract_features(local_models["small"], prepared, max_samples=12, progress=False)


def test_bad_model_lists(reviews, local_models):
    with pytest.raises(ValueError, match="models is empty"):
        rank_models([], reviews)
    with pytest.raises(ValueError, match="twice"):
        rank_models([local_models["small"], local_models["small"]], reviews)
    with pytest.raises(TypeError, match="Hub ids, local paths or Candidates"):
        rank_models([42], reviews)


# --- against the local Hub ------------------------------------------------------------------------


def test_hub_candidates_with_every_kind_of_failure(hub, reviews, tmp_path):
    hub.fail("/broken/flaky/resolve/*/model.safetensors", status=500)
    models = [
        "acme/bert-tiny",
        "broken/gated",
        "broken/remote-code",
        "broken/pickle-only",
        "broken/unknown-arch",
        "broken/flaky",
        "nobody/missing",
        "acme/bert-small",
    ]
    ranking = rank_models(models, reviews, cache_dir=tmp_path, progress=False)
    assert sorted(row.model for row in ranking.scored) == ["acme/bert-small", "acme/bert-tiny"]
    reasons = {row.model: row.reason for row in ranking.skipped}
    assert reasons["broken/gated"].startswith("GatedRepoError")
    assert reasons["broken/remote-code"].startswith("RemoteCodeRequiredError")
    assert "use_safetensors=False" in reasons["broken/pickle-only"]
    assert reasons["broken/unknown-arch"].startswith("UnsupportedModelError")
    assert reasons["nobody/missing"].startswith("RepositoryNotFoundError")
    assert "500" in reasons["broken/flaky"]
    assert "pytorch_model.bin" not in hub.downloads("broken/pickle-only")
    for row in ranking.scored:
        assert row.revision == hub.repo(row.model).sha
        assert row.num_parameters > 0


def test_hub_rerun_uses_the_cache_and_downloads_nothing(hub, reviews, tmp_path):
    models = ["acme/bert-tiny", "acme/bert-small"]
    first = rank_models(models, reviews, cache_dir=tmp_path, progress=False)
    hub.reset()
    again = rank_models(models, reviews, cache_dir=tmp_path, progress=False)
    assert all(row.cached for row in again.rows)
    assert [r.score for r in again.rows] == [r.score for r in first.rows]
    assert hub.count("/*/resolve/*") == 0  # model info only: no file downloaded
    # A new commit of a model is a new cache key.
    hub.add_repo("acme/bert-tiny", build_text_model(tmp_path / "v2", seed=5))
    third = rank_models(models, reviews, cache_dir=tmp_path, progress=False)
    assert {row.model: row.cached for row in third.rows} == {
        "acme/bert-tiny": False,
        "acme/bert-small": True,
    }


def test_delete_after_removes_what_this_run_downloaded(hub, reviews, tmp_path):
    from huggingface_hub import constants, scan_cache_dir

    rank_models(["acme/bert-tiny"], reviews, cache_dir=tmp_path, progress=False, delete_after=True)
    assert not any(
        repo.repo_id == "acme/bert-tiny" for repo in scan_cache_dir(constants.HF_HUB_CACHE).repos
    )
    rank_models(["acme/bert-small"], reviews, cache=False, progress=False)
    assert any(
        repo.repo_id == "acme/bert-small" for repo in scan_cache_dir(constants.HF_HUB_CACHE).repos
    )


def test_search_candidates_feed_rank_models(hub, reviews, tmp_path):
    candidates = hf_logme.search_candidates(modality="text", limit=3)
    ranking = rank_models(candidates, reviews, cache_dir=tmp_path, progress=False)
    assert [c.id for c in candidates] == sorted(
        (row.model for row in ranking.rows), key=[c.id for c in candidates].index
    )
    assert all(row.status == "ok" for row in ranking.rows)
    assert {row.model: row.num_parameters for row in ranking.rows} == {
        c.id: c.num_parameters for c in candidates
    }
