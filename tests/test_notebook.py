"""examples/rank_in_a_notebook.ipynb runs offline in a real kernel (nbclient) as it says."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "rank_in_a_notebook.ipynb"
INTERCEPT = "LogME (with intercept, small-sample prior 2)"


def _outputs(cell) -> dict[str, str]:
    """A cell's outputs by MIME type (stdout as ``stream``)."""
    found: dict[str, str] = {}
    for output in cell.outputs:
        if output.output_type == "stream":
            found["stream"] = found.get("stream", "") + output.text
        elif output.output_type in ("execute_result", "display_data"):
            found.update(output.data)
    return found


def test_notebook_runs_offline(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source = f"MAX_SAMPLES = 100\nMAX_LENGTH = 32\nOUTPUT = {str(tmp_path)!r}"
    # The kernel is a fresh process: it must import this checkout of hf_logme.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    table, plot, layers, summary = (_outputs(code[i]) for i in (2, 3, 4, 5))

    html = table["text/html"]
    assert f"<caption>{INTERCEPT} on " in html and "(100 rows, classification)" in html
    first_row = html.split("<tbody>")[1].split("</tr>")[0]
    # the pretrained model above its random-weight copy
    assert f"<td>1</td><td>{tmp_path / 'all-MiniLM-L6-v2'}</td>" in first_row
    for figure in (plot, layers):
        # the returned Figure, shown as an image with no %matplotlib and no pyplot import
        assert base64.b64decode(figure["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"

    assert summary["stream"].startswith(f"**Checkpoint ranking**: {INTERCEPT} on ")
    ranking = json.loads((tmp_path / "ranking.json").read_text())
    names = [Path(row["model"]).name for row in ranking["rows"]]
    assert names == ["all-MiniLM-L6-v2", "all-MiniLM-L6-v2-random-init"]
    assert ranking["rows"][0]["score"] > ranking["rows"][1]["score"]
    assert all(len(row["layer_scores"]) == 7 for row in ranking["rows"])  # embeddings + 6 layers
    assert summary["stream"].strip().endswith(f"best: {tmp_path / 'all-MiniLM-L6-v2'}")
