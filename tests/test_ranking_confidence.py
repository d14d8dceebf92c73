"""Rankings that know how sure they are: the small-sample LogME, the no-signal note, duplicate
inputs, jackknife error bars, P(best), ties, the cache of row groups and the CLI's line."""

from __future__ import annotations

import csv
import json
import math

import datasets
import numpy as np
import pytest
import torch
from hub_fixtures import REVIEWS, build_text_model
from scipy import stats

import hf_logme
from hf_logme.cli import main
from hf_logme.confidence import from_leave_out
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.ranking import rank_models
from hf_logme.results import Ranking, RankingRow
from hf_logme.scoring import with_confidence


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "small": str(build_text_model(root / "small", seed=1)),
        "wide": str(build_text_model(root / "wide", seed=2, hidden_size=32, num_layers=2)),
    }


@pytest.fixture(scope="module")
def reviews():
    """48 rows: the 24 reviews, each with a second, reworded copy (no exact duplicates)."""
    texts = [t for t, _ in REVIEWS] + [f"honestly, {t}" for t, _ in REVIEWS]
    labels = [y for _, y in REVIEWS] * 2
    return datasets.Dataset.from_dict({"text": texts, "label": labels})


def stream(model, dataset, max_samples=None):
    """The features and labels in the order the extractor streams them (longest first)."""
    batches = []
    hf_logme.extract_features(
        model,
        dataset,
        max_samples=max_samples,
        on_batch=lambda f, y: batches.append((f.double().cpu().numpy(), np.asarray(y))),
        return_features=False,
        progress=False,
    )
    return np.concatenate([f for f, _ in batches]), np.concatenate([y for _, y in batches])

def brute_force_jackknife(features, labels, groups):
    """(leave-one-group-out scores, jackknife error) of the ranking's LogME, by G separate
    LogME calls on the round-robin complements (no shared code with the streaming groups)."""
    which = np.arange(len(labels)) % groups
    leave_out = np.array(
        [
            hf_logme.logme(
                features[which != g], labels[which != g], intercept=True, prior=RANKING_PRIOR
            )
            for g in range(groups)
        ]
    )
    se = math.sqrt((groups - 1) / groups * ((leave_out - leave_out.mean()) ** 2).sum())
    return leave_out, se



def test_error_bars_are_the_delete_a_group_jackknife_of_round_robin_groups(
    models, reviews, tmp_path
):
    ranking = rank_models([models["small"]], reviews, cache_dir=tmp_path, progress=False)
    row = ranking.rows[0]
    features, labels = stream(models["small"], reviews)
    groups = 20  # at most 20, at most half the 48 rows, and 20 x 16^2 doubles fit easily
    leave_out, se = brute_force_jackknife(features, labels, groups)
    assert row.score == pytest.approx(
        hf_logme.logme(features, labels, intercept=True, prior=RANKING_PRIOR), rel=1e-9
    )
    assert row.score_se == pytest.approx(se, rel=1e-6)
    half = stats.t.ppf(0.95, groups - 1) * se
    assert row.interval == pytest.approx((row.score - half, row.score + half), rel=1e-3)
    assert row.p_best == 1.0 and row.tied is False  # alone
    assert ranking.confident is True


def test_with_fewer_rows_scored_than_available_the_interval_is_for_all_rows(
    models, reviews, tmp_path
):
    ranking = rank_models(
        [models["small"]], reviews, max_samples=24, cache_dir=tmp_path, progress=False
    )
    row = ranking.rows[0]
    assert row.num_samples == 24 and ranking.dataset["rows_available"] == 48
    features, labels = stream(models["small"], reviews, max_samples=24)
    groups = 12  # at most half the 24 rows
    leave_out, se = brute_force_jackknife(features, labels, groups)
    assert row.score_se == pytest.approx(se, rel=1e-6)  # the error of the 24-row score
    # Moved along the jackknife's first-order drift to 48 rows, upper end + se * ln(48 / 24).
    centre = row.score + (groups - 1) * (row.score - leave_out.mean()) * (1 - 24 / 48)
    half = stats.t.ppf(0.95, groups - 1) * se
    expected = (centre - half, centre + half + se * math.log(2))
    assert row.interval == pytest.approx(expected, rel=1e-3, abs=1e-9)
    assert row.p_best == 1.0 and ranking.confident is True


