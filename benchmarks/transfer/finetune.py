"""Fine-tuning ground truth: every zoo model on every task, one CSV row per (model, task, seed, lr).

Rows are appended (flushed and fsync'ed) as each run finishes, so a kill loses at most the run in
progress, and a restart skips every (model, task, seed, lr) already in the CSV. The work is ordered
task-major, then seed-major, cheapest model first within a task (all-mpnet-base-v2 after the
MiniLM family), so complete per-task comparisons accumulate first.

Recipe (``RECIPE`` below, recorded in every row): full fine-tuning of encoder and a fresh head,
AdamW (weight decay 0.01), batch 32, linear warm-up over the first 10% of steps then linear decay,
gradient norm clipped at 1; the head's learning rate is 10x the encoder's; the first seed runs a
grid of two encoder learning rates, later seeds only the grid's best on the validation split
(score.py takes the best on validation, per model and task); texts truncated to 32 tokens, 3
epochs over 500 rows (images: 1,000 rows), sized to the CPU budget (README.md here). Text
models are ``AutoModelForSequenceClassification`` (regression: one output, MSE on the
standardised target); image models put a linear head on the mean-pooled last state of
:class:`zoo.ImageEncoder`. Metrics: accuracy, or R^2 for regression.

Usage:
    PYTHONPATH=$PWD python benchmarks/transfer/finetune.py            # the whole ground truth
    PYTHONPATH=$PWD python benchmarks/transfer/finetune.py --models all-MiniLM-L6-v2 \
        --tasks trump_tweets --seeds 0 --lrs 1e-4 --out /tmp/one.csv   # time one run
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
import tasks as task_module
import zoo

HERE = Path(__file__).parent
RECIPE = {
    "name": "v2",
    "epochs": {"text": 3, "image": 3},
    "batch_size": 32,
    "max_length": 32,
    "weight_decay": 0.01,
    "warmup": 0.1,
    "head_lr_factor": 10.0,
    "clip": 1.0,
    "lrs": {"text": [1e-4, 3e-4], "image": [1e-4, 1e-3]},
}
TASK_ORDER = ["trump_tweets", "digits", "birds", "drugreview", "tate_text", "food_reviews"]
FIELDS = [
    "model",
    "kind",
    "modality",
    "task",
    "seed",
    "lr",
    "head_lr",
    "recipe",
    "epochs",
    "batch_size",
    "max_length",
    "train_rows",
    "val_rows",
    "test_rows",
    "metric",
    "val_metric",
    "test_metric",
    "train_loss_first_epoch",
    "train_loss_end",
    "wall_s",
    "torch",
    "transformers",
    "threads",
    "finished_utc",
]


class ImageClassifier(torch.nn.Module):
    """A zoo image encoder with a linear head on its mean-pooled last state."""

    def __init__(self, encoder: zoo.ImageEncoder, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        width = encoder.net._conv_head.out_channels
        self.head = torch.nn.Linear(width, num_labels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(pixels).last_hidden_state.mean(1))


def _text_model(name: str, task: task_module.Task, zoo_dir: Path):
    """The model, its tokenizer and the names of its freshly initialised (head) parameters."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = zoo.model_path(name, zoo_dir)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=task.num_labels,
        output_loading_info=True,
        problem_type="regression" if task.regression else "single_label_classification",
    )
    new = set(info["missing_keys"])
    return model, AutoTokenizer.from_pretrained(path), new


def _batches(task, split, tokenizer, order):
    """(inputs, labels) batches of ``split`` in ``order``: tokenised texts or image tensors."""
    bs = RECIPE["batch_size"]
    for start in range(0, len(order), bs):
        rows = split.select(order[start : start + bs])
        if task.modality == "text":
            inputs = tokenizer(
                list(rows["text"]),
                truncation=True,
                max_length=RECIPE["max_length"],
                padding=True,
                return_tensors="pt",
            )
        else:
            inputs = zoo.ImageEncoder.preprocess(list(rows["image"]))
        yield inputs, torch.tensor(list(rows["label"]))


def _forward(model, task, inputs):
    if task.modality == "text":
        return model(**inputs).logits
    return model(inputs)


def _predict(model, task, split, tokenizer) -> np.ndarray:
    model.eval()
    outs = []
    with torch.no_grad():
        for inputs, _ in _batches(task, split, tokenizer, np.arange(len(split))):
            outs.append(_forward(model, task, inputs).float())
    return torch.cat(outs).numpy()


def _metric(task, outputs: np.ndarray, split, mean: float, std: float) -> float:
    labels = np.asarray(split["label"], dtype=float)
    if task.regression:
        pred = outputs[:, 0] * std + mean
        return float(1.0 - ((labels - pred) ** 2).sum() / ((labels - labels.mean()) ** 2).sum())
    return float((outputs.argmax(1) == labels).mean())


