"""The examples run end to end, offline, on tiny slices of their data."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_select_then_finetune_with_trainer(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    example = importlib.import_module("trainer_select_then_finetune")
    out = example.main(
        [
            "--train-samples",
            "24",
            "--eval-samples",
            "24",
            "--epochs",
            "1",
            "--max-length",
            "32",
            "--output-dir",
            str(tmp_path),
        ]
    )
    printed = capsys.readouterr().out
    ranking = out["ranking"]
    assert sorted(Path(row.model).name for row in ranking.scored) == [
        "all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2-random-init",
    ]
    assert out["best"] == ranking.best and f"Selected: {out['best']}" in printed
    ((checkpoint, result),) = out["results"].items()
    assert checkpoint == out["best"]
    assert all(math.isfinite(value) for value in result.values())
    assert 0 <= result["accuracy_before"] <= 1 and 0 <= result["accuracy_after"] <= 1
    assert result["logme_after"] != result["logme_before"]  # fine-tuning moved the features
    assert "'eval_logme'" in printed  # in the Trainer's own log lines too
    assert f"{result['logme_after']:.4f}" in printed.splitlines()[-2]
