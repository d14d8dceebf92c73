"""No code run that the user refused: string flags, remote code refused from the config alone."""

from __future__ import annotations

import pytest

from hf_logme.errors import RemoteCodeRequiredError, UnsupportedModelError
from hf_logme.features.loading import check_hub_config
from hf_logme.ranking import rank_models


@pytest.mark.parametrize(
    "flag", ["trust_remote_code", "use_safetensors", "cache", "delete_after", "progress"]
)
def test_rank_models_refuses_non_bool_flags_before_anything_else(flag, reviews):
    with pytest.raises(TypeError, match=f"{flag} must be True or False; got 'false'"):
        rank_models(["org/model"], reviews, **{flag: "false"})


def test_select_checkpoint_refuses_a_string_trust_remote_code(reviews):
    from hf_logme.selection import select_checkpoint

    with pytest.raises(TypeError, match="trust_remote_code must be True or False"):
        select_checkpoint(reviews, ["org/model"], trust_remote_code="false")


@pytest.mark.parametrize(
    "repo, error",
    [
        ("broken/remote-code", "RemoteCodeRequiredError"),
        ("broken/unknown-arch", "UnsupportedModelError"),
    ],
)
def test_a_hub_candidate_is_refused_from_its_config_before_its_weights(
    hub, reviews, tmp_path, repo, error
):
    ranking = rank_models([repo, "acme/bert-tiny"], reviews, cache_dir=tmp_path, progress=False)
    (skipped,) = ranking.skipped
    assert skipped.model == repo and skipped.reason.startswith(error)
    assert hub.downloads(repo) == ["config.json"]  # no weights, no code files
    assert "model.safetensors" in hub.downloads("acme/bert-tiny")


def test_check_hub_config_returns_the_config_of_a_plain_model(hub):
    assert check_hub_config("acme/bert-tiny")["model_type"] == "bert"
    with pytest.raises(RemoteCodeRequiredError, match="pass trust_remote_code=True"):
        check_hub_config("broken/remote-code")
    with pytest.raises(UnsupportedModelError, match="not known to this transformers"):
        check_hub_config("broken/unknown-arch", trust_remote_code=True)
    with pytest.raises(TypeError, match="trust_remote_code must be True or False"):
        check_hub_config("broken/remote-code", trust_remote_code="no")
    assert hub.downloads("broken/remote-code") == ["config.json"]


def _cached_repos() -> set[str]:
    from huggingface_hub import constants, scan_cache_dir

    return {repo.repo_id for repo in scan_cache_dir(constants.HF_HUB_CACHE).repos}


def test_download_candidate_itself_refuses_remote_code_and_leaves_no_trace(hub):
    from hf_logme.hub import download_candidate

    # The public download helper checks the config too, not only the ranking that calls it.
    with pytest.raises(RemoteCodeRequiredError, match="pass trust_remote_code=True"):
        download_candidate("broken/remote-code")
    with pytest.raises(UnsupportedModelError, match="not known to this transformers"):
        download_candidate("broken/unknown-arch")
    assert hub.downloads("broken/remote-code") == ["config.json"]
    assert not {"broken/remote-code", "broken/unknown-arch"} & _cached_repos()
    with pytest.raises(TypeError, match="trust_remote_code must be True or False; got 'yes'"):
        download_candidate("broken/remote-code", trust_remote_code="yes")
    # Opted in: the weights come, the repo's code still does not (from_pretrained fetches it).
    path = download_candidate("broken/remote-code", trust_remote_code=True)
    assert (path / "model.safetensors").is_file() and not list(path.glob("*.py"))


def test_delete_after_leaves_nothing_of_a_refused_candidate(hub, reviews, tmp_path):
    ranking = rank_models(
        ["broken/remote-code", "acme/bert-tiny"],
        reviews,
        cache_dir=tmp_path,
        progress=False,
        delete_after=True,
    )
    assert [row.model for row in ranking.skipped] == ["broken/remote-code"]
    assert not {"broken/remote-code", "acme/bert-tiny"} & _cached_repos()