def run_one(name: str, task: task_module.Task, seed: int, lr: float, zoo_dir: Path) -> dict:
    """Fine-tune ``name`` on ``task`` once; the CSV row."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    if task.modality == "text":
        model, tokenizer, new = _text_model(name, task, zoo_dir)
    else:
        model = ImageClassifier(zoo.load_image_encoder(name, zoo_dir), task.num_labels)
        tokenizer, new = None, {n for n, _ in model.named_parameters() if n.startswith("head.")}
    head_lr = lr * RECIPE["head_lr_factor"]
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n not in new], "lr": lr},
        {"params": [p for n, p in named if n in new], "lr": head_lr},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=RECIPE["weight_decay"])
    steps_per_epoch = math.ceil(len(task.train) / RECIPE["batch_size"])
    epochs = RECIPE["epochs"][task.modality]
    total = steps_per_epoch * epochs
    warmup = max(1, int(RECIPE["warmup"] * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    labels = np.asarray(task.train["label"], dtype=float)
    mean, std = (labels.mean(), labels.std()) if task.regression else (0.0, 1.0)
    gen = np.random.default_rng(seed)
    epoch_losses = []
    for _ in range(epochs):
        model.train()
        losses = []
        for inputs, target in _batches(
            task, task.train, tokenizer, gen.permutation(len(task.train))
        ):
            out = _forward(model, task, inputs)
            if task.regression:
                loss = torch.nn.functional.mse_loss(out[:, 0], (target.float() - mean) / std)
            else:
                loss = torch.nn.functional.cross_entropy(out, target)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), RECIPE["clip"])
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
    if task.modality == "image":
        _recalibrate_batch_norm(model, task, gen)
    val = _metric(task, _predict(model, task, task.val, tokenizer), task.val, mean, std)
    test = _metric(task, _predict(model, task, task.test, tokenizer), task.test, mean, std)
    return {
        "model": name,
        "kind": zoo.MODELS[name].kind,
        "modality": task.modality,
        "task": task.name,
        "seed": seed,
        "lr": lr,
        "head_lr": head_lr,
        "recipe": recipe_name(task.modality),
        "epochs": epochs,
        "batch_size": RECIPE["batch_size"],
        "max_length": RECIPE["max_length"] if task.modality == "text" else "",
        "train_rows": len(task.train),
        "val_rows": len(task.val),
        "test_rows": len(task.test),
        "metric": task.metric,
        "val_metric": round(val, 6),
        "test_metric": round(test, 6),
        "train_loss_first_epoch": round(epoch_losses[0], 6),
        "train_loss_end": round(epoch_losses[-1], 6),
        "wall_s": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def recipe_name(modality: str) -> str:
    """The recipe a row was made with: images add BatchNorm recalibration to ``RECIPE``."""
    return RECIPE["name"] + ("+bn-recalibrated" if modality == "image" else "")


def _recalibrate_batch_norm(model: torch.nn.Module, task: task_module.Task, gen) -> None:
    """Recompute every BatchNorm layer's running statistics over the training rows.

    EfficientNet's BatchNorm momentum is 0.01: after 96 steps the running statistics are still
    mostly the pre-trained (or, for random and noised variants, meaningless) ones, and evaluation
    in eval mode then scored chance on digits (train loss 0.12, test accuracy 0.10) for every
    variant. One pass in train mode without gradients, with a cumulative average (momentum None),
    gives the statistics of the fine-tuned weights; the weights do not change.
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    model.train()
    with torch.no_grad():
        for inputs, _ in _batches(task, task.train, None, gen.permutation(len(task.train))):
            _forward(model, task, inputs)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            r
            for r in csv.DictReader(handle)
            if r.get("finished_utc") and r["recipe"] == recipe_name(r["modality"])
        ]


def _lrs(rows: list[dict], name: str, task: task_module.Task, seed: int, first: int) -> list:
    """The grid on the first seed; on later seeds the grid's best learning rate on validation."""
    grid = RECIPE["lrs"][task.modality]
    if seed == first:
        return grid
    val = {
        float(r["lr"]): float(r["val_metric"])
        for r in rows
        if (r["model"], r["task"], int(r["seed"])) == (name, task.name, first)
    }
    if set(val) != set(grid):
        return grid  # the first seed's grid is incomplete (e.g. run with --seeds 1 only)
    return [max(grid, key=lambda lr: (val[lr], -lr))]


def _append(path: Path, row: dict) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
        handle.flush()
        os.fsync(handle.fileno())


def schedule(task_names, model_names, seeds):
    """(task, seed, model) in the benchmark's order: task-major, seed-major, cheapest first."""
    for task_name in task_names:
        modality = "image" if task_name == "digits" else "text"
        models = sorted(
            (m for m in model_names if zoo.MODELS[m].modality == modality),
            key=lambda m: zoo.MODELS[m].cost,
        )
        for seed in seeds:
            for name in models:
                yield task_name, seed, name


def main() -> None:
    parser = argparse.ArgumentParser(description="Fine-tuning ground truth for the zoo.")
    parser.add_argument("--zoo", type=Path, default=zoo.default_zoo_dir())
    parser.add_argument("--out", type=Path, default=HERE / "ground_truth.csv")
    parser.add_argument("--tasks", nargs="+", default=TASK_ORDER, choices=TASK_ORDER)
    parser.add_argument("--models", nargs="+", default=list(zoo.MODELS), choices=list(zoo.MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument(
        "--lrs",
        nargs="+",
        type=float,
        default=None,
        help="encoder learning rates (default: the recipe's grid per modality)",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    rows = _rows(args.out)
    done = {(r["model"], r["task"], int(r["seed"]), float(r["lr"])) for r in rows}
    loaded: dict[str, task_module.Task] = {}
    for task_name, seed, name in schedule(args.tasks, args.models, args.seeds):
        task = loaded.get(task_name) or loaded.setdefault(
            task_name, task_module.load_task(task_name)
        )
        for lr in args.lrs or _lrs(rows, name, task, seed, args.seeds[0]):
            if (name, task_name, seed, lr) in done:
                continue
            row = run_one(name, task, seed, lr, args.zoo)
            _append(args.out, row)
            rows.append({k: str(v) for k, v in row.items()})
            print(
                f"{row['finished_utc']} {task_name} seed={seed} {name} lr={lr:g}: "
                f"val={row['val_metric']:.4f} test={row['test_metric']:.4f} "
                f"loss {row['train_loss_first_epoch']:.3f}->{row['train_loss_end']:.3f} "
                f"{row['wall_s']:.0f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
