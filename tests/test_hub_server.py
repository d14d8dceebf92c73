"""The local test Hub (tests/hub_server.py) speaks the Hub API to the real clients: huggingface_hub,
transformers' from_pretrained, datasets' load_dataset, and uploads to a Space."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import hub_fixtures
import pytest
import torch
from hub_fixtures import CATALOG, REVIEWS, build_text_model
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session
from safetensors.torch import load as load_safetensors


def test_tiny_model_loads_with_automodel_through_the_real_client(hub):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained("acme/bert-tiny")
    served = load_safetensors(hub.repo("acme/bert-tiny").files["model.safetensors"])
    assert served.keys() == model.state_dict().keys()
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in served.items())
    assert AutoTokenizer.from_pretrained("acme/bert-tiny")("a")["input_ids"] == [2, 5, 3]
    assert not [path for path in hub.downloads("acme/bert-tiny") if path.endswith(".bin")]
    assert hub.count("/acme/bert-tiny/resolve/*/model.safetensors", method="GET") == 1


def test_tests_are_offline_without_the_hub_fixture():
    with pytest.raises(OfflineModeIsEnabled):
        HfApi().model_info("acme/bert-tiny")


def test_connections_beyond_loopback_are_refused():
    with pytest.raises(
        RuntimeError, match="must not use the network; refused a connection to 192.0.2.1:443"
    ):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    assert (
        hub_fixtures._REFUSED.pop() == "192.0.2.1:443"
    )  # recorded, so a swallowed error still fails


def test_listing_pages_follow_link_headers(hub, monkeypatch):
    monkeypatch.setattr(hub, "page_size", 3)
    models = [e.repo_id for e in CATALOG if e.repo_type == "model"]
    assert sorted(m.id for m in HfApi().list_models()) == sorted(models)
    assert hub.count("/api/models") == -(-len(models) // 3)
    hub.reset()
    assert [m.id for m in HfApi().list_models(sort="downloads", limit=2)] == [
        "other/timm-net",
        "broken/gated",
    ]
    assert hub.count("/api/models") == 1  # `limit` is the page size


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"language": "en"}, "Query parameters ['language'] are not supported by the test Hub."),
        ({"expand": "nonsense"}, '"expand" must be one of'),
        ({"expand": "sha", "full": "true"}, "expand cannot be combined with full or config."),
        (
            {"num_parameters": "below:5M"},
            "num_parameters takes 'min:<n>' and/or 'max:<n>'; got 'below:5M'.",
        ),
        ({"num_parameters": "max:lots"}, "Invalid parameter count 'lots'"),
        ({"sort": "size"}, "sort must be one of"),
    ],
)
def test_unsupported_listing_requests_are_rejected_not_ignored(hub, params, message):
    response = get_session().get(f"{hub.endpoint}/api/models", params=params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_client_sees_bad_requests_and_chunked_bodies_are_refused(hub):
    with pytest.raises(BadRequestError, match="expand"):
        list(HfApi().list_models(expand=["not-a-property"]))
    chunks = iter([b"paths=config.json"])
    response = get_session().post(
        f"{hub.endpoint}/api/models/acme/bert-tiny/paths-info/main", content=chunks
    )
    assert response.status_code == 411


def test_errors_map_to_the_client_error_classes(hub, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("acme/missing")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("acme/bert-tiny", "config.json", revision="v9", cache_dir=tmp_path)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("acme/bert-tiny", "missing.json", cache_dir=tmp_path)
    with pytest.raises(GatedRepoError):
        hf_hub_download("broken/gated", "config.json", cache_dir=tmp_path)
    with pytest.raises(HfHubHTTPError, match="Invalid credentials"):
        HfApi(token="hf_wrong").model_info("acme/bert-tiny")
    hf_hub_download(
        "broken/gated", "README.md", cache_dir=tmp_path
    )  # the card of a gated repo is public


def test_old_commits_stay_downloadable(hub, tmp_path):
    old = hub.repo("acme/bert-tiny")
    old_sha, old_config = old.sha, old.files["config.json"]
    hub.add_repo("acme/bert-tiny", build_text_model(tmp_path / "v2", hidden_size=24))
    assert HfApi().model_info("acme/bert-tiny").sha == hub.repo("acme/bert-tiny").sha != old_sha
    path = hf_hub_download(
        "acme/bert-tiny", "config.json", revision=old_sha, cache_dir=tmp_path / "c"
    )
    assert Path(path).read_bytes() == old_config


def test_range_requests(hub):
    content = hub.repo("acme/bert-tiny").files["model.safetensors"]
    url = f"{hub.endpoint}/acme/bert-tiny/resolve/main/model.safetensors"
    response = get_session().get(url, headers={"Range": "bytes=10-19"})
    assert response.status_code == 206 and response.content == content[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{len(content)}"


def test_injected_failures_count_down(hub):
    url = f"{hub.endpoint}/acme/bert-tiny/resolve/main/config.json"
    hub.fail("/acme/bert-tiny/resolve/*/config.json", status=503, times=2)
    assert [get_session().get(url).status_code for _ in range(3)] == [503, 503, 200]
    assert get_session().head(url).status_code == 200  # HEAD was not armed


def test_load_dataset_from_the_local_hub(hub):
    import datasets

    data = datasets.load_dataset("acme/tiny-reviews")
    assert (data["train"].num_rows, data["test"].num_rows) == (18, 6)
    rows = [(row["text"], row["label"]) for split in ("train", "test") for row in data[split]]
    assert sorted(rows) == sorted(REVIEWS)


def test_space_upload_round_trip(hub, hub_token, tmp_path):
    folder = tmp_path / "space"
    folder.mkdir()
    files = {
        "README.md": "---\nsdk: gradio\n---\n",
        "app.py": "print('hi')\n",
        "requirements.txt": "hf-logme\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    api = HfApi(token=hub_token)
    url = api.create_repo("tester/logme", repo_type="space", space_sdk="gradio")
    assert url == f"{hub.endpoint}/spaces/tester/logme"
    api.upload_folder(
        repo_id="tester/logme", folder_path=folder, repo_type="space", commit_message="First"
    )
    space = hub.repo("tester/logme", repo_type="space")
    assert space.sdk == "gradio" and space.head.title == "First"
    assert {k: v.decode() for k, v in space.files.items() if k != ".gitattributes"} == files

    (folder / "app.py").write_text("print('bye')\n")
    api.create_repo("tester/logme", repo_type="space", space_sdk="gradio", exist_ok=True)
    api.upload_folder(
        repo_id="tester/logme", folder_path=folder, repo_type="space", commit_message="Second"
    )
    assert space.files["app.py"] == b"print('bye')\n" and space.head.title == "Second"
    assert len(space.commits) == 3  # creation, First, Second
    with pytest.raises(HfHubHTTPError, match="409"):
        api.create_repo("tester/logme", repo_type="space", space_sdk="gradio")
    with pytest.raises(HfHubHTTPError, match="401"):
        HfApi(token=False).create_repo("tester/other", repo_type="space", space_sdk="gradio")


def test_readme_metadata_is_validated_before_an_upload(hub, hub_token, tmp_path):
    (tmp_path / "README.md").write_text("---\ntitle: LogME\nnot yaml at all\n---\n")
    api = HfApi(token=hub_token)
    api.create_repo("tester/broken-card", repo_type="space", space_sdk="gradio")
    with pytest.raises(
        ValueError,
        match=r"(?s)Invalid metadata in README.md.*Line 3 is not 'key: value': 'not yaml at all'",
    ):
        api.upload_folder(repo_id="tester/broken-card", folder_path=tmp_path, repo_type="space")
    assert list(hub.repo("tester/broken-card", repo_type="space").files) == [".gitattributes"]


def test_tree_and_paths_info(hub):
    from huggingface_hub.hf_api import RepoFile, RepoFolder

    api = HfApi()
    top = {e.path: e for e in api.list_repo_tree("acme/bert-every-format")}
    assert {p for p, e in top.items() if isinstance(e, RepoFolder)} == {"1_Pooling", "onnx"}
    everything = {e.path for e in api.list_repo_tree("acme/bert-every-format", recursive=True)}
    assert everything == set(hub.repo("acme/bert-every-format").files) | {"1_Pooling", "onnx"}
    weights = top["model.safetensors"]
    content = hub.repo("acme/bert-every-format").files["model.safetensors"]
    assert weights.lfs.sha256 == hashlib.sha256(content).hexdigest() and weights.size == len(
        content
    )
    assert top["config.json"].lfs is None
    found = api.get_paths_info("acme/bert-every-format", ["config.json", "onnx", "missing.txt"])
    assert [(type(e), e.path) for e in found] == [(RepoFile, "config.json"), (RepoFolder, "onnx")]
    assert found[0].blob_id == top["config.json"].blob_id
