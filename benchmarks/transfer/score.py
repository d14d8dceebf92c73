"""Score the zoo with every estimator configuration and measure its agreement with fine-tuning.

For every task and zoo model, features of the training rows (the rows fine-tuning trains on) are
extracted once per pooling with ``layers="all"`` and cached outside git (``--cache``, default
``$TRANSFER_CACHE`` or ``/work/transfer-cache``), and so is every score computed from them
(``<pooling>.scores.json``: a rerun computes only new models and configurations). Each
configuration then scores them:

- every registered estimator (``hf_logme.ESTIMATORS``: new ones appear here when merged), x layer
  mode ``last`` / ``best`` (each model's best hidden state) / ``mean`` (the average of all hidden
  states, as ``rank_models(layers="mean")``) x pooling ``mean`` / ``cls`` / ``pooler`` (the BERT
  head's dense + tanh over the first token: last layer only) and ``auto`` (each model with the
  pooling ``rank_models(pooling="auto")`` resolves to for it, from those three) (images:
  ``auto`` only, the stage outputs' spatial mean, listed under every pooling's name so that a
  configuration's mean covers every task: its pooling is its text models') x, for LogME,
  ``intercept`` on / off;
- baselines: parameter count, and a linear probe (5-fold cross-validated accuracy of a logistic
  regression, R^2 of a ridge regression, on standardised last-layer features, mean-pooled for
  text).

Ground truth per model and task: the mean over seeds of the test metric at the learning rate
chosen on the first seed's validation split (finetune.py's rule). Differences inside the
task's seed-to-seed spread (the median over models of |seed 0 - seed 1|) are ties. Writes
``agreement.csv`` (one row per configuration and task, plus ``mean``) and prints a markdown table.
``--rows-study`` also writes ``rows_stability.csv``: Kendall tau between the ranking from n rows
and from all rows.

    PYTHONPATH=$PWD python benchmarks/transfer/score.py            # minutes once features exist
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import finetune
import tasks as task_module
import zoo

import hf_logme
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.evaluation import rank_agreement

HERE = Path(__file__).parent
#: Text poolings are extracted by name, so that a run does not depend on what ``pooling="auto"``
#: resolves to today; the ``auto`` rows are then each model's own resolution (``_add_auto``).
POOLINGS = {"text": ("mean", "cls", "pooler"), "image": ("auto",)}
LAYER_MODES = ("last", "best", "mean")
#: The pooler (dense + tanh over the first token) exists after the last layer only.
LAST_LAYER_ONLY = {"pooler"}
STUDY_ROWS = (128, 256, 384)


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRANSFER_CACHE", "/work/transfer-cache"))


# ------------------------------------------------------------------------------- ground truth
def ground_truth(path: Path) -> tuple[dict, dict, dict]:
    """(task -> model -> truth, task -> tie tolerance, task -> model -> number of seeds)."""
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("recipe") == finetune.recipe_name(row["modality"]):
                runs[row["task"], row["model"]].append(row)
    truth: dict[str, dict[str, float]] = defaultdict(dict)
    seeds: dict[str, dict[str, int]] = defaultdict(dict)
    spreads: dict[str, list[float]] = defaultdict(list)
    for (task, model), rows in runs.items():
        modality = rows[0]["modality"]
        first = min(int(r["seed"]) for r in rows)
        grid = finetune.RECIPE["lrs"][modality]
        val = {float(r["lr"]): float(r["val_metric"]) for r in rows if int(r["seed"]) == first}
        if set(val) != set(grid):
            continue  # the first seed's grid is not complete yet
        lr = max(grid, key=lambda v: (val[v], -v))
        tests = [float(r["test_metric"]) for r in rows if float(r["lr"]) == lr]
        truth[task][model] = float(np.mean(tests))
        seeds[task][model] = len(tests)
        if len(tests) > 1:
            spreads[task].append(max(tests) - min(tests))
    tolerance = {t: statistics.median(s) if s else 0.0 for t, s in spreads.items()}
    return dict(truth), tolerance, dict(seeds)


# ---------------------------------------------------------------------------------- features
def features(model: str, task: task_module.Task, pooling: str, cache: Path, zoo_dir: Path) -> dict:
    """{"layers": {index: (n, D) tensor}, "labels", "pooling", "extract_s"}, cached on disk."""
    path = cache / task.name / model / f"{pooling}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    options = {
        "label_column": "label",
        "pooling": pooling,
        "batch_size": 32,
        "device": "cpu",
        "task": "regression" if task.regression else "classification",
        "progress": False,
    }
    if task.modality == "text":
        last_only = pooling in LAST_LAYER_ONLY
        out = hf_logme.extract_features(
            str(zoo.model_path(model, zoo_dir)),
            task.train,
            text_column="text",
            layers="last" if last_only else "all",
            max_length=finetune.RECIPE["max_length"],
            **options,
        )
        layers = {0: out.features} if last_only else out.features
        seconds = out.timings["load_s"] + out.timings["extract_s"]
    else:  # custom modules give one state per pass (see zoo.ImageEncoder)
        layers, seconds = {}, 0.0
        for index in range(zoo.load_image_encoder(model, zoo_dir).num_states):
            encoder = zoo.load_image_encoder(model, zoo_dir, output_layer=index)
            out = hf_logme.extract_features(encoder, task.train, image_column="image", **options)
            layers[index] = out.features
            seconds += out.timings["load_s"] + out.timings["extract_s"]
    entry = {"layers": layers, "labels": out.labels, "pooling": out.pooling, "extract_s": seconds}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(entry, path)
    return entry


def _layer_features(entry: dict, mode: str) -> dict[Any, torch.Tensor] | None:
    layers = entry["layers"]
    if mode == "last":
        return {"last": layers[max(layers)]}
    if mode == "best":
        return layers
    widths = {t.shape[1] for t in layers.values()}
    if len(widths) > 1:
        return None  # CNN stages differ in width: no mean (as rank_models would fail)
    return {"mean": torch.stack(list(layers.values())).float().mean(0)}


# ------------------------------------------------------------------------------ configurations
#: Methods whose regression form needs several target columns (PARC correlates the rows of the
#: targets' distance matrix); the benchmark's regression task has one.
SINGLE_TARGET_UNDEFINED = {"parc"}


def configurations(regression: bool) -> list[dict[str, Any]]:
    """Every (method, options) the registry offers for this kind of task."""
    out = []
    for name, cls in sorted(hf_logme.ESTIMATORS.items()):
        if regression and not cls.supports_regression:
            continue
        if cls.consumes in ("metadata", "source_predictions"):
            continue  # size is a baseline below; the zoo's encoders have no source head (LEEP, NCE)
        if regression and name in SINGLE_TARGET_UNDEFINED:
            continue
        extra = (
            [{"intercept": True, "prior": RANKING_PRIOR}, {"intercept": True}, {"intercept": False}]
            if name == "logme"
            else [{}]
        )
        for options in extra:
            out.append(
                {"method": name, "options": options, "sign": 1 if cls.higher_is_better else -1}
            )
    return out


def config_name(method: str, options: dict, layers: str, pooling: str) -> str:
    opts = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    return (
        f"{method}[{opts}] layers={layers} pooling={pooling}"
        if opts
        else f"{method} layers={layers} pooling={pooling}"
    )


def estimator_score(feats: dict, labels: np.ndarray, config: dict, regression: bool) -> float:
    """The configuration's score (higher = better) over the given layers (best layer: max)."""
    options = dict(config["options"], **({"regression": True} if regression else {}))
    values = [hf_logme.score(f, labels, method=config["method"], **options) for f in feats.values()]
    return max(config["sign"] * v for v in values)


