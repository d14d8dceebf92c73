"""Ranking rows: order, best, confidence, and what each output format shows."""

from __future__ import annotations

import csv
import io
import json
import math
from html.parser import HTMLParser

import pytest

from hf_logme.results import Ranking, RankingRow, method_label


def make_ranking():
    rows = [
        RankingRow(
            "b/low",
            score=-0.9,
            scores={"logme": -0.9},
            dim=8,
            num_samples=100,
            extract_s=1.0,
            score_s=0.01,
        ),
        RankingRow(
            "c/broken", status="skipped", reason="GatedRepoError: access to c/broken is restricted"
        ),
        RankingRow(
            "a/high",
            score=-0.2,
            scores={"logme": -0.2},
            dim=16,
            num_samples=100,
            extract_s=2.0,
            score_s=0.02,
            num_parameters=22_700_000,
            cached=True,
        ),
        RankingRow("d/perfect", score=math.inf, scores={"logme": math.inf}, dim=4, num_samples=100),
    ]
    return Ranking(rows, {"logme": {"intercept": False}}, {"name": "food_reviews", "num_rows": 100})


def make_uncertain_ranking():
    """Three scored rows with intervals (the second tied with the best), one skipped."""
    rows = [
        RankingRow(
            "org/second",
            score=-0.64,
            scores={"logme": -0.64},
            score_se=0.02,
            interval=(-0.69, -0.60),
            p_best=0.3,
            tied=True,
            num_samples=300,
            layer_scores={0: -0.75, 1: -0.64, 2: -0.66},
            best_layer=1,
        ),
        RankingRow(
            "/models/run-7/all-MiniLM-L6-v2",
            score=-0.62,
            scores={"logme": -0.62},
            score_se=0.02,
            interval=(-0.66, -0.58),
            p_best=0.7,
            num_samples=300,
            layer_scores={0: -0.8, 1: -0.7, 2: -0.62},
            best_layer=2,
        ),
        RankingRow(
            "org/random",
            score=-0.9,
            scores={"logme": -0.9},
            num_samples=300,
            note="no signal at 64 rows",
            method_errors={"hscore": "singular covariance"},
            num_duplicates=3,
        ),
        RankingRow("c/broken", status="skipped", reason="OSError: no weights"),
    ]
    return Ranking(
        rows,
        {"logme": {"intercept": True}},
        {"name": "reviews", "num_rows": 300, "split": "train", "task": "classification"},
        {"layers": "best", "pooling": "mean"},
    )


def test_rows_sorted_best_first_and_skipped_last():
    ranking = make_ranking()
    assert [row.model for row in ranking.rows] == ["d/perfect", "a/high", "b/low", "c/broken"]
    assert ranking.best == "d/perfect"
    assert [row.model for row in ranking.skipped] == ["c/broken"]
    assert len(ranking.scored) == 3


def test_best_is_none_when_nothing_scored():
    ranking = Ranking([RankingRow("x", status="skipped", reason="boom")], {"logme": {}})
    assert ranking.best is None


def test_method_label_names_the_variant():
    assert method_label("logme", {"intercept": True}) == "LogME (with intercept)"
    assert method_label("logme", {"intercept": False}) == "LogME (no intercept)"
    assert method_label("logme", {}) == "LogME"
    assert (
        method_label("knn", {"k": 5, "cosine": True, "scale": False})
        == "knn (k=5, cosine, no scale)"
    )


def test_confident_from_ties():
    ranking = make_uncertain_ranking()
    assert ranking.confident is False  # org/second is tied with the best
    untied = [
        RankingRow(r.model, score=r.score, scores=r.scores, interval=r.interval)
        for r in ranking.rows
    ]
    assert Ranking(untied, ranking.methods).confident is True
    assert make_ranking().confident is None  # no intervals: cannot tell


def test_json_is_strict_with_null_for_infinities(tmp_path):
    ranking = make_ranking()
    path = tmp_path / "ranking.json"
    ranking.save(path)
    text = path.read_text()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert data["rows"][0]["model"] == "d/perfect" and data["rows"][0]["score"] is None
    assert data["rows"][0]["scores"] == {"logme": None}
    assert "inf" not in text.lower().replace("info", "")
    assert data["method_labels"] == {"logme": "LogME (no intercept)"}
    assert data["rows"][1]["score"] == -0.2 and data["rows"][1]["num_parameters"] == 22_700_000
    again = Ranking.from_json(path)
    # an undefined score ranks after every defined one
    assert [r.model for r in again.rows] == ["a/high", "b/low", "d/perfect", "c/broken"]
    assert again.rows[0].num_parameters == 22_700_000
    assert again.methods == {"logme": {"intercept": False}}


