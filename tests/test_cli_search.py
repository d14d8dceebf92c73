"""`hf-logme search` end to end against the local Hub: in a subprocess as a user runs it, and in
process for the option mapping and the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hf_logme.cli import main


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hf_logme.cli", "search", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_search_prints_a_table(hub, hub_env):
    result = _cli(hub_env, "--modality", "image")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["#", "model", "task", "params", "downloads", "likes", "license"]
    assert [row.split()[:3] for row in rows] == [
        ["1", "acme/vit-tiny", "image-classification"],
        ["2", "zeta/vit-features", "image-feature-extraction"],
    ]
    assert rows[0].split()[4:] == ["900", "9", "apache-2.0"]
    params = hub.repo("acme/vit-tiny").num_parameters()
    assert rows[0].split()[3] == f"{params / 1000:.1f}K"


def test_search_json(hub, hub_env):
    result = _cli(hub_env, "--task", "fill-mask", "--limit", "2", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [c["id"] for c in found] == ["acme/bert-tiny", "zeta/minibert-fr"]
    assert found[0]["sha"] == hub.repo("acme/bert-tiny").sha
    assert found[1]["license"] == "mit" and found[1]["model_type"] == "bert"
    assert found[0]["num_parameters"] == hub.repo("acme/bert-tiny").num_parameters()


def test_options_reach_the_search(hub, capsys):
    assert (
        main(
            [
                "search",
                "--include-gated",
                "--allow-pickle",
                "--any-library",
                "--task",
                "fill-mask",
                "--task",
                "feature-extraction",
                "--sort",
                "likes",
                "--json",
            ]
        )
        == 0
    )
    assert {"broken/gated", "broken/pickle-only"} <= {
        c["id"] for c in json.loads(capsys.readouterr().out)
    }
    queries = [r.query for r in hub.requests if r.path == "/api/models"]
    assert sorted(q["pipeline_tag"][0] for q in queries) == ["feature-extraction", "fill-mask"]
    assert all("filter" not in q and "gated" not in q and q["sort"] == ["likes"] for q in queries)

    hub.reset()
    assert main(["search", "--max-parameters", "20K", "--json"]) == 0
    found = {c["id"]: c["num_parameters"] for c in json.loads(capsys.readouterr().out)}
    assert found and all(n <= 20_000 for n in found.values())
    assert (
        "acme/bert-medium" not in found and hub.repo("acme/bert-medium").num_parameters() > 20_000
    )
    assert [r.query["num_parameters"] for r in hub.requests if r.path == "/api/models"] == [
        ["max:20K"]
    ]


def test_nothing_found_exits_1(hub, capsys):
    assert main(["search", "--author", "nobody"]) == 1
    captured = capsys.readouterr()
    assert "No model on the Hub matches these filters." in captured.err
    assert captured.out.split() == ["#", "model", "task", "params", "downloads", "likes", "license"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--task", "fill-mask", "--modality", "text"],
            "Pass either task=['fill-mask'] or modality='text'",
        ),
        (["--max-parameters", "-5"], "max_parameters must be an int >= 1 or None; got -5"),
    ],
)
def test_bad_options_exit_2_with_the_reason(hub, capsys, args, message):
    assert main(["search", *args]) == 2
    assert message in capsys.readouterr().err
    assert hub.count("/api/models*") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-parameters", "lots"], "expected a count like 110M, 1.5B or 300000; got 'lots'"),
        (["--limit", "0"], "expected a positive integer; got 0"),
    ],
)
def test_unparsable_values_are_argparse_errors(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
