"""Racing (``rank_models(race=True)``): rounds on growing prefixes of a seeded row order, clear
losers dropped with their reason, statistics extended and cached round by round."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import hf_logme
from hf_logme.cli import main
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.features.candidates import as_model_candidate
from hf_logme.racing import race_order, run_race, total_schedule
from hf_logme.ranking import rank_models

ROWS = 400
BLOCK = 100  # schedule over all rows: 100, 200, 400


def _data():
    """Rows whose text spells a 4-vector z; the label is z_0 plus noise, thresholded."""
    import datasets

    rng = np.random.default_rng(0)
    z = rng.standard_normal((ROWS, 4))
    labels = (z[:, 0] + 0.5 * rng.standard_normal(ROWS) > 0).astype(int)
    texts = [f"{i} " + " ".join(f"{v:.6f}" for v in row) for i, row in enumerate(z)]
    return datasets.Dataset.from_dict({"text": texts, "label": labels.tolist()}), z, labels


DATA, Z, LABELS = _data()


class Numbers(torch.nn.Module):
    """Reads the 4-vector from the text and maps it by a fixed matrix: a custom module (its
    ``preprocess`` parses); counts the rows it has been run on."""

    def __init__(self, weight: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("weight", torch.as_tensor(weight, dtype=torch.float32))
        self.rows = 0

    def forward(self, x):
        self.rows += len(x)
        return x @ self.weight

    @staticmethod
    def preprocess(texts):
        return torch.tensor([[float(v) for v in t.split()[1:]] for t in texts])


GOOD = np.eye(4)
# The same span, not a rotation of it: scores within 0.001 of GOOD's, and the paired difference's
# 90% interval straddles zero at 100, 200 and 400 rows (a candidate the data cannot separate).
CLOSE = np.eye(4) + 0.3 * np.eye(4, k=1) * np.array([1.0, 0.0, 0.0, 0.0])[:, None]
BAD = np.eye(4)[:, 1:]  # z_0, the signal, left out


def candidates(**weights):
    return {name: Numbers(w) for name, w in weights.items()}


def race(models, **options):
    options = {"progress": False, "race": True, "race_first_block": BLOCK, **options}
    wrapped = [as_model_candidate(m, name=name) for name, m in models.items()]
    return rank_models(wrapped, DATA, **options)


def reference(weight, rows):
    """LogME as a ranking computes it, on the given rows of the data (independent of racing)."""
    features = Z[rows] @ weight
    return hf_logme.logme(features, LABELS[rows], intercept=True, prior=RANKING_PRIOR)


def test_race_order_prefixes_keep_class_shares_and_depend_on_the_seed():
    classes = np.array([0] * 700 + [1] * 300)
    order = race_order(1000, seed=3, classes=classes)
    assert sorted(order) == list(range(1000))
    for m in (10, 100, 256, 999):
        assert abs((classes[order[:m]] == 1).sum() - 0.3 * m) <= 1
    assert not np.array_equal(order, race_order(1000, seed=4, classes=classes))
    assert np.array_equal(order, race_order(1000, seed=3, classes=classes))
    assert sorted(race_order(5, seed=0)) == list(range(5))


def test_run_race_is_a_pure_loop_over_estimates():
    from hf_logme.confidence import from_leave_out

    dev = np.linspace(-1, 1, 20)

    def estimate(score, spread):
        return from_leave_out(score, score + spread * dev)

    calls = []

    def advance(indices, rows):
        calls.append((indices, rows))
        # candidate 0 leads, 1 is close, 2 is far behind, 3 cannot be scored at 200 rows
        table = {0: estimate(1.0, 0.01), 1: estimate(0.99, -0.01), 2: estimate(0.0, 0.01)}
        answer = {i: table[i] for i in indices if i in table}
        if rows < 200:
            answer.update({3: None} if 3 in indices else {})
        return answer

    result = run_race(advance, 4, total_schedule(1000, None, 100))
    assert calls[0] == ([0, 1, 2, 3], 100)
    assert calls[1] == ([0, 1, 3], 200)  # 2 dropped, 3 (no error bars) kept
    assert result.dropped == {2: (100, result.dropped[2][1])}
    assert result.dropped[2][1].startswith("dropped after 100 rows")
    assert result.failed == [3] and result.survivors == [0, 1]
    assert result.rounds == [100, 200, 400, 800, 1000]
    assert result.rows_seen == [1000, 1000, 100, 100]


def test_a_clearly_bad_candidate_is_dropped_after_the_first_block(tmp_path):
    models = candidates(good=GOOD, close=CLOSE, bad=BAD)
    ranking = race(models, cache_dir=tmp_path)
    rows = {row.model: row for row in ranking.rows}
    assert [row.model for row in ranking.rows][-1] == "bad"  # below the finalists
    bad = rows["bad"]
    assert bad.dropped_after == BLOCK and bad.num_samples == BLOCK
    assert re.search(
        rf"dropped after {BLOCK} rows: 0\.26\d+ below the leader, 90% interval of the paired "
        r"difference \[0\.1\d+, 0\.3\d+\]",
        bad.note,
    )
    assert "dropped after 100 rows" in str(ranking)
    assert models["bad"].rows == BLOCK  # never run on more
    # Its score is LogME on the race order's first block (the same rows as every candidate's).
    order = race_order(ROWS, seed=0, classes=LABELS)
    assert bad.score == pytest.approx(reference(BAD, order[:BLOCK]), rel=1e-6)
    # The close pair is kept to the end, on every row, each row extracted once.
    for name in ("good", "close"):
        assert rows[name].dropped_after is None and rows[name].num_samples == ROWS
        assert models[name].rows == ROWS
        assert rows[name].score == pytest.approx(reference(eval(name.upper()), order), rel=1e-6)
    assert ranking.best in ("good", "close") and rows["close"].tied + rows["good"].tied == 1
    assert ranking.options["race_rounds"] == [100, 200, 400]
    assert ranking.to_dict()["rows"][-1]["dropped_after"] == BLOCK


def test_the_leader_is_never_dropped_and_a_lone_leader_ends_the_race(tmp_path):
    models = candidates(good=GOOD, bad=BAD)
    ranking = race(models, cache=False)
    assert ranking.best == "good"
    good = ranking.rows[0]
    assert good.dropped_after is None and good.note is None
    assert good.num_samples == BLOCK  # alone after round one: nothing left to race
    assert ranking.options["race_rounds"] == [BLOCK]


def test_equal_candidates_race_to_the_full_runs_scores():
    twin = np.eye(4)
    models = candidates(a=GOOD, b=twin)
    raced = race(models, cache=False)
    full = rank_models(
        [as_model_candidate(Numbers(GOOD), name=n) for n in ("a",)],
        DATA,
        progress=False,
        cache=False,
    )
    assert [row.dropped_after for row in raced.rows] == [None, None]
    for row in raced.rows:
        assert row.num_samples == ROWS
        assert row.score == pytest.approx(full.rows[0].score, rel=1e-9)
    assert full.rows[0].score == pytest.approx(reference(GOOD, np.arange(ROWS)), rel=1e-6)


def test_a_later_race_with_more_rows_extends_the_cached_rounds(tmp_path):
    first = candidates(good=GOOD, close=CLOSE, bad=BAD)
    race(first, cache_dir=tmp_path, max_samples=200)
    assert {n: m.rows for n, m in first.items()} == {"good": 200, "close": 200, "bad": 100}
    again = candidates(good=GOOD, close=CLOSE, bad=BAD)  # same weights: same cache keys
    ranking = race(again, cache_dir=tmp_path)
    # Rounds 100 and 200 come from the cache; only rows 200..400 are extracted, once.
    assert {n: m.rows for n, m in again.items()} == {"good": 200, "close": 200, "bad": 0}
    rows = {row.model: row for row in ranking.rows}
    assert rows["bad"].cached and not rows["good"].cached
    order = race_order(ROWS, seed=0, classes=LABELS)
    assert rows["good"].score == pytest.approx(reference(GOOD, order), rel=1e-6)
    third = candidates(good=GOOD, close=CLOSE, bad=BAD)
    race(third, cache_dir=tmp_path)
    assert sum(m.rows for m in third.values()) == 0  # every round cached
    full = candidates(good=GOOD)  # a full run keeps its own entries (other rows, other keys)
    rank_models(
        [as_model_candidate(full["good"], name="good")],
        DATA,
        progress=False,
        cache_dir=tmp_path,
        max_samples=200,
    )
    assert full["good"].rows == 200


def test_race_options_are_checked_before_any_model_loads():
    models = candidates(good=GOOD)
    with pytest.raises(TypeError, match="race"):
        race(models, race="yes")
    with pytest.raises(ValueError, match="race_first_block"):
        race(models, race_first_block=0)
    with pytest.raises(ValueError, match="race=True needs error bars"):
        race(models, methods=("knn",))
    assert models["good"].rows == 0


def test_cli_race_flag(tmp_path, reviews_csv):
    from hub_fixtures import build_text_model

    models = [str(build_text_model(tmp_path / f"m{seed}", seed=seed)) for seed in (1, 2)]
    out = tmp_path / "r.json"
    args = ["-q", "rank", "--models", *models, "--dataset", str(reviews_csv)]
    args += ["--race", "--race-first-block", "10", "--output", str(out)]
    assert main([*args, "--cache-dir", str(tmp_path / "c")]) == 0
    ranking = hf_logme.Ranking.from_json(out)
    assert ranking.options["race"] is True and ranking.options["race_rounds"][0] == 10


@pytest.mark.parametrize("distribute", ["samples"])  # "candidates" passes too (slow on 2 cores)
def test_two_processes_race_like_one(tmp_path, distribute):
    from hub_fixtures import build_text_model, reviews_dataset
    from test_ranking_distributed import run_two_processes

    models = [
        str(build_text_model(tmp_path / f"m{seed}", seed=seed, hidden_size=16 * (1 + seed % 2)))
        for seed in range(3)
    ]
    options = {"race": True, "race_first_block": 10, "distribute": distribute}
    one = rank_models(models, reviews_dataset(), progress=False, cache=False, **options)
    both = run_two_processes(models, **options)
    assert both[0] == both[1]  # every process returns the same ranking
    rows = {row["model"]: row for row in both[0]["rows"]}
    assert both[0]["options"]["race_rounds"] == one.options["race_rounds"]
    for row in one.rows:
        other = rows[row.model]
        assert other["dropped_after"] == row.dropped_after
        assert other["num_samples"] == row.num_samples
        assert other["score"] == pytest.approx(row.score, rel=1e-6)