def test_p_best_and_ties_across_candidates_and_the_rendered_fields(models, reviews, tmp_path):
    ranking = rank_models(list(models.values()), reviews, cache_dir=tmp_path, progress=False)
    first, second = ranking.rows
    assert first.p_best + second.p_best == pytest.approx(1.0)
    assert first.p_best > 0.5 > second.p_best
    overlap = second.interval[1] >= first.interval[0]
    assert second.tied is overlap and first.tied is False
    assert ranking.confident is (not overlap)
    # JSON keeps every field; CSV has the interval's two ends; the plot draws.
    back = Ranking.from_json(ranking.to_json())
    for a, b in zip(back.rows, ranking.rows):
        fields = ("score_se", "interval", "p_best", "tied")
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    assert json.loads(ranking.to_json())["dataset"]["num_duplicates"] == 0
    table = list(csv.DictReader(ranking.to_csv().splitlines()))
    assert float(table[0]["interval_low"]) == pytest.approx(first.interval[0])
    assert float(table[1]["p_best"]) == pytest.approx(second.p_best)
    assert "90% interval" in str(ranking) and "P(best)" in str(ranking)
    pytest.importorskip("matplotlib")
    ranking.plot(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_row_groups_are_cached_and_old_entries_load_without_error_bars(models, reviews, tmp_path):
    first = rank_models([models["small"]], reviews, cache_dir=tmp_path, progress=False).rows[0]
    again = rank_models([models["small"]], reviews, cache_dir=tmp_path, progress=False).rows[0]
    assert again.cached and (again.score, again.score_se) == (first.score, first.score_se)
    # Rewrite the entry as layout 2 (before row groups): it still loads, without error bars.
    (path,) = (tmp_path / "statistics").glob("*.pt")
    stored = torch.load(path, weights_only=True)
    entry = stored["value"]
    assert entry["layout"] == 3 and len(entry["row_groups"]["gram"]["last"]) == 20
    del entry["row_groups"]
    torch.save({**stored, "value": {**entry, "layout": 2}}, path)
    old = rank_models([models["small"]], reviews, cache_dir=tmp_path, progress=False).rows[0]
    assert old.cached and old.score == pytest.approx(first.score, rel=1e-12)
    assert old.score_se is None and old.interval is None and old.p_best is None


def test_duplicate_inputs_are_scored_once_unless_kept(models, reviews, tmp_path):
    doubled = datasets.concatenate_datasets([reviews, reviews.select(range(10))])
    ranking = rank_models([models["small"]], doubled, cache_dir=tmp_path, progress=False)
    row = ranking.rows[0]
    assert ranking.dataset["num_duplicates"] == 10 and ranking.dataset["num_rows"] == 48
    assert row.num_samples == 48 and row.num_duplicates == 0
    features, labels = stream(models["small"], reviews)  # the distinct rows
    assert row.score == pytest.approx(
        hf_logme.logme(features, labels, intercept=True, prior=RANKING_PRIOR), rel=1e-9
    )
    kept = rank_models(
        [models["small"]], doubled, keep_duplicates=True, cache_dir=tmp_path, progress=False
    )
    assert kept.rows[0].num_samples == 58 and kept.rows[0].num_duplicates == 10
    assert kept.dataset["num_duplicates"] == 10 and not kept.rows[0].cached
    features, labels = stream(models["small"], doubled)
    assert kept.rows[0].score == pytest.approx(
        hf_logme.logme(features, labels, intercept=True, prior=RANKING_PRIOR), rel=1e-9
    )
    # Duplicates are dropped before max_samples draws its rows: 30 distinct rows are scored.
    sub = rank_models(
        [models["small"]], doubled, max_samples=30, cache_dir=tmp_path, progress=False
    )
    assert sub.rows[0].num_samples == 30 and sub.rows[0].num_duplicates == 0
    with pytest.raises(TypeError, match="keep_duplicates"):
        rank_models([models["small"]], doubled, keep_duplicates="no", progress=False)


def test_a_no_signal_score_gets_a_note(models, tmp_path):
    # Labels that alternate along texts that differ only in a number the tiny model barely sees.
    data = datasets.Dataset.from_dict(
        {"text": [f"review number {i}" for i in range(12)], "label": [i % 2 for i in range(12)]}
    )
    row = rank_models([models["small"]], data, cache_dir=tmp_path, progress=False).rows[0]
    features, labels = stream(models["small"], data)
    result = hf_logme.LogME(intercept=True, prior=RANKING_PRIOR).update(features, labels).result
    assert result.no_signal  # the premise of this test
    assert row.note == "no signal at 12 rows"


def estimate(score, leave_out):
    return from_leave_out(score, leave_out)


def test_with_confidence_marks_ties_p_best_and_no_signal_floors():
    rng = np.random.default_rng(0)
    base = rng.normal(size=10)
    rows = [
        RankingRow(model="a", status="ok", score=1.0),
        RankingRow(model="b", status="ok", score=0.9),
        RankingRow(model="c", status="ok", score=-5.0),
        RankingRow(model="skipped", status="skipped"),
    ]
    estimates = {
        "a": estimate(1.0, 1.0 + 0.02 * base),
        "b": estimate(0.9, 0.9 + 0.02 * rng.normal(size=10)),
        "c": estimate(-5.0, -5.0 + 0.01 * base),
    }
    out = {row.model: row for row in with_confidence(rows, estimates)}
    assert [out[m].tied for m in "abc"] == [False, True, False]
    # P(a beats b): a Gaussian difference with the jackknife variance of the paired deviations.
    dev = np.array(estimates["a"].leave_out) - np.array(estimates["b"].leave_out)
    sd = math.sqrt(9 / 10 * ((dev - dev.mean()) ** 2).sum())
    assert out["a"].p_best == pytest.approx(stats.norm.cdf(0.1 / sd), abs=0.01)
    assert out["c"].p_best == 0.0 and out["skipped"].p_best is None
    # Without an estimate for one scored row there is no P(best) (it would be over a subset).
    partial = with_confidence(rows, {"a": estimates["a"], "c": estimates["c"]})
    assert all(row.p_best is None for row in partial) and partial[2].tied is False
    # A leader at the no-signal floor: every other row at the floor is tied with it.
    floor = [RankingRow(model=m, status="ok", score=-0.7) for m in "xyz"]
    tied = with_confidence(floor, {}, no_signal={"x", "y"})
    assert [row.tied for row in tied] == [False, True, False]


def test_cli_prints_the_confidence_line(models, tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("review", "label"), *REVIEWS])
    code = main(
        [
            "rank",
            "--dataset",
            str(path),
            "--models",
            *models.values(),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--quiet",
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 0
    ranking = Ranking.from_json(tmp_path / "r.json")
    out = capsys.readouterr().out
    if ranking.confident:
        assert "not confident" not in out
        return
    first, second = ranking.scored[:2]
    width = (first.interval[1] - first.interval[0] + second.interval[1] - second.interval[0]) / 2
    rows = math.ceil(first.num_samples * (width / (first.score - second.score)) ** 2)
    assert (
        f"not confident: the top two are within their 90% intervals; about {rows:,} rows would "
        f"likely separate them" in out
    )
