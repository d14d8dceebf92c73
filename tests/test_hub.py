"""hf_logme.hub against the local Hub (tests/hub_server.py), through the real huggingface_hub
client."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from hub_fixtures import TEXT_VOCAB, build_text_model
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.torch import load as load_safetensors

from hf_logme import Candidate, search_candidates
from hf_logme.errors import UnsafeWeightsError, UnsupportedModelError
from hf_logme.hub import download_candidate, resolve_candidate, safetensors_parameter_count

# What the default search must return from the catalogue (tests/hub_fixtures.py), most downloaded
# first. Left out: broken/gated (gated), other/timm-net (library timm), broken/remote-code
# (auto_map), broken/pickle-only (no safetensors), broken/unknown-arch (no AutoModel class).
DEFAULT = [
    "acme/bert-tiny",
    "acme/bert-small",
    "zeta/sentence-tiny",
    "zeta/minibert-fr",
    "acme/vit-tiny",
    "acme/bert-sst2-tiny",
    "zeta/vit-features",
    "acme/wav2vec2-tiny",
    "acme/bert-every-format",
    "acme/bert-sharded",
    "acme/bert-medium",
    "broken/flaky",
]
FILL_MASK = [
    "acme/bert-tiny",
    "zeta/minibert-fr",
    "acme/bert-every-format",
    "acme/bert-sharded",
    "acme/bert-medium",
    "broken/flaky",
]
EXPAND = {
    "sha",
    "pipeline_tag",
    "downloads",
    "likes",
    "safetensors",
    "gated",
    "library_name",
    "tags",
    "config",
}


def _ids(candidates: list[Candidate]) -> list[str]:
    return [c.id for c in candidates]


def _parameter_count(hub, repo_id: str) -> int:
    """Parameters of a served repo, counted from its weights (not from the server's metadata)."""
    files = hub.repo(repo_id).files
    return sum(
        t.numel()
        for name, data in files.items()
        if name.endswith(".safetensors")
        for t in load_safetensors(data).values()
    )


# --- search_candidates -----------------------------------------------------------------------
def test_default_search_keeps_only_loadable_safe_ungated_models_by_downloads(hub):
    candidates = search_candidates(limit=50)
    assert _ids(candidates) == DEFAULT
    tiny = candidates[0]
    assert tiny == Candidate(
        id="acme/bert-tiny",
        sha=hub.repo("acme/bert-tiny").sha,
        pipeline_tag="fill-mask",
        downloads=5000,
        likes=50,
        num_parameters=_parameter_count(hub, "acme/bert-tiny"),
        license="apache-2.0",
        gated=False,
        library="transformers",
        model_type="bert",
        architectures=("BertModel",),
        has_safetensors=True,
        remote_code=False,
        tags=tiny.tags,
    )
    assert {"transformers", "safetensors", "en", "license:apache-2.0"} <= set(tiny.tags)
    assert tiny.to_dict()["architectures"] == ["BertModel"]


def test_search_asks_the_hub_for_its_filters_and_only_the_needed_properties(hub):
    search_candidates(
        task="fill-mask",
        language="en",
        license="mit",
        author="acme",
        search="bert",
        max_parameters=123_456_789,
    )
    (request,) = [r for r in hub.requests if r.path == "/api/models"]
    assert sorted(request.query["filter"]) == ["en", "license:mit", "safetensors", "transformers"]
    assert request.query["pipeline_tag"] == ["fill-mask"]
    assert request.query["author"] == ["acme"] and request.query["search"] == ["bert"]
    assert request.query["gated"] == ["false"] and request.query["sort"] == ["downloads"]
    assert request.query["num_parameters"] == [
        "max:124M"
    ]  # rounded up; the exact bound is applied here
    assert set(request.query["expand"]) == EXPAND
    assert (
        "limit" not in request.query
    )  # `limit` counts candidates after filtering, not listed models


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"task": "fill-mask"}, FILL_MASK),
        (
            {"task": ("feature-extraction", "text-classification")},
            ["acme/bert-small", "acme/bert-sst2-tiny"],
        ),
        # A modality searches several pipeline tags; their listings are merged in download order.
        (
            {"modality": "text"},
            [
                "acme/bert-tiny",
                "acme/bert-small",
                "zeta/sentence-tiny",
                "zeta/minibert-fr",
                "acme/bert-sst2-tiny",
                "acme/bert-every-format",
                "acme/bert-sharded",
                "acme/bert-medium",
                "broken/flaky",
            ],
        ),
        ({"modality": "image"}, ["acme/vit-tiny", "zeta/vit-features"]),
        ({"modality": "audio"}, ["acme/wav2vec2-tiny"]),
        ({"search": "bert-s"}, ["acme/bert-small", "acme/bert-sst2-tiny", "acme/bert-sharded"]),
        ({"author": "zeta"}, ["zeta/sentence-tiny", "zeta/minibert-fr", "zeta/vit-features"]),
        ({"language": "fr"}, ["zeta/minibert-fr"]),
        ({"license": "mit"}, ["acme/bert-small", "zeta/minibert-fr", "zeta/vit-features"]),
        (
            {"sort": "likes", "limit": 3},
            ["acme/bert-small", "acme/bert-tiny", "zeta/sentence-tiny"],
        ),
        ({"modality": "image", "sort": "likes"}, ["acme/vit-tiny", "zeta/vit-features"]),
        ({"limit": 2}, DEFAULT[:2]),
        ({"exclude_gated": False, "limit": 2}, ["broken/gated", "acme/bert-tiny"]),
        (
            {"require_safetensors": False, "task": "fill-mask", "limit": 3},
            ["acme/bert-tiny", "broken/pickle-only", "zeta/minibert-fr"],
        ),
        (
            {"library": None, "modality": "image"},
            ["other/timm-net", "acme/vit-tiny", "zeta/vit-features"],
        ),  # timm-net: a timm checkpoint (library timm), loaded with timm
        ({"library": "timm"}, ["other/timm-net"]),
        ({"author": "nobody"}, []),
    ],
)
def test_search_filters(hub, filters, expected):
    assert _ids(search_candidates(**{"limit": 50, **filters})) == expected


