"""The metric's files: the Space folder, the card, loading by path and by name, the push."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import evaluate
import numpy as np
import pytest
import yaml
from huggingface_hub import HfApi, RepoUrl

import hf_logme
from hf_logme.cli import main
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.metric import CITATION, EXAMPLES, Logme
from hf_logme.metric_space import export_space, install_metric, push_space, render_card, space_files

METRIC_DIR = Path(__file__).resolve().parents[1] / "metric_card" / "logme"
FEATURES = [[1.0, 0.1], [0.9, 0.0], [0.1, 1.0], [0.0, 1.1]]
LABELS = ["cat", "cat", "dog", "dog"]


def test_committed_space_folder_is_the_rendered_one():
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in METRIC_DIR.iterdir()}
    assert on_disk == space_files(), (
        "metric_card/logme is stale: run `hf-logme metric export metric_card/logme --overwrite`"
    )


def test_card_follows_evaluates_layout():
    card = render_card()
    _, header, body = card.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert {"evaluate", "metric"} <= set(meta["tags"]) and meta["description"]
    headings = [line for line in body.splitlines() if line.startswith("#")]
    expected = [
        "# Metric Card for LogME",
        "## Metric Description",
        "## How to Use",
        "### Inputs",
        "### Output Values",
        "#### Values from Popular Papers",
        "### Examples",
        "## Limitations and Bias",
        "## Citation",
        "## Further References",
    ]
    assert [h for h in headings if h in expected] == expected
    assert "{{" not in card
    assert (
        CITATION in card
        and "ICML" in CITATION
        and "Journal of Machine Learning Research" in CITATION
    )
    limitations = body.split("## Limitations and Bias", 1)[1].split("## Citation", 1)[0]
    for point in (
        "on the same data",
        "not a probability",
        "on the training data, not on the test data",
    ):
        assert point in limitations
    for _, code in EXAMPLES:
        assert f"```python\n{code}\n```" in card


def test_space_folder_loads_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = hf_logme.logme(np.float32(FEATURES), LABELS, intercept=True, prior=RANKING_PRIOR)
    for path in (METRIC_DIR, METRIC_DIR / "logme.py"):
        metric = evaluate.load(str(path), cache_dir=str(tmp_path / "cache"))
        assert isinstance(metric, Logme) and metric.name == "logme"
        assert metric.compute(predictions=FEATURES, references=LABELS) == {"logme": expected}
    relative = os.path.relpath(METRIC_DIR, tmp_path)
    assert isinstance(evaluate.load(relative, "regression"), Logme)


def test_install_makes_the_name_load_offline(caplog):
    script = install_metric()
    modules = Path(evaluate.config.HF_MODULES_CACHE)
    assert (
        script.parent.parent == modules / "evaluate_modules" / "metrics" / "evaluate-metric--logme"
    )
    assert script.read_text(encoding="utf-8") == space_files()["logme.py"]
    assert install_metric() == script  # idempotent
    metric = evaluate.load("logme", "multilabel")
    assert isinstance(metric, Logme) and metric.config_name == "multilabel"
    assert metric.compute(predictions=FEATURES, references=[[1, 0], [1, 1], [0, 1], [0, 0]])[
        "logme"
    ] == hf_logme.logme(
        np.float32(FEATURES),
        [[1, 0], [1, 1], [0, 1], [0, 0]],
        regression=True,
        intercept=True,
        prior=RANKING_PRIOR,
    )


def test_export_under_another_name(tmp_path, caplog):
    folder = export_space(tmp_path / "my_logme", name="my_logme")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "app.py",
        "my_logme.py",
        "requirements.txt",
    ]
    assert '"my_logme.py"' in (folder / "app.py").read_text() and "logme.py" not in (
        folder / "app.py"
    ).read_text().replace("my_logme.py", "")
    assert isinstance(evaluate.load(str(folder), cache_dir=str(tmp_path / "cache")), Logme)
    with caplog.at_level(logging.WARNING, logger="hf_logme.metric_space"):
        export_space(tmp_path / "elsewhere")
    assert "needs the folder named 'logme'" in caplog.text


def test_names_that_are_not_module_names_are_refused(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"'my-logme' becomes the module file my-logme\.py.*letters, digits and underscores",
    ):
        space_files("my-logme")
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        export_space(tmp_path / "x", name="2logme")
    assert not (tmp_path / "x").exists()


def test_requirements_and_app():
    files = space_files()
    requirements = [
        line for line in files["requirements.txt"].splitlines() if line and not line.startswith("#")
    ]
    assert f"hf-logme>={hf_logme.__version__}" in requirements
    compile(files["app.py"], "app.py", "exec")
    compile(files["logme.py"], "logme.py", "exec")
    # evaluate's regex import scan sees one library import, with the pip name from "# From:".
    from evaluate.loading import get_imports

    assert get_imports(str(METRIC_DIR / "logme.py")) == [("library", "hf_logme", "hf-logme", None)]


# --- push ----------------------------------------------------------------------------------------


class RecordingApi:
    """Stands in for HfApi: records what push_space asks of the Hub."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **options):
        self.calls.append(("create_repo", repo_id, options))
        namespace = "me" if "/" not in repo_id else repo_id.split("/")[0]
        return RepoUrl(
            f"https://hub.test/spaces/{namespace}/{repo_id.split('/')[-1]}",
            endpoint="https://hub.test",
        )

    def create_commit(self, repo_id, operations, **options):
        files = {op.path_in_repo: op.path_or_fileobj.decode("utf-8") for op in operations}
        self.calls.append(("create_commit", repo_id, files, options))


