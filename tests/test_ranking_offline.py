"""rank_models with HF_HUB_OFFLINE=1 and with pinned revisions, through the real huggingface_hub
client against the local Hub (tests/hub_server.py)."""

from __future__ import annotations

import pytest
from hub_fixtures import CATALOG, build_entry, build_text_model

import hf_logme
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.ranking import rank_models


def one_shot(folder, dataset):
    """LogME (the ranking variant) of features extracted in one piece from a local folder."""
    out = hf_logme.extract_features(str(folder), dataset, progress=False)
    return hf_logme.logme(out.features, out.labels, intercept=True, prior=RANKING_PRIOR)


def go_offline(monkeypatch):
    """HF_HUB_OFFLINE=1 for this test, as huggingface_hub reads it (at import, into constants)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def catalog_model(repo_id, folder):
    """The files the local Hub serves for ``repo_id``, built again in ``folder``."""
    return build_entry(next(e for e in CATALOG if e.repo_id == repo_id), folder)


def test_offline_a_cached_hub_model_ranks_from_the_cache_with_the_same_score(
    hub, reviews, tmp_path, monkeypatch
):
    online = rank_models(["acme/bert-tiny"], reviews, cache_dir=tmp_path / "s1", progress=False)
    go_offline(monkeypatch)
    hub.reset()
    offline = rank_models(
        ["acme/bert-tiny", "acme/bert-small"], reviews, cache_dir=tmp_path / "s2", progress=False
    )
    assert hub.count() == 0  # not one request
    row, missing = offline.rows[0], offline.skipped[0]
    assert (row.model, row.status, row.cached) == ("acme/bert-tiny", "ok", False)
    assert row.revision == hub.repo("acme/bert-tiny").sha
    assert row.score == pytest.approx(online.rows[0].score, rel=1e-9)
    expected = one_shot(catalog_model("acme/bert-tiny", tmp_path / "bert-tiny"), reviews)
    assert row.score == pytest.approx(expected, rel=1e-6)
    assert row.num_parameters == online.rows[0].num_parameters > 0
    # Never downloaded: a skipped row that says what to do.
    assert missing.model == "acme/bert-small"
    assert "not in the Hugging Face cache" in missing.reason and "HF_HUB_OFFLINE" in missing.reason
    # The statistics cache is keyed by the cached commit: the online run's entry is reused.
    again = rank_models(["acme/bert-tiny"], reviews, cache_dir=tmp_path / "s1", progress=False)
    assert again.rows[0].cached and again.rows[0].score == online.rows[0].score


def test_offline_a_cached_branch_resolves_to_the_commit_the_cache_holds(
    hub, reviews, tmp_path, monkeypatch
):
    first = hub.repo("acme/bert-tiny").sha
    rank_models(["acme/bert-tiny"], reviews, cache=False, progress=False)
    hub.add_repo("acme/bert-tiny", build_text_model(tmp_path / "v2", seed=5))  # main moves on
    go_offline(monkeypatch)
    ranking = rank_models(["acme/bert-tiny@main"], reviews, cache=False, progress=False)
    assert ranking.rows[0].status == "ok" and ranking.rows[0].revision == first


def test_a_pinned_revision_scores_that_commit(hub, reviews, tmp_path, monkeypatch):
    old = hub.repo("acme/bert-tiny").sha
    new_folder = build_text_model(tmp_path / "v2", seed=5)
    hub.add_repo("acme/bert-tiny", new_folder)
    new = hub.repo("acme/bert-tiny").sha
    old_score = one_shot(catalog_model("acme/bert-tiny", tmp_path / "v1"), reviews)
    new_score = one_shot(new_folder, reviews)
    assert abs(old_score - new_score) > 1e-3  # the two commits are told apart

    by_name = rank_models([f"acme/bert-tiny@{old}"], reviews, cache_dir=tmp_path, progress=False)
    by_mapping = rank_models(
        ["acme/bert-tiny", "acme/bert-small"],
        reviews,
        revision={"acme/bert-tiny": old},
        cache_dir=tmp_path,
        progress=False,
    )
    latest = rank_models(["acme/bert-tiny"], reviews, cache_dir=tmp_path, progress=False)
    for ranking in (by_name, by_mapping):
        row = next(r for r in ranking.rows if r.model == "acme/bert-tiny")
        assert row.revision == old and row.score == pytest.approx(old_score, rel=1e-6)
    assert by_mapping.to_dict()["rows"][0]["revision"] in (old, hub.repo("acme/bert-small").sha)
    assert latest.rows[0].revision == new
    assert latest.rows[0].score == pytest.approx(new_score, rel=1e-6)
    assert not latest.rows[0].cached  # another commit, another statistics entry

    # select_checkpoint takes the same option; offline, the pinned commit comes from the cache.
    go_offline(monkeypatch)
    best, ranking = hf_logme.select_checkpoint(
        reviews,
        ["acme/bert-tiny"],
        revision={"acme/bert-tiny": old},
        cache=False,
        progress=False,
        return_ranking=True,
    )
    assert best == "acme/bert-tiny" and ranking.rows[0].revision == old
    assert ranking.rows[0].score == pytest.approx(old_score, rel=1e-6)


def test_bad_revisions_fail_before_any_model_loads(reviews, tmp_path):
    local = build_text_model(tmp_path / "local")
    with pytest.raises(ValueError, match="not among models"):
        rank_models(["acme/bert-tiny"], reviews, revision={"acme/other": "main"})
    with pytest.raises(ValueError, match="local model, which has no revision"):
        rank_models([str(local)], reviews, revision={str(local): "main"})
    with pytest.raises(ValueError, match="keep one"):
        rank_models(["acme/bert-tiny@v1"], reviews, revision={"acme/bert-tiny": "v2"})
    with pytest.raises(TypeError, match="map Hub ids"):
        rank_models(["acme/bert-tiny"], reviews, revision="main")
    with pytest.raises(ValueError, match="org/name@revision"):
        rank_models(["acme/bert-tiny@"], reviews)