def test_sort_by_creation_date_merges_tasks_newest_first(hub):
    created = {r.repo_id: r.created_at for r in hub.repos()}
    found = _ids(search_candidates(modality="text", sort="created_at"))
    assert found == sorted(found, key=created.__getitem__, reverse=True)
    assert set(found) == set(_ids(search_candidates(modality="text")))


def test_max_parameters_is_an_exact_bound(hub):
    sizes = {model_id: _parameter_count(hub, model_id) for model_id in DEFAULT}
    bound = sizes["acme/bert-tiny"]
    found = search_candidates(max_parameters=bound)
    assert _ids(found) == [m for m in DEFAULT if sizes[m] <= bound]
    assert all(c.num_parameters == sizes[c.id] for c in found)
    assert "acme/bert-medium" not in _ids(found) and sizes["acme/bert-medium"] > bound
    assert _ids(search_candidates(max_parameters=bound - 1)) == [
        m for m in DEFAULT if sizes[m] < bound
    ]


def test_pickle_only_models_are_found_only_when_allowed_and_have_no_size(hub):
    (pickle,) = [
        c
        for c in search_candidates(require_safetensors=False, limit=50)
        if c.id == "broken/pickle-only"
    ]
    assert not pickle.has_safetensors and pickle.num_parameters is None
    assert "broken/pickle-only" not in _ids(search_candidates(limit=50))
    # Its size is unknown, so it cannot be shown to satisfy a size bound.
    assert "broken/pickle-only" not in _ids(
        search_candidates(require_safetensors=False, max_parameters=10**9)
    )


def test_search_pages_lazily_and_stops_once_limit_candidates_passed(hub, monkeypatch):
    monkeypatch.setattr(hub, "page_size", 2)
    # fill-mask listing: bert-tiny, remote-code | unknown-arch, minibert-fr | every-format,
    # sharded | ...
    assert _ids(search_candidates(task="fill-mask", limit=2)) == [
        "acme/bert-tiny",
        "zeta/minibert-fr",
    ]
    assert hub.count("/api/models") == 2
    hub.reset()
    assert _ids(search_candidates(task="fill-mask", limit=50)) == FILL_MASK  # follows every page
    assert hub.count("/api/models") == 4


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            {"task": "fill-mask", "modality": "text"},
            ValueError,
            "either task='fill-mask' or modality='text'",
        ),
        (
            {"modality": "video"},
            ValueError,
            r"modality must be one of \['audio', 'image', 'text'\]; got 'video'",
        ),
        ({"task": []}, ValueError, "task must be a pipeline tag or a sequence"),
        ({"task": ["fill-mask", 3]}, ValueError, "task must be a pipeline tag or a sequence"),
        ({"limit": 0}, ValueError, "limit must be an int >= 1; got 0"),
        ({"limit": True}, ValueError, "limit must be an int >= 1; got True"),
        ({"limit": 2.5}, ValueError, "limit must be an int >= 1; got 2.5"),
        ({"max_parameters": 0}, ValueError, "max_parameters must be an int >= 1 or None; got 0"),
        (
            {"max_parameters": "1B"},
            ValueError,
            "max_parameters must be an int >= 1 or None; got '1B'",
        ),
        ({"sort": "popularity"}, ValueError, "sort must be one of .*; got 'popularity'"),
        ({"search": " "}, ValueError, "search must be a non-empty str or None; got ' '"),
        ({"author": 3}, ValueError, "author must be a non-empty str or None; got 3"),
        ({"license": ""}, ValueError, "license must be a non-empty str or None"),
        ({"exclude_gated": "yes"}, TypeError, "exclude_gated must be a bool; got 'yes'"),
        ({"require_safetensors": None}, TypeError, "require_safetensors must be a bool; got None"),
    ],
)
def test_search_rejects_bad_options_before_any_request(hub, options, error, match):
    with pytest.raises(error, match=match):
        search_candidates(**options)
    assert hub.count("/api/models*") == 0


