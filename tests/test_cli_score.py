"""`hf-logme score` on saved features in every supported format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_iris

import hf_logme
from hf_logme.cli import main
from hf_logme.estimators.logme import RANKING_PRIOR

RANKING = {"intercept": True, "prior": RANKING_PRIOR}  # the default, as in hf-logme rank
LABEL = "  (LogME (with intercept, small-sample prior 2))"


@pytest.fixture
def iris(tmp_path):
    features, labels = load_iris(return_X_y=True)
    return features.astype(np.float32), labels


@pytest.mark.parametrize("fmt", ["npy", "npz", "pt", "safetensors"])
def test_score_reads_every_format(tmp_path, iris, fmt, capsys):
    features, labels = iris
    path = tmp_path / f"features.{fmt}"
    if fmt == "npy":
        np.save(path, features)
    elif fmt == "npz":
        np.savez(path, features=features)
    elif fmt == "pt":
        torch.save(torch.from_numpy(features), path)
    else:
        save_file({"features": torch.from_numpy(features)}, str(path))
    label_path = tmp_path / "labels.txt"
    label_path.write_text("\n".join(["setosa", "versicolor", "virginica"][i] for i in labels))
    assert main(["score", str(path), str(label_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == f"logme: {hf_logme.logme(features, labels, **RANKING):.6f}{LABEL}"


def test_score_regression_and_the_logme_variants(tmp_path, capsys):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 4)) + 3.0
    targets = features @ rng.normal(size=4) + rng.normal(size=50)
    np.save(tmp_path / "f.npy", features)
    np.save(tmp_path / "y.npy", targets)
    args = ["score", str(tmp_path / "f.npy"), str(tmp_path / "y.npy"), "--regression"]
    variants = [
        ([], RANKING, LABEL),
        (["--paper"], {"intercept": False, "prior": None}, "  (LogME (no intercept))"),
        (["--prior", "none"], {"intercept": True, "prior": None}, "  (LogME (with intercept))"),
        (
            ["--no-intercept", "--prior", "0.5"],
            {"intercept": False, "prior": 0.5},
            "  (LogME (no intercept, small-sample prior 0.5))",
        ),
    ]
    values = set()
    for flags, options, label in variants:
        assert main([*args, *flags]) == 0
        expected = hf_logme.logme(features, targets, regression=True, **options)
        assert capsys.readouterr().out.strip() == f"logme: {expected:.6f}{label}"
        values.add(round(expected, 6))
    assert len(values) == len(variants)  # each variant is its own number
    assert main([*args, "--paper", "--prior", "2"]) == 2
    assert "--paper is --no-intercept --prior none" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse rejects it
        main([*args, "--prior", "-1"])
    assert exited.value.code == 2
    assert "expected a positive number or 'none'" in capsys.readouterr().err


def test_score_errors_exit_2_with_the_reason(tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.zeros((4, 2, 3)))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    assert main(["score", str(tmp_path / "f.npy"), str(tmp_path / "y.npy")]) == 2
    assert "must be 2-D" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.npy"), str(tmp_path / "y.npy")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(["score", str(tmp_path / "y.npy"), str(tmp_path / "y.npy"), "--method", "nope"]) == 2
    )
    assert "Unknown method 'nope'" in capsys.readouterr().err


def test_score_several_methods_with_a_row_cap(tmp_path, capsys, monkeypatch):
    from hf_logme.estimators import ESTIMATORS, Estimator

    class RowsHeld(Estimator):
        name, consumes = "rows_held_for_tests", "rows"

        def __init__(self, *, regression=False, max_rows=10_000, seed=0):
            super().__init__(regression=regression)
            self.max_rows, self.seed = max_rows, seed

        def gather_options(self):
            return {"max_rows": self.max_rows, "seed": self.seed}

        def compute(self):
            return float(self.statistics.num_rows)

    monkeypatch.setitem(ESTIMATORS, RowsHeld.name, RowsHeld)
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(60, 3)), rng.integers(0, 3, size=60)
    np.save(tmp_path / "f.npy", features)
    np.save(tmp_path / "y.npy", labels)
    args = ["score", str(tmp_path / "f.npy"), str(tmp_path / "y.npy")]
    assert (
        main([*args, "--method", f"logme,{RowsHeld.name}", "--max-rows", "20", "--intercept"]) == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        f"logme: {hf_logme.logme(features, labels, **RANKING):.6f}{LABEL}",
        f"{RowsHeld.name}: 20.000000",
    ]
    assert main([*args, "--method", RowsHeld.name]) == 0
    assert capsys.readouterr().out.strip() == f"{RowsHeld.name}: 60.000000"
    assert main([*args, "--method", "logme", "--method", "logme"]) == 2
    assert "--method names ['logme'] more than once" in capsys.readouterr().err
    assert main([*args, "--method", RowsHeld.name, "--intercept"]) == 2
    assert "--intercept is an option of --method logme" in capsys.readouterr().err
