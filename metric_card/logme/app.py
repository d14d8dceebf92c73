"""The Space's widget: LogME of pasted feature vectors and labels (the card is README.md)."""

import json
from pathlib import Path

import evaluate
import gradio as gr

HERE = Path(__file__).parent
CARD = (HERE / "README.md").read_text(encoding="utf-8").split("---", 2)[2]


def score(config, predictions, references, paper):
    metric = evaluate.load(str(HERE / "logme.py"), config)
    # Default: LogME with intercept, small-sample prior 2 (as hf-logme rank); or the papers'.
    options = {"intercept": False, "prior": None} if paper else {}
    return metric.compute(
        predictions=json.loads(predictions), references=json.loads(references), **options
    )


gr.Interface(
    fn=score,
    inputs=[
        gr.Radio(["default", "regression", "multilabel"], value="default", label="config"),
        gr.Textbox(
            label="predictions: JSON list of feature vectors",
            value="[[1.0, 0.1], [0.9, 0.0], [0.1, 1.0], [0.0, 1.1]]",
        ),
        gr.Textbox(label="references: JSON list of labels", value='["cat", "cat", "dog", "dog"]'),
        gr.Checkbox(label="the papers' model (no intercept, exact evidence)"),
    ],
    outputs=gr.JSON(label="result"),
    title="LogME",
    article=CARD,
).launch()
