"""``hf-logme rank``: rank checkpoints for a dataset."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..racing import FIRST_BLOCK
from .common import EXIT_NO_RESULT, EXIT_NOT_WRITTEN, EXIT_OK, batch_size, positive_int

EPILOG = """\
examples:
  hf-logme rank --dataset imdb --split train --max-samples 2000 \\
      --models distilbert-base-uncased roberta-base --output ranking.json
  hf-logme rank --dataset reviews.csv --text-column review --label-column score \\
      --limit 10 --plot ranking.png            # searches the Hub for text encoders
  hf-logme rank --dataset imdb --split train --models distilbert-base-uncased roberta-base \\
      --method logme,hscore,knn,linear_probe   # several estimators, one forward pass each

On several GPUs or machines, start the same command with accelerate:
  accelerate launch -m hf_logme.cli rank --dataset imdb --split train --models ...

Exit codes: 0 at least one candidate was scored, 1 none could be scored (or the Hub could not be
reached), 2 bad arguments or input."""


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "rank",
        parents=[common],
        help="rank checkpoints for a dataset by LogME",
        description=(
            "Extract each candidate's features on the dataset, score them, and print the ranking "
            "(best first). Candidates that fail are listed as skipped, with the reason."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("dataset")
    data.add_argument(
        "--dataset",
        required=True,
        help=(
            "Hub dataset id, a folder written by save_to_disk, or a .csv/.tsv/.json/.jsonl/"
            ".parquet file"
        ),
    )
    data.add_argument("--config", help="dataset configuration name (Hub datasets with several)")
    data.add_argument(
        "--split", help="split to score, e.g. train or 'train[:5000]' (default: the only split)"
    )
    data.add_argument("--text-column", help="text input column (detected when unambiguous)")
    data.add_argument("--text-pair-column", help="second text column, for sentence-pair tasks")
    data.add_argument("--image-column", help="image input column")
    data.add_argument("--audio-column", help="audio input column")
    data.add_argument("--label-column", help="label or target column (detected when unambiguous)")
    data.add_argument(
        "--task-type",
        default="auto",
        choices=["auto", "classification", "regression", "multilabel", "token-classification"],
        help="what the labels are (default: from the column type)",
    )
    data.add_argument(
        "--max-samples", type=positive_int, help="score a stratified, seeded subsample of this size"
    )
    data.add_argument("--seed", type=int, default=0, help="subsample seed (default: 0)")
    data.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="score rows whose inputs repeat an earlier row's too (default: each distinct "
        "input once)",
    )
    data.add_argument(
        "--race",
        action="store_true",
        help="race the candidates: score all on a first block of rows, drop those whose paired "
        "difference to the leader is clearly below zero (90%% interval), go on with the rest "
        "on twice the rows, up to --max-samples (dropped rows stay, with their score at the "
        "rows they saw)",
    )
    data.add_argument(
        "--race-first-block",
        type=positive_int,
        default=FIRST_BLOCK,
        help=f"rows of the race's first round (default: {FIRST_BLOCK})",
    )

    which = parser.add_argument_group("candidates: --models, or else a Hub search")
    chosen = which.add_mutually_exclusive_group()
    chosen.add_argument(
        "--models",
        nargs="+",
        metavar="ID_OR_PATH",
        help="Hub ids, pinned as org/name@REVISION (a branch, tag or commit) if you like, or "
        "local model folders; with HF_HUB_OFFLINE=1, Hub ids come from the Hugging Face cache",
    )
    chosen.add_argument(
        "--task",
        help="search the Hub for this pipeline tag, e.g. fill-mask (default: the "
        "usual encoder tasks of the dataset's input: text, image or audio)",
    )
    which.add_argument(
        "--limit", type=positive_int, default=10, help="searched candidates (default: 10)"
    )

    scoring = parser.add_argument_group("scoring")
    scoring.add_argument(
        "--method",
        action="append",
        metavar="NAME[,NAME...]",
        help="estimators, comma-separated or repeated, e.g. logme,hscore,knn,linear_probe; "
        "all are scored from one forward pass per candidate and the first orders the "
        "ranking (default: logme; `hf-logme score --help` lists them)",
    )
    scoring.add_argument(
        "--max-rows",
        type=positive_int,
        default=None,
        help="row cap of methods that read feature rows or source predictions (kNN, NLEEP, "
        "PARC, linear probe, LEEP...); memory O(max_rows x dim) per layer (default: "
        "rank_models' max_rows, 10000)",
    )
    scoring.add_argument(
        "--intercept",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="LogME: integrate out a per-target intercept (centred features); "
        "default: on for rankings (see the README)",
    )
    scoring.add_argument(
        "--layers",
        choices=["last", "best", "mean"],
        default="last",
        help="score the last hidden layer, every layer keeping the best, or their mean",
    )
    scoring.add_argument(
        "--pooling",
        default="auto",
        choices=["auto", "cls", "mean", "pooler", "last", "max"],
        help="how token features become one vector (default: what a task head reads)",
    )
    scoring.add_argument(
        "--max-length", type=positive_int, help="truncate texts to this many tokens"
    )

    running = parser.add_argument_group("running")
    running.add_argument(
        "--device", default="auto", help="cuda, cuda:1, mps or cpu (default: best available)"
    )
    running.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="model dtype (default: bfloat16 on GPUs that support it, else float32)",
    )
    running.add_argument(
        "--batch-size",
        type=batch_size,
        default="auto",
        help="samples per forward pass, or auto (halved on out-of-memory)",
    )
    running.add_argument("--token", help="Hub token for private or gated models and datasets")
    running.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow checkpoints whose architecture is code in their repo (runs that code)",
    )
    running.add_argument(
        "--allow-pickle-weights",
        action="store_true",
        help="also load .bin pickle weights when a repo has no safetensors (runs pickle code)",
    )
    running.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the statistics cache"
    )
    running.add_argument("--cache-dir", help="statistics cache folder (default: $HF_HOME/hf_logme)")
    running.add_argument(
        "--delete-after",
        action="store_true",
        help="delete each checkpoint this run downloaded once it is scored",
    )
    running.add_argument(
        "--distribute",
        default="auto",
        choices=["auto", "samples", "candidates"],
        help="under accelerate launch / torchrun: shard every candidate's rows over the "
        "processes (samples) or give each process whole candidates (candidates); "
        "auto: candidates when there are at least as many as processes",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--json",
        action="store_true",
        help="print the ranking as JSON on stdout (the table and messages go to stderr), e.g. "
        "hf-logme rank ... --json | jq '.rows[0]'",
    )
    output.add_argument("--output", help="write the ranking: .json, .csv, .md or .html")
    output.add_argument(
        "--plot", help="write the scores as a figure: .png, .svg or .pdf (needs matplotlib)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import hf_logme
    from hf_logme import distributed
    from hf_logme.data import load_dataset_source

    check_outputs(args.output, args.plot)  # before the dataset and any model load
    dataset = load_dataset_source(
        args.dataset, config=args.config, split=args.split, token=args.token
    )
    methods: dict[str, dict[str, Any]] = {name: {} for name in method_names(args.method)}
    if args.intercept is not None:
        if "logme" not in methods:
            raise ValueError("--intercept/--no-intercept is an option of --method logme.")
        methods["logme"]["intercept"] = args.intercept
    models: list[Any] = args.models or _search(args, dataset)
    if not models:
        print("hf-logme rank: the Hub search found no candidates.", file=sys.stderr)
        return EXIT_NO_RESULT
    ranking = hf_logme.rank_models(
        models,
        dataset,
        methods=methods,
        layers=args.layers,
        split=None,  # load_dataset_source applied --split already
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        image_column=args.image_column,
        audio_column=args.audio_column,
        label_column=args.label_column,
        task=args.task_type,
        pooling=args.pooling,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        max_length=args.max_length,
        max_samples=args.max_samples,
        seed=args.seed,
        token=args.token,
        trust_remote_code=args.trust_remote_code,
        use_safetensors=not args.allow_pickle_weights,
        cache=not args.no_cache,
        cache_dir=args.cache_dir,
        delete_after=args.delete_after,
        distribute=args.distribute,
        **({} if args.max_rows is None else {"max_rows": args.max_rows}),
        keep_duplicates=args.keep_duplicates,
        race=args.race,
        race_first_block=args.race_first_block,
        progress=not args.quiet,
    )
    if distributed.rank_and_world()[0] != 0:  # every process holds the ranking; one reports it
        return EXIT_OK if ranking.scored else EXIT_NO_RESULT
    # With --json, stdout holds the JSON alone (it parses with json.loads); the rest is for people.
    report = sys.stderr if args.json else sys.stdout
    print(ranking, file=report)
    line = confidence_line(ranking)
    if line:
        print(line, file=report)
    not_written = []
    for flag, path, write in (
        ("--output", args.output, ranking.save),
        ("--plot", args.plot if ranking.scored else None, ranking.plot),
    ):
        if not path:
            continue
        try:
            write(path)
        except (OSError, ValueError) as err:  # a full disk, a folder removed meanwhile...
            print(f"hf-logme rank: error: {flag} {path} was not written: {err}", file=sys.stderr)
            not_written.append(path)
        else:
            print(f"wrote {path}", file=report)
    if args.json:
        print(ranking.to_json())
    if not_written:
        print(
            "hf-logme rank: the ranking above is complete; only the file(s) were not written.",
            file=sys.stderr,
        )
        return EXIT_NOT_WRITTEN
    return EXIT_OK if ranking.scored else EXIT_NO_RESULT


RANKING_SUFFIXES = (".json", ".csv", ".md", ".markdown", ".html", ".htm")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_outputs(output: str | None, plot: str | None) -> None:
    """Everything about ``--output`` and ``--plot`` that can fail, checked before any scoring:
    the format, matplotlib for plots, and a folder that exists and can be written."""
    import importlib.util
    import os
    from pathlib import Path

    for flag, path, suffixes in (
        ("--output", output, RANKING_SUFFIXES),
        ("--plot", plot, PLOT_SUFFIXES),
    ):
        if not path:
            continue
        target = Path(path)
        if target.suffix.lower() not in suffixes:
            raise ValueError(f"{flag} {path}: use one of {', '.join(suffixes)}.")
        if target.is_dir():
            raise ValueError(f"{flag} {path} is a folder; give a file name.")
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise ValueError(f"{flag} {path}: the folder {folder} does not exist; create it first.")
        if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
            raise ValueError(f"{flag} {path}: not writable here; choose another place.")
    if plot and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install 'hf-logme[plot]', or drop --plot.")


def confidence_line(ranking: Any) -> str | None:
    """One line when the top two rows' intervals overlap, with about how many rows would
    separate them (both errors shrinking as 1 / sqrt(n)); None when separated or unknown."""
    from hf_logme.confidence import Estimate, rows_to_separate

    scored = ranking.scored
    if ranking.confident is not False or len(scored) < 2 or scored[1].interval is None:
        return None
    level = ranking.interval_level

    def estimate(row: Any) -> Estimate:
        low, high = row.interval  # centred on the interval: it is for the score on all rows
        centre = 0.5 * (low + high)
        return Estimate(centre, row.score_se, low, high, level, (), centre)

    rows = rows_to_separate(estimate(scored[0]), estimate(scored[1]), scored[0].num_samples)
    head = f"not confident: the top two are within their {level:.0%} intervals; "
    if rows is None:
        return head + "their scores are equal, so more rows would likely not separate them"
    return head + f"about {rows:,} rows would likely separate them"


def method_names(given: list[str] | None) -> list[str]:
    """``--method a,b --method c`` -> ["a", "b", "c"] (default ["logme"]); repeats are an error."""
    names = [
        name.strip() for value in given or ["logme"] for name in value.split(",") if name.strip()
    ]
    if not names:
        raise ValueError("--method is empty; name at least one estimator, e.g. --method logme.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"--method names {repeated} more than once.")
    return names


def _search(args: argparse.Namespace, dataset: Any) -> list[Any]:
    """Hub candidates for --task, or for the modality of the dataset's input column."""
    from hf_logme.features.columns import resolve_split
    from hf_logme.selection import search_for_dataset

    return search_for_dataset(
        resolve_split(dataset, None),
        task=args.task,
        limit=args.limit,
        label_column=args.label_column,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        image_column=args.image_column,
        audio_column=args.audio_column,
        require_safetensors=not args.allow_pickle_weights,
        token=args.token,
    )
