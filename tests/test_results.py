"""Ranking rows: order, best, output formats, round trip."""

from __future__ import annotations

import json
import math

import pytest

from hf_logme.results import Ranking, RankingRow


def make_ranking():
    rows = [
        RankingRow("b/low", score=-0.9, scores={"logme": -0.9}, dim=8, num_samples=100, extract_s=1.0, score_s=0.01),
        RankingRow("c/broken", status="skipped", reason="GatedRepoError: access to c/broken is restricted"),
        RankingRow("a/high", score=-0.2, scores={"logme": -0.2}, dim=16, num_samples=100, extract_s=2.0,
                   score_s=0.02, num_parameters=22_700_000, cached=True),
        RankingRow("d/perfect", score=math.inf, scores={"logme": math.inf}, dim=4, num_samples=100),
    ]
    return Ranking(rows, {"logme": {"intercept": False}}, {"name": "food_reviews", "num_rows": 100})


def test_rows_sorted_best_first_and_skipped_last():
    ranking = make_ranking()
    assert [row.model for row in ranking.rows] == ["d/perfect", "a/high", "b/low", "c/broken"]
    assert ranking.best == "d/perfect"
    assert [row.model for row in ranking.skipped] == ["c/broken"]
    assert len(ranking.scored) == 3


def test_best_is_none_when_nothing_scored():
    ranking = Ranking([RankingRow("x", status="skipped", reason="boom")], {"logme": {}})
    assert ranking.best is None


def test_json_round_trip_keeps_infinities(tmp_path):
    ranking = make_ranking()
    path = tmp_path / "ranking.json"
    ranking.save(path)
    data = json.loads(path.read_text())  # strict JSON: no bare Infinity
    assert data["rows"][0]["score"] == "inf"
    again = Ranking.from_json(path)
    assert [r.model for r in again.rows] == [r.model for r in ranking.rows]
    assert again.rows[0].score == math.inf
    assert again.rows[1].num_parameters == 22_700_000
    assert again.methods == {"logme": {"intercept": False}}


def test_markdown_and_text_tables_show_reasons():
    ranking = make_ranking()
    markdown = ranking.to_markdown()
    lines = markdown.splitlines()
    assert lines[0].startswith("| rank | model | logme |")
    assert "| 2 | a/high | -0.2000 |" in markdown
    assert "22.7M" in markdown and "ok (cached)" in markdown
    assert "skipped: GatedRepoError: access to c/broken is restricted" in lines[-1]
    text = str(ranking)
    assert text.splitlines()[1].split()[:2] == ["1", "d/perfect"]


def test_csv_and_pandas(tmp_path):
    ranking = make_ranking()
    frame = ranking.to_pandas()
    assert list(frame["model"]) == ["d/perfect", "a/high", "b/low", "c/broken"]
    assert frame.loc[1, "score_logme"] == -0.2
    ranking.save(tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("model,status,score")
    with pytest.raises(ValueError, match=r"use \.json, \.csv or \.md"):
        ranking.save(tmp_path / "r.xlsx")


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [RankingRow("a", score=-0.2, scores={"logme": -0.2}), RankingRow("b", score=-0.5, scores={"logme": -0.5})]
    path = Ranking(rows, {"logme": {}}).plot(tmp_path / "ranking.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="No candidate has a finite score"):
        Ranking([RankingRow("x", status="skipped", reason="r")], {"logme": {}}).plot(tmp_path / "x.png")