def test_search_uses_the_injected_client(hub):
    class CountingApi(HfApi):
        calls = 0

        def list_models(self, **kwargs):
            CountingApi.calls += 1
            return super().list_models(**kwargs)

    assert _ids(search_candidates(modality="image", api=CountingApi(endpoint=hub.endpoint))) == [
        "acme/vit-tiny",
        "zeta/vit-features",
    ]
    assert CountingApi.calls == 2


def test_search_errors_from_the_hub_surface(hub):
    hub.fail("/api/models", status=400)
    with pytest.raises(HfHubHTTPError, match="Injected failure"):
        search_candidates()


# --- resolve_candidate -------------------------------------------------------------------------
def test_resolve_reads_sha_gating_weights_and_code(hub):
    tiny = resolve_candidate("acme/bert-tiny")
    assert (tiny.sha, tiny.has_safetensors, tiny.loadable) == (
        hub.repo("acme/bert-tiny").sha,
        True,
        True,
    )
    assert tiny.num_parameters == _parameter_count(hub, "acme/bert-tiny")
    pickle = resolve_candidate("broken/pickle-only")
    assert (pickle.has_safetensors, pickle.num_parameters) == (False, None)
    assert resolve_candidate("broken/gated").gated  # metadata of gated repos is public
    remote = resolve_candidate("broken/remote-code")
    assert (remote.remote_code, remote.loadable, remote.model_type) == (True, False, "fancy-bert")
    unknown = resolve_candidate("broken/unknown-arch")
    assert (unknown.remote_code, unknown.loadable) == (False, False)


def test_remote_code_and_safetensors_evidence_from_config_and_tags(hub):
    weights = hub.repo("acme/bert-tiny").files["model.safetensors"]
    config = {"model_type": "bert", "auto_map": {"AutoTokenizer": ["tokenization.Tok", None]}}
    hub.add_repo(
        "acme/custom-tokenizer", {"config.json": json.dumps(config), "model.safetensors": weights}
    )
    assert "custom_code" in hub.repo("acme/custom-tokenizer").all_tags(
        hub.repo("acme/custom-tokenizer").head
    )
    assert resolve_candidate("acme/custom-tokenizer").loadable  # auto_map names no model code
    hub.add_repo(
        "acme/bert-tiny", tags=("custom_code",)
    )  # no auto_map in its config: the tag decides
    assert resolve_candidate("acme/bert-tiny").remote_code
    info = HfApi().model_info("acme/bert-tiny", expand=["tags"])  # weights the Hub did not count
    assert info.safetensors is None and Candidate.from_model_info(info).has_safetensors


def test_resolve_follows_and_pins_revisions(hub, tmp_path):
    old = hub.repo("acme/bert-tiny").sha
    hub.add_repo("acme/bert-tiny", build_text_model(tmp_path / "v2", seed=1))
    new = hub.repo("acme/bert-tiny").sha
    assert new != old
    assert resolve_candidate("acme/bert-tiny").sha == new
    assert resolve_candidate("acme/bert-tiny", revision=old).sha == old
    with pytest.raises(RevisionNotFoundError):
        resolve_candidate("acme/bert-tiny", revision="no-such-branch")


def test_resolve_errors(hub):
    with pytest.raises(RepositoryNotFoundError):
        resolve_candidate("acme/no-such-model")
    with pytest.raises(ValueError, match="model_id 'acme/bad--id' is not a Hub repo id"):
        resolve_candidate("acme/bad--id")
    with pytest.raises(TypeError, match="model_id must be a str like 'owner/name'; got int"):
        resolve_candidate(3)
    with pytest.raises(
        ValueError, match="revision must be a branch, tag or commit sha, or None; got ''"
    ):
        resolve_candidate("acme/bert-tiny", revision="")
    assert hub.count("/api/models/acme/*") == 1  # only acme/no-such-model was asked for