def linear_probe(entry: dict, regression: bool) -> float:
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = entry["layers"][max(entry["layers"])].numpy()
    head = (
        RidgeCV(alphas=np.logspace(-2, 4, 13)) if regression else LogisticRegression(max_iter=2000)
    )
    return float(
        cross_val_score(make_pipeline(StandardScaler(), head), x, entry["labels"], cv=5).mean()
    )


# ------------------------------------------------------------------------------------- main
def score_task(task, models, cache, zoo_dir, log) -> tuple[dict, dict, float]:
    """(config name -> model -> score, model -> seconds of extraction, all poolings, as
    recorded when the features were extracted, seconds this call spent loading or extracting)."""
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    seconds: dict[str, float] = defaultdict(float)
    loading = 0.0
    for model in models:
        for pooling in POOLINGS[task.modality]:
            start = time.perf_counter()
            entry = features(model, task, pooling, cache, zoo_dir)
            loading += time.perf_counter() - start
            seconds[model] += entry["extract_s"]
            done_path = cache / task.name / model / f"{pooling}.scores.json"
            done = json.loads(done_path.read_text()) if done_path.exists() else {}
            for mode in ("last",) if pooling in LAST_LAYER_ONLY else LAYER_MODES:
                feats = _layer_features(entry, mode)
                if feats is None:
                    continue
                for config in configurations(task.regression):
                    name = config_name(config["method"], config["options"], mode, pooling)
                    if name not in done:
                        done[name] = estimator_score(
                            feats, entry["labels"], config, task.regression
                        )
                    scores[name][model] = done[name]
            if pooling == POOLINGS[task.modality][0]:  # text: mean, what sentence-transformers use
                if "baseline: linear probe" not in done:
                    done["baseline: linear probe"] = linear_probe(entry, task.regression)
                scores["baseline: linear probe"][model] = done["baseline: linear probe"]
                scores["baseline: parameter count"][model] = float(
                    zoo.num_parameters(model, zoo_dir)
                )
            # Scores are cached beside the features: a rerun scores only new models and configs.
            done_path.write_text(json.dumps(done, indent=0, sort_keys=True))
        log(f"  {task.name} {model}: features in {seconds[model]:.0f}s")
    if task.modality == "image":
        _alias_text_poolings(scores)
    else:
        _add_auto(scores, {m: _auto_pooling(m, zoo_dir) for m in models})
    _add_rank_averages(scores)
    return scores, seconds, loading


