"""`hf-logme validate`: a saved ranking against a CSV of fine-tuning results."""

from __future__ import annotations

import json
import re

import pytest
from scipy import stats

from hf_logme.cli import main
from hf_logme.results import Ranking, RankingRow


@pytest.fixture
def files(tmp_path):
    rows = [
        RankingRow("org/a", score=-0.1, scores={"logme": -0.1, "hscore": 3.0}),
        RankingRow("org/b", score=-0.5, scores={"logme": -0.5, "hscore": 1.0}),
        RankingRow("org/c", score=-0.9, scores={"logme": -0.9, "hscore": 2.0}),
        RankingRow("org/d", status="skipped", reason="GatedRepoError"),
    ]
    ranking = tmp_path / "ranking.json"
    Ranking(rows, {"logme": {}, "hscore": {}}).to_json(ranking)
    truth = tmp_path / "results.csv"
    truth.write_text(  # two seeds each: means a 0.80, b 0.90, c 0.60
        "model,seed,accuracy\norg/a,0,0.78\norg/a,1,0.82\norg/b,0,0.9\norg/b,1,0.9\n"
        "org/c,0,0.6\norg/c,1,0.6\n"
    )
    return ranking, truth


def test_json_output_uses_the_primary_method_and_seed_means(files, capsys):
    ranking, truth = files
    assert (
        main(["validate", "--ranking", str(ranking), "--ground-truth", str(truth), "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "logme" and out["num_models"] == 3
    assert out["chosen"] == ["org/a"] and out["best"] == ["org/b"]
    assert out["top1_regret"] == pytest.approx((0.9 - 0.8) / 0.9)
    expected = stats.weightedtau([-0.1, -0.5, -0.9], [0.8, 0.9, 0.6]).statistic
    assert out["weighted_tau"] == pytest.approx(expected)


def test_table_output_for_another_method(files, capsys):
    ranking, truth = files
    assert (
        main(
            [
                "validate",
                "--ranking",
                str(ranking),
                "--ground-truth",
                str(truth),
                "--method",
                "hscore",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    tau = stats.kendalltau([3.0, 1.0, 2.0], [0.8, 0.9, 0.6]).statistic
    assert printed.startswith("hscore vs accuracy over 3 models")
    assert f"kendall_tau   {tau:.4f}" in printed
    assert "chosen        org/a" in printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "f1"], "--metric: .* has no column 'f1'"),
        (["--method", "knn"], "--method 'knn' is not in the ranking"),
    ],
)
def test_bad_options_exit_2(files, capsys, extra, message):
    ranking, truth = files
    assert main(["validate", "--ranking", str(ranking), "--ground-truth", str(truth), *extra]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_missing_model_and_files_exit_2(files, tmp_path, capsys):
    ranking, _ = files
    partial = tmp_path / "partial.csv"
    partial.write_text("model,accuracy\norg/a,0.8\norg/b,0.9\n")
    assert main(["validate", "--ranking", str(ranking), "--ground-truth", str(partial)]) == 2
    assert "ground_truth has no value for ['org/c']" in capsys.readouterr().err
    assert (
        main(["validate", "--ranking", str(tmp_path / "no.json"), "--ground-truth", str(partial)])
        == 2
    )
    assert "--ranking" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("model,accuracy\norg/a,high\n")
    assert main(["validate", "--ranking", str(ranking), "--ground-truth", str(bad)]) == 2
    assert "line 2: accuracy='high' is not a number" in capsys.readouterr().err
