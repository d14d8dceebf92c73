"""`hf-logme rank` end to end, in a subprocess talking to the local Hub."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest


def run_cli(args, env, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "hf_logme.cli", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_rank_prints_writes_and_explains_skips(hub, hub_env, reviews_csv, tmp_path):
    pytest.importorskip("matplotlib")
    out, plot = tmp_path / "ranking.json", tmp_path / "ranking.png"
    result = run_cli(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--models",
            "acme/bert-tiny",
            "broken/gated",
            "broken/pickle-only",
            "acme/bert-small",
            "--output",
            str(out),
            "--plot",
            str(plot),
            "--cache-dir",
            str(tmp_path / "cache"),
            "-q",
        ],
        hub_env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["rank", "model", "LogME", "(with", "intercept,", "small-sample"]
    assert {lines[1].split()[1], lines[2].split()[1]} == {"acme/bert-tiny", "acme/bert-small"}
    assert "skipped: GatedRepoError" in result.stdout and "use_safetensors=False" in result.stdout
    data = json.loads(out.read_text())
    assert [row["status"] for row in data["rows"]] == ["ok", "ok", "skipped", "skipped"]
    assert data["dataset"]["label_column"] == "score"
    assert data["methods"] == {"logme": {"intercept": True, "prior": 2.0}}
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_rank_several_methods_and_a_row_cap(hub, hub_env, reviews_csv, tmp_path):
    out = tmp_path / "ranking.json"
    result = run_cli(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--models",
            "acme/bert-tiny",
            "--method",
            "logme,num_parameters",
            "--max-rows",
            "50",
            "--output",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "-q",
        ],
        hub_env,
    )
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:9] == [
        "rank", "model", "LogME", "(with", "intercept,", "small-sample", "prior", "2)",
        "num_parameters",
    ]  # fmt: skip
    data = json.loads(out.read_text())
    assert data["methods"] == {"logme": {"intercept": True, "prior": 2.0}, "num_parameters": {}}
    row = data["rows"][0]
    assert (
        row["scores"]["num_parameters"] == row["num_parameters"] > 0 and row["method_errors"] == {}
    )
    repeated = run_cli(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--models",
            "acme/bert-tiny",
            "--method",
            "logme",
            "--method",
            "logme",
        ],
        hub_env,
    )
    assert repeated.returncode == 2 and "--method names ['logme'] more than once" in repeated.stderr


def test_rank_exit_code_is_1_when_nothing_could_be_scored(hub, hub_env, reviews_csv, tmp_path):
    result = run_cli(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--models",
            "broken/gated",
            "nobody/missing",
            "--no-cache",
            "-q",
        ],
        hub_env,
    )
    assert result.returncode == 1
    assert "RepositoryNotFoundError" in result.stdout


def test_rank_bad_arguments_exit_2_with_the_reason(hub, hub_env, reviews_csv):
    result = run_cli(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--models",
            "acme/bert-tiny",
            "--label-column",
            "stars",
        ],
        hub_env,
    )
    assert result.returncode == 2
    assert "--label-column stars is not a column" in result.stderr  # the flag, not label_column=
    both = run_cli(
        ["rank", "--dataset", str(reviews_csv), "--models", "a/b", "--task", "fill-mask"], hub_env
    )
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_rank_searches_the_hub_with_task(hub, hub_env, reviews_csv, tmp_path):
    result = run_cli(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--task",
            "fill-mask",
            "--limit",
            "2",
            "--output",
            str(tmp_path / "r.csv"),
            "-q",
            "--no-cache",
        ],
        hub_env,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [row["model"] for row in rows] and all(row["status"] == "ok" for row in rows)
    assert len(rows) == 2


def test_rank_without_models_searches_by_the_dataset_modality(hub, hub_env, reviews_csv, tmp_path):
    result = run_cli(
        [
            "rank",
            "--dataset",
            str(reviews_csv),
            "--limit",
            "3",
            "--output",
            str(tmp_path / "r.json"),
            "-q",
            "--no-cache",
        ],
        hub_env,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert len(rows) == 3 and all(row["status"] == "ok" for row in rows)
    assert not any(
        row["model"].startswith(("acme/vit", "acme/wav2vec2", "zeta/vit")) for row in rows
    )


def test_rank_dataset_from_the_hub(hub, hub_env, tmp_path):
    result = run_cli(
        [
            "rank",
            "--dataset",
            "acme/tiny-reviews",
            "--split",
            "train",
            "--models",
            "acme/bert-tiny",
            "-q",
            "--no-cache",
        ],
        hub_env,
    )
    assert result.returncode == 0, result.stderr
    assert "acme/bert-tiny" in result.stdout.splitlines()[1]


def test_a_killed_run_resumes_from_the_cache(hub, hub_env, reviews_csv, tmp_path):
    cache = tmp_path / "cache"
    hub.fail(
        "/acme/bert-medium/resolve/*/model.safetensors", stall=60
    )  # hangs on the third candidate
    args = [
        "rank",
        "--dataset",
        str(reviews_csv),
        "--models",
        "acme/bert-tiny",
        "acme/bert-small",
        "acme/bert-medium",
        "--cache-dir",
        str(cache),
        "-q",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_logme.cli", *args],
        env=hub_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list((cache / "statistics").glob("*.pt"))) < 2:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the first two candidates were not cached in time"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    hub.reset()  # the Hub is healthy again
    result = run_cli(args + ["--output", str(tmp_path / "r.json")], hub_env)
    assert result.returncode == 0, result.stderr
    cached = {
        row["model"]: row["cached"] for row in json.loads((tmp_path / "r.json").read_text())["rows"]
    }
    assert cached == {"acme/bert-tiny": True, "acme/bert-small": True, "acme/bert-medium": False}
    assert not list((cache / "statistics").glob("*.tmp"))


def test_rank_json_on_stdout_a_sliced_folder_and_a_pinned_revision(hub, hub_env, tmp_path):
    import datasets
    from hub_fixtures import build_text_model, reviews_dataset

    old = hub.repo("acme/bert-tiny").sha
    hub.add_repo("acme/bert-tiny", build_text_model(tmp_path / "v2", seed=5))  # main moves on
    folder = tmp_path / "reviews"
    datasets.DatasetDict({"train": reviews_dataset()}).save_to_disk(str(folder))
    result = run_cli(
        [
            "rank",
            "--dataset",
            str(folder),
            "--split",
            "train[6:22]",
            "--models",
            f"acme/bert-tiny@{old}",
            "--json",
            "--cache-dir",
            str(tmp_path / "cache"),
            "-q",
        ],
        hub_env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is the JSON alone
    row = data["rows"][0]
    assert (row["model"], row["status"], row["revision"]) == ("acme/bert-tiny", "ok", old)
    assert row["num_samples"] == 16  # the slice, not the folder's 24 rows
    assert data["method_labels"]["logme"] == "LogME (with intercept, small-sample prior 2)"
    assert result.stderr.splitlines()[0].split()[:3] == ["rank", "model", "LogME"]
