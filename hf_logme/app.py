"""The ranking app (a Gradio Blocks): dataset + candidates in, ranking table, plot and JSON out.

``hf-logme app`` starts it locally; ``space/app.py`` serves it as a Hub Space. The work is in
plain functions (:func:`rank_for_app`, :func:`find_models`) that the UI only wires, so they are
testable without a browser. Gradio is an optional dependency: ``pip install 'hf-logme[app]'``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .results import Ranking

TITLE = "Rank checkpoints for your dataset with LogME"
INTRO = """\
Pick a dataset and a few candidate checkpoints: each candidate's features on the dataset are
extracted and scored with LogME, which predicts how well the checkpoint will fine-tune on it,
**before** any fine-tuning. The best-scoring candidate is the one to fine-tune first.
"""
DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


def _gradio() -> Any:
    try:
        import gradio
    except ImportError as err:
        raise ImportError(
            "The ranking app needs gradio: pip install 'hf-logme[app]' (or pip install gradio).",
            name="gradio",
        ) from err
    return gradio


def parse_models(text: str, *, max_candidates: int, allow_local_paths: bool) -> list[str]:
    """Model ids from a text box: one a line (commas and spaces also separate), no repeats.

    >>> parse_models("a/b, c/d\\n a/b", max_candidates=5, allow_local_paths=False)
    ['a/b', 'c/d']
    """
    models = list(dict.fromkeys(text.replace(",", " ").split()))
    if not models:
        raise ValueError("Candidates is empty: enter model ids, one a line, or search the Hub.")
    if len(models) > max_candidates:
        raise ValueError(
            f"{len(models)} candidates given; this app ranks at most {max_candidates} at a time."
        )
    if not allow_local_paths:
        local = [m for m in models if m.startswith(("/", ".", "~")) or Path(m).exists()]
        if local:
            raise ValueError(f"Candidates must be Hub ids here; got local paths {local}.")
    return models


def load_data(dataset_id: str, upload: str | None, config: str, split: str) -> Any:
    """The dataset split to rank on: an uploaded file, else a Hub id (or a local path)."""
    from .data import load_dataset_source

    source = upload or (dataset_id or "").strip()
    if not source:
        raise ValueError("Dataset is empty: enter a Hub dataset id or upload a CSV file.")
    if upload and Path(upload).suffix.lower() not in DATA_SUFFIXES:
        raise ValueError(
            f"Cannot read the uploaded {Path(upload).name!r}: "
            f"upload one of {', '.join(DATA_SUFFIXES)}."
        )
    return load_dataset_source(source, config=config or None, split=split or None)


def rank_for_app(
    dataset_id: str,
    upload: str | None,
    config: str,
    split: str,
    text_column: str,
    label_column: str,
    models_text: str,
    max_samples: float | None,
    layers: str,
    intercept: bool,
    *,
    max_candidates: int = 10,
    allow_local_paths: bool = True,
    output_dir: str | os.PathLike | None = None,
) -> tuple[Ranking, Path]:
    """Rank the candidates on the dataset; returns the ranking and its JSON file."""
    from .ranking import rank_models

    models = parse_models(
        models_text, max_candidates=max_candidates, allow_local_paths=allow_local_paths
    )
    data = load_data(dataset_id, upload, config, split)
    ranking = rank_models(
        models,
        data,
        methods={"logme": {"intercept": bool(intercept)}},
        layers=layers,
        split=None,  # load_data applied it (and a source with one split needs none)
        text_column=text_column or None,
        label_column=label_column or None,
        max_samples=int(max_samples) if max_samples else None,
        progress=True,
    )
    folder = Path(output_dir or tempfile.mkdtemp(prefix="hf-logme-app-"))
    return ranking, ranking.save(folder / "ranking.json")


def find_models(query: str, modality: str, limit: float) -> str:
    """Hub checkpoints matching ``query`` for ``modality``, most downloaded first, one a line."""
    from .hub import search_candidates

    found = search_candidates(search=query or None, modality=modality or None, limit=int(limit))
    return "\n".join(candidate.id for candidate in found)


def build_app(*, max_candidates: int = 10, allow_local_paths: bool = True, max_rows: int = 5000):
    """The Gradio Blocks of the ranking app (call ``.launch()`` on it).

    Args:
        max_candidates: most candidates one run may rank.
        allow_local_paths: accept local model folders and dataset paths (False on a public
            Space, where only Hub ids and uploads make sense).
        max_rows: the largest ``max samples`` a user may pick (bounds a run's time).
    """
    gr = _gradio()

    def rank(
        dataset_id: str,
        upload: str | None,
        config: str,
        split: str,
        text_column: str,
        label_column: str,
        models: str,
        max_samples: float,
        layers: str,
        intercept: bool,
        progress: Any = gr.Progress(track_tqdm=True),  # noqa: B008 - how gradio passes progress
    ):
        progress(0, desc="Loading the dataset")
        if not allow_local_paths and dataset_id and Path(dataset_id).exists():
            raise gr.Error("Dataset must be a Hub id or an upload here, not a local path.")
        try:
            ranking, json_path = rank_for_app(
                dataset_id,
                upload,
                config,
                split,
                text_column,
                label_column,
                models,
                max_samples,
                layers,
                intercept,
                max_candidates=max_candidates,
                allow_local_paths=allow_local_paths,
            )
        except (ValueError, TypeError, OSError, ImportError) as err:
            raise gr.Error(str(err)) from err
        return _outputs(ranking, json_path)

    def search(query: str, modality: str, limit: float) -> str:
        try:
            return find_models(query, modality, limit)
        except (ValueError, OSError) as err:
            raise gr.Error(str(err)) from err

    with gr.Blocks(title="hf-logme: rank checkpoints") as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### Dataset")
                dataset_id = gr.Textbox(label="Hub dataset id", placeholder="e.g. stanfordnlp/imdb")
                upload = gr.File(
                    label="... or upload a file", file_types=list(DATA_SUFFIXES), type="filepath"
                )
                with gr.Row():
                    config = gr.Textbox(label="Configuration", placeholder="(the only one)")
                    split = gr.Textbox(label="Split", value="train")
                with gr.Row():
                    text_column = gr.Textbox(label="Text column", placeholder="(detected)")
                    label_column = gr.Textbox(label="Label column", placeholder="(detected)")
            with gr.Column():
                gr.Markdown("### Candidates")
                models = gr.Textbox(
                    label="Model ids, one a line",
                    lines=5,
                    placeholder="sentence-transformers/all-MiniLM-L6-v2\nBAAI/bge-small-en-v1.5",
                )
                with gr.Accordion("Search the Hub", open=False):
                    with gr.Row():
                        query = gr.Textbox(label="Search", placeholder="e.g. bert")
                        modality = gr.Dropdown(
                            ["text", "image", "audio"], value="text", label="Input"
                        )
                        limit = gr.Slider(
                            1,
                            max_candidates,
                            value=min(5, max_candidates),
                            step=1,
                            label="How many",
                        )
                    search_button = gr.Button("Search")
                gr.Markdown("### Options")
                with gr.Row():
                    max_samples = gr.Slider(
                        16,
                        max_rows,
                        value=min(1000, max_rows),
                        step=1,
                        label="Max samples (a stratified subsample)",
                    )
                    layers = gr.Radio(["last", "best", "mean"], value="last", label="Layers")
                    intercept = gr.Checkbox(value=True, label="LogME with intercept")
        rank_button = gr.Button("Rank", variant="primary")
        summary = gr.Markdown()
        table = gr.Dataframe(
            headers=["rank", "model", "score", "status"],
            label="Ranking",
            interactive=False,
            wrap=True,
        )
        with gr.Row():
            plot = gr.Plot(label="Scores")
            layer_plot = gr.Plot(label="Scores by layer (layers: best)")
        json_file = gr.File(label="ranking.json", height=80)
        inputs = [
            dataset_id,
            upload,
            config,
            split,
            text_column,
            label_column,
            models,
            max_samples,
            layers,
            intercept,
        ]
        rank_button.click(
            rank, inputs, [summary, table, plot, layer_plot, json_file], api_name="rank"
        )
        search_button.click(search, [query, modality, limit], models, api_name="search")
    return demo


def _outputs(ranking: Ranking, json_path: Path) -> tuple[Any, ...]:
    import pandas as pd

    header, body = ranking.table()
    summary = f"**{ranking.caption()}**"
    if ranking.best is not None:
        summary += f"\n\nBest: `{ranking.best}`."
    if ranking.confident is not None:
        summary += " Separated from the others." if ranking.confident else " Tied with others."
    figure = ranking.plot() if any(row.finite for row in ranking.rows) else None
    layer_figure = ranking.plot_layers() if any(r.layer_scores for r in ranking.scored) else None
    return summary, pd.DataFrame(body, columns=header), figure, layer_figure, str(json_path)