@functools.cache
def _auto_pooling(model: str, zoo_dir: Path) -> str:
    """What ``rank_models(pooling="auto")`` (last layer) resolves to for this text model (one
    load per model and run: the answer does not depend on the task)."""
    from hf_logme.features import load_model

    return load_model(str(zoo.model_path(model, zoo_dir)), device="cpu").auto_pooling().name


def _add_auto(scores: dict[str, dict[str, float]], chosen: dict[str, str]) -> None:
    """Add the ``pooling=auto`` rows of a text task: each model scored with the pooling
    ``rank_models(pooling="auto", layers=...)`` gives it (no pooler per hidden layer: with
    ``layers="best"``/``"mean"`` a pooler choice is the first token, as in the package)."""
    for name in [n for n in list(scores) if n.endswith(" pooling=cls")]:
        stem, last = name[: -len("cls")], " layers=last " in name
        per_model = {}
        for model, pooling in chosen.items():
            if pooling == "pooler" and not last:
                pooling = "cls"
            value = scores.get(stem + pooling, {}).get(model)
            if value is None:
                break
            per_model[model] = value
        else:
            scores[stem + "auto"] = per_model


def _alias_text_poolings(scores: dict[str, dict[str, float]]) -> None:
    """Give an image task's scores the text poolings' names too: images have one pooling
    ("auto", the stage outputs' spatial mean), so a configuration's pooling is the pooling of its
    text models, and its mean over tasks covers the image task under every pooling."""
    for name in [n for n in list(scores) if n.endswith(" pooling=auto")]:
        for pooling in POOLINGS["text"]:
            if pooling in LAST_LAYER_ONLY and " layers=last " not in name:
                continue
            scores.setdefault(name[: -len("auto")] + pooling, scores[name])


#: Method combinations scored as the mean of their per-task ranks (same layers and pooling).
RANK_AVERAGES = (
    ("logme[intercept=True,prior=2.0]", "knn"),
    ("logme[intercept=True,prior=2.0]", "linear_probe"),
    ("logme[intercept=True,prior=2.0]", "knn", "linear_probe"),
)


def _ranks(by_model: dict[str, float]) -> dict[str, float]:
    """Average ranks, 1 = lowest score (ties share their mean rank)."""
    from scipy.stats import rankdata

    models = sorted(by_model)
    return dict(zip(models, rankdata([by_model[m] for m in models]), strict=True))


def _add_rank_averages(scores: dict[str, dict[str, float]]) -> None:
    """Add a "rank average" configuration for each of RANK_AVERAGES, per layers x pooling."""
    for combo in RANK_AVERAGES:
        for name in [n for n in list(scores) if n.startswith(combo[0] + " ")]:
            suffix = name[len(combo[0]) :]
            parts = [scores.get(method + suffix) for method in combo]
            if any(p is None for p in parts):
                continue
            ranks = [_ranks(p) for p in parts]
            scores["rank average(" + "+".join(combo) + ")" + suffix] = {
                m: float(np.mean([r[m] for r in ranks])) for m in parts[0]
            }