def test_json_round_trip_of_uncertainty_fields(tmp_path):
    ranking = make_uncertain_ranking()
    data = json.loads(ranking.to_json())
    by_model = {row["model"]: row for row in data["rows"]}
    assert by_model["org/second"]["interval"] == [-0.69, -0.60]
    assert by_model["org/second"]["tied"] is True and by_model["org/second"]["p_best"] == 0.3
    assert by_model["org/second"]["layer_scores"] == {"0": -0.75, "1": -0.64, "2": -0.66}
    assert by_model["org/random"]["method_errors"] == {"hscore": "singular covariance"}
    assert data["confident"] is False and data["interval_level"] == 0.9
    again = Ranking.from_json(ranking.to_json())
    assert again.rows == ranking.rows
    assert again.rows[0].interval == (-0.66, -0.58) and again.confident is False


def test_old_json_with_inf_strings_and_unknown_keys_still_loads():
    old = {
        "methods": {"logme": {}},
        "rows": [
            {
                "model": "a",
                "score": "inf",
                "scores": {"logme": "inf"},
                "layer_scores": {"3": "-inf"},
            },
            {"model": "b", "score": -1.0, "scores": {"logme": -1.0}, "from_the_future": 1},
        ],
    }
    ranking = Ranking.from_json(json.dumps(old))
    assert ranking.rows[0].score == math.inf and ranking.rows[0].layer_scores == {3: -math.inf}
    assert ranking.rows[1].model == "b" and ranking.rows[1].tied is False