# --- download_candidate ------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_fetches_only_what_from_pretrained_needs(hub):
    from transformers import AutoModel, AutoTokenizer

    path = download_candidate("acme/bert-every-format")
    needed = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert sorted(hub.downloads("acme/bert-every-format")) == needed
    assert sorted(p.name for p in path.iterdir()) == needed
    assert path.name == hub.repo("acme/bert-every-format").sha  # the resolved commit's snapshot
    served = load_safetensors(hub.repo("acme/bert-every-format").files["model.safetensors"])
    model = AutoModel.from_pretrained(path)
    assert torch.equal(
        model.embeddings.word_embeddings.weight, served["embeddings.word_embeddings.weight"]
    )
    expected = [TEXT_VOCAB.index(t) for t in ("[CLS]", "a", "##b", "##c", "[SEP]")]
    assert AutoTokenizer.from_pretrained(path)("abc")["input_ids"] == expected


def test_download_takes_the_index_and_every_shard(hub):
    from transformers import AutoModel

    path = download_candidate("acme/bert-sharded")
    files = hub.repo("acme/bert-sharded").files
    shards = sorted(f for f in files if f.endswith(".safetensors"))
    assert len(shards) > 1
    assert sorted(hub.downloads("acme/bert-sharded")) == sorted(
        [
            "config.json",
            "model.safetensors.index.json",
            "tokenizer.json",
            "tokenizer_config.json",
            *shards,
        ]
    )
    assert AutoModel.from_pretrained(path).config.hidden_size == 32


def test_pickle_weights_need_an_explicit_opt_in(hub):
    from transformers import AutoModel

    with pytest.raises(
        UnsafeWeightsError,
        match=r"only pickle files \['pytorch_model.bin'\].*use_safetensors=False",
    ):
        download_candidate("broken/pickle-only")
    assert hub.downloads("broken/pickle-only") == []  # refused before downloading anything
    path = download_candidate("broken/pickle-only", use_safetensors=False)
    assert "pytorch_model.bin" in hub.downloads("broken/pickle-only")
    assert AutoModel.from_pretrained(path).config.model_type == "bert"
    # With safetensors available, the opt-in still takes safetensors.
    download_candidate("acme/bert-every-format", use_safetensors=False)
    assert "pytorch_model.bin" not in hub.downloads("acme/bert-every-format")


def test_download_of_a_repo_without_loadable_weights(hub):
    hub.add_repo(
        "acme/config-only", {"config.json": '{"model_type": "bert"}', "tf_model.h5": b"tf"}
    )
    with pytest.raises(
        UnsupportedModelError, match=r"acme/config-only: no weights .*found \['tf_model.h5'\]"
    ):
        download_candidate("acme/config-only")
    with pytest.raises(TypeError, match="use_safetensors must be a bool; got 'no'"):
        download_candidate("acme/bert-tiny", use_safetensors="no")


def test_gated_and_missing_repos_raise_the_hub_errors(hub, hub_token):
    with pytest.raises(GatedRepoError):
        download_candidate("broken/gated")
    with pytest.raises(RepositoryNotFoundError):
        download_candidate("acme/no-such-model")
    hub.repo("broken/gated").granted_users.add("tester")
    path = download_candidate("broken/gated", token=hub_token)
    assert (path / "model.safetensors").is_file()


def test_server_error_mid_download_surfaces_and_leaves_no_file(hub, tmp_path):
    cache = tmp_path / "cache"
    hub.fail("/broken/flaky/resolve/*/model.safetensors", status=500)
    with pytest.raises(HfHubHTTPError, match="500"):
        download_candidate("broken/flaky", cache_dir=cache)
    assert not list(cache.rglob("model.safetensors")) and not list(cache.rglob("*.incomplete"))
    hub.failures.clear()
    path = download_candidate("broken/flaky", cache_dir=cache)
    assert (
        _sha256(path / "model.safetensors")
        == hashlib.sha256(hub.repo("broken/flaky").files["model.safetensors"]).hexdigest()
    )


def test_truncated_download_is_retried_not_kept(hub):
    hub.fail("/broken/flaky/resolve/*/model.safetensors", truncate=True, times=1)
    path = download_candidate("broken/flaky")
    assert (
        _sha256(path / "model.safetensors")
        == hashlib.sha256(hub.repo("broken/flaky").files["model.safetensors"]).hexdigest()
    )
    gets = [
        r.status
        for r in hub.requests
        if r.method == "GET" and r.path.endswith("/model.safetensors")
    ]
    assert gets == [200, 200]  # the cut answer, then a complete one


@pytest.mark.parametrize("shard", [None, "20KB"], ids=["one-file", "sharded"])
def test_local_parameter_count_reads_every_shard_header(tmp_path, shard):
    options = {} if shard is None else {"max_shard_size": shard}
    folder = build_text_model(tmp_path / "m", hidden_size=32, num_layers=2, **options)
    files = sorted(folder.glob("*.safetensors"))
    assert (len(files) > 1) == (shard is not None)
    expected = sum(t.numel() for f in files for t in load_safetensors(f.read_bytes()).values())
    assert safetensors_parameter_count(folder) == expected
    assert safetensors_parameter_count(tmp_path) is None  # no weights: no count