def rows_study(task, models, cache, zoo_dir, config, mode, pooling, repeats=3) -> list[dict]:
    """Kendall tau between the ranking from n training rows and from all of them."""
    entries = {m: features(m, task, pooling, cache, zoo_dir) for m in models}
    total = len(next(iter(entries.values()))["labels"])

    def ranking(rows):
        return {
            m: estimator_score(
                {k: v[rows] for k, v in _layer_features(e, mode).items()},
                e["labels"][rows],
                config,
                task.regression,
            )
            for m, e in entries.items()
        }

    full = ranking(np.arange(total))
    out = []
    for n in [n for n in STUDY_ROWS if n < total] + [total]:
        taus = []
        for rep in range(repeats if n < total else 1):
            rows = np.sort(np.random.default_rng(rep).choice(total, n, replace=False))
            taus.append(rank_agreement(ranking(rows), full)["kendall_tau"])
        out.append(
            {
                "task": task.name,
                "rows": n,
                "tau_mean": float(np.mean(taus)),
                "tau_min": float(np.min(taus)),
                "repeats": len(taus),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Rank agreement of every estimator configuration.")
    parser.add_argument("--ground-truth", type=Path, default=HERE / "ground_truth.csv")
    parser.add_argument("--out", type=Path, default=HERE / "agreement.csv")
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--zoo", type=Path, default=zoo.default_zoo_dir())
    parser.add_argument("--tasks", nargs="+", default=finetune.TASK_ORDER)
    parser.add_argument(
        "--min-models",
        type=int,
        default=4,
        help="skip a task with fewer fine-tuned models than this",
    )
    parser.add_argument(
        "--rows-study",
        action="store_true",
        help="also write rows_stability.csv (LogME, intercept, last, auto)",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    truth, tolerance, seeds = ground_truth(args.ground_truth)
    table: dict[str, dict[str, dict]] = defaultdict(dict)
    timing = []
    study = []
    for name in args.tasks:
        models = sorted(truth.get(name, {}))
        if len(models) < args.min_models:
            print(f"{name}: {len(models)} models fine-tuned so far, skipped", file=sys.stderr)
            continue
        task = task_module.load_task(name)
        start = time.perf_counter()
        scores, seconds, loading = score_task(
            task, models, args.cache, args.zoo, lambda s: print(s, file=sys.stderr)
        )
        for config, by_model in scores.items():
            table[config][name] = rank_agreement(
                by_model, truth[name], tie_tolerance=tolerance.get(name, 0.0)
            )
        timing.append(
            {
                "task": name,
                "models": len(models),
                "two_seed_models": sum(v > 1 for v in seeds[name].values()),
                "tie_tolerance": tolerance.get(name, 0.0),
                "extract_s_all_poolings": sum(seconds.values()),
                # Scores cached by an earlier run are not recomputed: a rerun's figure is small.
                "score_s_this_run": time.perf_counter() - start - loading,
            }
        )
        if args.rows_study:
            config = {"method": "logme", "options": {"intercept": True}, "sign": 1}
            study += rows_study(task, models, args.cache, args.zoo, config, "last", "auto")
    _write(args.out, table, timing)
    if study:
        with (args.out.parent / "rows_stability.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(study[0]))
            writer.writeheader()
            writer.writerows(study)
    print(markdown(table, timing))


def _write(path: Path, table: dict, timing: list[dict]) -> None:
    fields = [
        "config",
        "task",
        "num_models",
        "weighted_tau",
        "kendall_tau",
        "spearman",
        "pearson",
        "top1_hit",
        "top1_regret",
        "top3_recall",
        "chosen",
        "best",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for config, per_task in sorted(table.items()):
            for task, result in per_task.items():
                row = {k: result[k] for k in fields[2:]}
                row.update(
                    config=config,
                    task=task,
                    chosen=" ".join(result["chosen"]),
                    best=" ".join(result["best"]),
                )
                writer.writerow(
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
                )
            writer.writerow(
                {
                    "config": config,
                    "task": "mean",
                    "num_models": "",
                    **{s: round(_mean(per_task, s), 4) for s in fields[3:10]},
                }
            )
    with (path.parent / "agreement_tasks.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(timing[0]) if timing else ["task"])
        writer.writeheader()
        writer.writerows(timing)


def _mean(per_task: dict, stat: str) -> float:
    values = [r[stat] for r in per_task.values() if not np.isnan(r[stat])]
    return float(np.mean(values)) if values else float("nan")


def markdown(table: dict, timing: list[dict]) -> str:
    """Configurations sorted by how many tasks they score (a method without a regression form
    skips the regression task, and its mean is over fewer tasks), then by mean weighted tau; per
    task weighted tau, then the means."""
    tasks = [t["task"] for t in timing]
    header = ["configuration", *[f"{t} wτ" for t in tasks], "mean wτ", "mean τ", "mean regret"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ordered = sorted(
        table.items(),
        key=lambda kv: (-len(kv[1]), -np.nan_to_num(_mean(kv[1], "weighted_tau"), nan=-9)),
    )
    for config, per_task in ordered:
        cells = [f"{per_task[t]['weighted_tau']:.2f}" if t in per_task else "" for t in tasks]
        cells += [
            f"{_mean(per_task, s):.2f}" for s in ("weighted_tau", "kendall_tau", "top1_regret")
        ]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