class _Cells(HTMLParser):
    """The text of every <caption>, <th> and <td>, grouped by table row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.caption = ""
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        if tag in ("th", "td", "caption"):
            self._in = tag
            if tag != "caption":
                self.rows[-1].append("")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "caption":
            self.caption += data
        elif self._in:
            self.rows[-1][-1] += data


def test_html_table_cells():
    ranking = make_uncertain_ranking()
    parser = _Cells()
    parser.feed(ranking._repr_html_())
    header, *body = parser.rows
    assert parser.caption.startswith(
        "LogME (with intercept) on reviews (split train, 300 rows, classification)"
    )
    assert header[:6] == [
        "rank",
        "model",
        "LogME (with intercept)",
        "± SE",
        "90% interval",
        "P(best)",
    ]
    cell = dict(zip(header, body[0]))
    assert cell["model"] == "/models/run-7/all-MiniLM-L6-v2" and cell["rank"] == "1"
    assert (
        cell["LogME (with intercept)"] == "-0.6200" and cell["90% interval"] == "[-0.6600, -0.5800]"
    )
    assert cell["P(best)"] == "0.70" and cell["layer"] == "2"
    assert dict(zip(header, body[1]))["status"] == "ok; tied with the best"
    random = dict(zip(header, body[2]))
    assert random["status"] == "ok; no signal at 64 rows; hscore not scored: singular covariance"
    assert random["duplicates"] == "3" and random["P(best)"] == "-"
    assert dict(zip(header, body[3]))["status"] == "skipped: OSError: no weights"


def test_html_escapes_names():
    ranking = Ranking([RankingRow("<b>x</b>", score=1.0, scores={"logme": 1.0})], {"logme": {}})
    assert (
        "<b>x</b>" not in ranking._repr_html_() and "&lt;b&gt;x&lt;/b&gt;" in ranking._repr_html_()
    )


def test_markdown_for_a_model_card():
    ranking = make_ranking()
    markdown = ranking.to_markdown()
    lines = markdown.splitlines()
    assert lines[0] == "**Checkpoint ranking**: LogME (no intercept) on food_reviews (100 rows)."
    assert lines[2].startswith("| rank | model | LogME (no intercept) | dim |")
    assert "| 2 | [a/high](https://huggingface.co/a/high) | -0.2000 |" in markdown
    assert "22.7M" in markdown and "ok (cached)" in markdown
    assert "skipped: GatedRepoError: access to c/broken is restricted" in lines[-1]
    uncertain = make_uncertain_ranking().to_markdown()
    assert (
        "| 1 | /models/run-7/all-MiniLM-L6-v2 | -0.6200 | 0.0200 | [-0.6600, -0.5800] | 0.70 |"
        in uncertain
    )
    assert uncertain.endswith("Not separated at 90%: org/second is tied with the best candidate.")


def test_text_table():
    ranking = make_ranking()
    text = str(ranking).splitlines()
    assert ranking.caption() == "LogME (no intercept) on food_reviews (100 rows)"
    assert text[0].split()[:5] == ["rank", "model", "LogME", "(no", "intercept)"]
    assert text[1].split()[:2] == ["1", "d/perfect"]
    assert text[4].split()[:2] == ["-", "c/broken"] and text[4].endswith("restricted")


def test_csv_and_pandas(tmp_path):
    ranking = make_uncertain_ranking()
    frame = ranking.to_pandas()
    assert list(frame["model"]) == [
        "/models/run-7/all-MiniLM-L6-v2",
        "org/second",
        "org/random",
        "c/broken",
    ]
    assert frame.loc[1, "score_logme"] == -0.64
    ranking.save(tmp_path / "r.csv")
    records = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert records[0]["method"] == "LogME (with intercept)"
    assert (records[0]["interval_low"], records[0]["interval_high"]) == ("-0.66", "-0.58")
    assert (
        records[0]["num_samples"] == "300" and records[0]["best_layer"] == "2"
    )  # integers stay integers
    assert (
        records[2]["method_errors"] == "hscore: singular covariance"
        and records[2]["interval_low"] == ""
    )
    assert records[3]["status"] == "skipped" and records[3]["score"] == ""
    with pytest.raises(ValueError, match=r"use \.json, \.csv, \.md or \.html"):
        ranking.save(tmp_path / "r.xlsx")


# --- plots ---------------------------------------------------------------------------------------


@pytest.fixture
def other_backend():
    """A backend that is not Agg, restored afterwards: a plot must not switch it."""
    matplotlib = pytest.importorskip("matplotlib")
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    yield "svg"
    matplotlib.use(before)


def test_plot_draws_points_with_interval_bars(other_backend, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    open_before = plt.get_fignums()
    ranking = make_uncertain_ranking()
    figure = ranking.plot(tmp_path / "ranking.png")
    assert (tmp_path / "ranking.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == other_backend and plt.get_fignums() == open_before
    (ax,) = figure.axes
    points = [
        line for line in ax.get_lines() if line.get_marker() == "o" and len(line.get_xdata()) == 1
    ]
    assert sorted((float(p.get_xdata()[0]), float(p.get_ydata()[0])) for p in points) == [
        (-0.9, 0.0),
        (-0.64, 1.0),
        (-0.62, 2.0),  # the best at the top
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["random", "second", "all-MiniLM-L6-v2"]
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    spans = sorted(
        tuple(sorted(float(x) for x in seg[:, 0])) for c in bars for seg in c.get_segments()
    )
    assert spans == [
        pytest.approx((-0.69, -0.60)),
        pytest.approx((-0.66, -0.58)),
    ]  # only rows with intervals
    assert "LogME (with intercept)" in ax.get_xlabel() and "90% intervals" in ax.get_xlabel()
    assert ax.get_title() == "LogME (with intercept) on reviews"
    texts = [t.get_text() for t in ax.texts]
    assert {"-0.6200", "-0.6400", "-0.9000"} <= set(texts)
    assert "Not shown: broken (skipped: OSError: no weights)" in texts
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "best",
        "tied with the best",
        "others",
    ]
    assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # Jupyter shows it without pyplot


def test_plot_draws_an_interval_that_lies_above_its_point(other_backend):
    # An interval for the score on all rows, from fewer rows scored, may not contain the score.
    from matplotlib.collections import LineCollection

    row = RankingRow("org/a", score=-0.7, score_se=0.01, interval=(-0.65, -0.5), num_samples=64)
    figure = Ranking([row], {"logme": {}}, {"name": "reviews"}).plot()
    (ax,) = figure.axes
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    spans = [tuple(sorted(float(x) for x in seg[:, 0])) for c in bars for seg in c.get_segments()]
    assert spans == [pytest.approx((-0.65, -0.5))]


def test_plot_on_given_axes_lists_non_finite_rows(other_backend):
    from matplotlib.figure import Figure

    figure = Figure()
    ax = figure.add_subplot()
    assert make_ranking().plot(ax=ax, title="mine") is figure
    assert ax.get_title() == "mine" and ax.get_legend() is None
    assert [t.get_text() for t in ax.get_yticklabels()] == ["low", "high"]
    assert (
        "Not shown: perfect (score inf); broken (skipped: GatedRepoError: access to c/broken is "
        "restricted)"
    ) in [t.get_text() for t in ax.texts]


def test_plot_keeps_full_ids_when_short_names_collide(other_backend):
    rows = [
        RankingRow("a/bert", score=-0.2, scores={"logme": -0.2}),
        RankingRow("b/bert", score=-0.5, scores={"logme": -0.5}),
        RankingRow("c/roberta", score=-0.6, scores={"logme": -0.6}),
    ]
    (ax,) = Ranking(rows, {"logme": {}}).plot().axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["roberta", "b/bert", "a/bert"]


def test_plot_without_finite_scores_says_why(other_backend):
    with pytest.raises(ValueError, match="No candidate has a finite score to plot: x: skipped: r"):
        Ranking([RankingRow("x", status="skipped", reason="r")], {"logme": {}}).plot()


def test_plot_layers_one_line_per_candidate(other_backend, tmp_path):
    ranking = make_uncertain_ranking()
    figure = ranking.plot_layers(tmp_path / "layers.svg")
    assert (tmp_path / "layers.svg").read_text().lstrip().startswith("<?xml")
    (ax,) = figure.axes
    lines = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    curves = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in lines}
    assert curves == {
        "all-MiniLM-L6-v2": ([0, 1, 2], [-0.8, -0.7, -0.62]),
        "second": ([0, 1, 2], [-0.75, -0.64, -0.66]),
    }
    stars = sorted(
        (float(s.get_xdata()[0]), float(s.get_ydata()[0]))
        for s in ax.get_lines()
        if s.get_marker() == "*"
    )
    assert stars == [(1.0, -0.64), (2.0, -0.62)]
    assert ax.get_ylabel() == "LogME (with intercept)"
    with pytest.raises(ValueError, match="rank with layers='best'"):
        make_ranking().plot_layers()
