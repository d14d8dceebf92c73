"""`hf-logme rank` output options: checked before any model loads; a write that fails after
scoring still prints the ranking, names the file and exits 3."""

from __future__ import annotations

import importlib.util

import pytest
from hub_fixtures import build_text_model

from hf_logme.cli import main
from hf_logme.results import Ranking


@pytest.fixture
def refuse_loading(monkeypatch):
    """Any model or dataset load fails the test: the check must come first."""

    def fail(*args, **kwargs):
        raise AssertionError("loaded something before checking the outputs")

    monkeypatch.setattr("hf_logme.data.load_dataset_source", fail)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--output", "ranking.txt"], "--output ranking.txt: use one of .json, .csv"),
        (["--plot", "ranking.jpg"], "--plot ranking.jpg: use one of .png, .svg, .pdf"),
        (["--output", "missing/ranking.json"], "the folder missing does not exist"),
        (["--plot", "."], "use one of .png"),
    ],
)
def test_bad_outputs_exit_2_before_anything_loads(
    flags, message, reviews_csv, refuse_loading, capsys, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    code = main(["rank", "--dataset", str(reviews_csv), "--models", "acme/x", *flags])
    assert code == 2 and message in capsys.readouterr().err


def test_an_output_folder_given_as_the_file_is_refused(
    reviews_csv, refuse_loading, capsys, tmp_path
):
    (tmp_path / "out.json").mkdir()
    code = main(["rank", "--dataset", str(reviews_csv), "--models", "a/b", "--output",
                 str(tmp_path / "out.json")])  # fmt: skip
    assert code == 2 and "is a folder; give a file name" in capsys.readouterr().err


def test_plot_without_matplotlib_exits_2_first(reviews_csv, refuse_loading, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    code = main(["rank", "--dataset", str(reviews_csv), "--models", "a/b", "--plot", "r.png"])
    assert code == 2 and "--plot needs matplotlib" in capsys.readouterr().err


def test_a_failed_write_after_scoring_keeps_the_ranking(reviews_csv, capsys, monkeypatch, tmp_path):
    model = build_text_model(tmp_path / "tiny")

    def disk_full(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Ranking, "save", disk_full)
    out = tmp_path / "ranking.json"
    code = main(["rank", "--dataset", str(reviews_csv), "--models", str(model), "--label-column",
                 "score", "--no-cache", "--output", str(out), "-q"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 3 and not out.exists()
    assert "tiny" in printed.out and "ok" in printed.out  # the ranking itself was printed
    assert f"--output {out} was not written: [Errno 28] No space left on device" in printed.err
