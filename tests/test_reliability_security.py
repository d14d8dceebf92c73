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