def test_push_creates_the_space_and_commits_every_file_once():
    api = RecordingApi()
    url = push_space("team/logme", token="hf_x", private=True, api=api)
    assert url.repo_id == "team/logme"
    (_, repo_id, create), (_, commit_repo, files, commit) = api.calls
    assert repo_id == "team/logme" and commit_repo == "team/logme"
    assert create == {
        "token": "hf_x",
        "private": True,
        "repo_type": "space",
        "space_sdk": "gradio",
        "exist_ok": True,
    }
    assert files == space_files("logme")
    assert commit["repo_type"] == "space" and commit["token"] == "hf_x"
    assert hf_logme.__version__ in commit["commit_message"]


def test_push_names_the_script_after_the_space():
    api = RecordingApi()
    push_space("team/transfer_score", api=api)
    assert "transfer_score.py" in api.calls[1][2]


def test_push_checks_the_repo_id_before_any_request():
    api = RecordingApi()
    with pytest.raises(ValueError, match="repo_id 'team/bad name' is not a valid Hub repo id"):
        push_space("team/bad name", api=api)
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        push_space("team/my-logme", api=api)
    assert api.calls == []


def test_push_to_the_local_hub_then_load_the_space(hub, hub_token, tmp_path, monkeypatch):
    api = HfApi(endpoint=hub.endpoint, token=hub_token)
    url = push_space("tester/logme", api=api)
    assert url.repo_id == "tester/logme"
    space = hub.repo("tester/logme", repo_type="space")
    assert space.sdk == "gradio"
    files = {path: data.decode() for path, data in space.files.items() if path != ".gitattributes"}
    assert files == space_files("logme")
    # Updating an existing Space: an outdated file is replaced; an unchanged Space is left as is.
    api.upload_file(
        path_or_fileobj=b"old", path_in_repo="logme.py", repo_id="tester/logme", repo_type="space"
    )
    push_space("tester/logme", api=api)
    space = hub.repo("tester/logme", repo_type="space")
    assert space.files["logme.py"].decode() == space_files()["logme.py"]
    push_space("tester/logme", api=api)
    assert hub.repo("tester/logme", repo_type="space").sha == space.sha
    # evaluate.load("NS/name") downloads NS/name/name.py from the Space (evaluate reads
    # HF_ENDPOINT at import: conftest pointed it at this server).
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", False)
    monkeypatch.setattr(evaluate.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)  # a request to S3
    metric = evaluate.load("tester/logme", "regression", cache_dir=str(tmp_path / "cache"))
    assert isinstance(metric, Logme) and metric.config_name == "regression"
    assert hub.downloads("tester/logme", repo_type="space") == ["logme.py"]


def test_push_needs_a_token_the_hub_accepts(hub):
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError, match="401"):
        push_space("tester/logme", api=HfApi(endpoint=hub.endpoint, token="hf_not_a_token"))


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_install_and_export(tmp_path, capsys):
    assert main(["metric", "install"]) == 0
    out = capsys.readouterr().out
    assert str(install_metric()) in out and 'evaluate.load("logme")' in out
    assert main(["metric", "export", str(tmp_path / "logme")]) == 0
    assert sorted(p.name for p in (tmp_path / "logme").iterdir()) == sorted(space_files())


def test_cli_push_errors(tmp_path, capsys, monkeypatch):
    assert main(["metric", "push", "--repo-id", "team/bad name"]) == 2
    assert "not a valid Hub repo id" in capsys.readouterr().err
    # A Hub that cannot be reached: exit 1 with the reason.
    monkeypatch.setattr("hf_logme.metric_space.HfApi", lambda: HfApi(endpoint="http://127.0.0.1:9"))
    assert main(["metric", "push", "--repo-id", "team/logme", "--token", "hf_fake"]) == 1
    assert "hf-logme metric push: error:" in capsys.readouterr().err


def test_cli_push_prints_how_to_load(capsys, monkeypatch):
    api = RecordingApi()
    monkeypatch.setattr("hf_logme.metric_space.HfApi", lambda: api)
    assert main(["metric", "push", "--repo-id", "team/logme", "--private"]) == 0
    assert 'evaluate.load("team/logme")' in capsys.readouterr().out
    assert api.calls[0][2]["private"] is True
