"""The ``hf-logme`` command: parses arguments, calls the public API, prints. No logic of its own.

Exit codes: 0 success; 1 nothing could be scored; 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_NOTHING_SCORED, EXIT_USAGE = 0, 1, 2

logger = logging.getLogger("hf_logme")


def _load_array(path: str, *, what: str) -> Any:
    """Load an array saved as .npy, .npz (single array), .pt/.pth (tensor), .safetensors (single
    tensor) or .txt/.csv (one value per line, for labels)."""
    suffix = Path(path).suffix.lower()
    if not Path(path).exists():
        raise ValueError(f"{what} file {path!r} does not exist.")
    if suffix == ".npy":
        import numpy as np

        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as archive:
            if len(archive.files) != 1:
                raise ValueError(f"{path} holds {archive.files}; save exactly one array.")
            return archive[archive.files[0]]
    if suffix in (".pt", ".pth"):
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(path)
        if len(tensors) != 1:
            raise ValueError(f"{path} holds tensors {sorted(tensors)}; save exactly one.")
        return next(iter(tensors.values()))
    if suffix in (".txt", ".csv", ".tsv"):
        import numpy as np

        values = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
        try:
            return np.array([float(v) for v in values])
        except ValueError:
            return np.array(values)
    raise ValueError(
        f"Cannot read {what} from {path!r}: use .npy, .npz, .pt, .safetensors (or .txt/.csv for "
        f"labels, one per line)."
    )


def _cmd_score(args: argparse.Namespace) -> int:
    import hf_logme

    features = _load_array(args.features, what="features")
    labels = _load_array(args.labels, what="labels")
    options: dict[str, Any] = {"regression": args.regression}
    if args.intercept:
        options["intercept"] = True
    value = hf_logme.score(features, labels, method=args.method, **options)
    print(f"{args.method}: {value:.6f}")
    return EXIT_OK


# --- hf-logme search -------------------------------------------------------------------------
def _parameter_count(text: str) -> int:
    """argparse type: ``110M``, ``1.5B``, ``300K`` or a plain integer."""
    units = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
    number, unit = (text[:-1], units[text[-1].upper()]) if text[-1:].upper() in units else (text, 1)
    try:
        return round(float(number) * unit)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count like 110M, 1.5B or 300000; got {text!r}") from None


def _format_count(value: int | None) -> str:
    if value is None:
        return "-"
    for suffix, unit in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if value >= unit:
            return f"{value / unit:.1f}{suffix}"
    return str(value)


def _cmd_search(args: argparse.Namespace) -> int:
    import json

    import hf_logme

    candidates = hf_logme.search_candidates(
        task=args.task, modality=args.modality, search=args.search, author=args.author,
        library=None if args.any_library else args.library, language=args.language, license=args.license,
        max_parameters=args.max_parameters, exclude_gated=not args.include_gated,
        require_safetensors=not args.allow_pickle, sort=args.sort, limit=args.limit,
    )
    if args.json:
        print(json.dumps([c.to_dict() for c in candidates], indent=2))
    else:
        header = ("#", "model", "task", "params", "downloads", "likes", "license")
        rows = [header] + [(str(i), c.id, c.pipeline_tag or "-", _format_count(c.num_parameters),
                            str(c.downloads if c.downloads is not None else "-"),
                            str(c.likes if c.likes is not None else "-"), c.license or "-")
                           for i, c in enumerate(candidates, start=1)]
        widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if not candidates:
        print("No model on the Hub matches these filters.", file=sys.stderr)
        return EXIT_NOTHING_SCORED
    return EXIT_OK


def _add_search_parser(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="find candidate checkpoints on the Hub",
        description="List Hub checkpoints that transformers' AutoModel loads, most downloaded first.",
    )
    search.add_argument("--task", action="append", metavar="TAG",
                        help="pipeline tag, e.g. fill-mask (repeat for several; default: from --modality)")
    search.add_argument("--modality", choices=["text", "image", "audio"],
                        help="search the usual encoder tasks of this modality")
    search.add_argument("--search", help="substring of the model id")
    search.add_argument("--author", help="user or organisation")
    search.add_argument("--library", default="transformers", help="Hub library tag (default: transformers)")
    search.add_argument("--any-library", action="store_true", help="do not filter on the library tag")
    search.add_argument("--language", help="language code, e.g. en")
    search.add_argument("--license", help="license id, e.g. apache-2.0")
    search.add_argument("--max-parameters", type=_parameter_count, metavar="N",
                        help="largest parameter count, e.g. 150M")
    search.add_argument("--include-gated", action="store_true", help="also list gated repos")
    search.add_argument("--allow-pickle", action="store_true",
                        help="also list models without safetensors weights (pickle weights run code)")
    search.add_argument("--sort", default="downloads",
                        choices=["downloads", "likes", "trending_score", "created_at", "last_modified"])
    search.add_argument("--limit", type=int, default=20, help="number of models (default: 20)")
    search.add_argument("--json", action="store_true", help="print the candidates as JSON")
    search.set_defaults(run=_cmd_search)


# --- hf-logme metric: the evaluate module (install, export, push) ---------------------------------

EXIT_HUB_FAILED = 1  # metric push: the Hub refused the upload or could not be reached


def _cmd_metric_install(args: argparse.Namespace) -> int:
    from .metric_space import install_metric

    path = install_metric()
    print(f"Installed the LogME evaluate module at {path}")
    print('Load it with: evaluate.load("logme")')
    return EXIT_OK


def _cmd_metric_export(args: argparse.Namespace) -> int:
    from .metric_space import export_space

    folder = export_space(args.folder, name=args.name)
    print(f"Wrote the LogME metric's Space files to {folder}")
    return EXIT_OK


def _cmd_metric_push(args: argparse.Namespace) -> int:
    from .metric_space import push_space

    try:
        url = push_space(args.repo_id, token=args.token, private=args.private)
    except OSError as err:  # huggingface_hub's HTTP and connection errors
        print(f"hf-logme metric push: error: {err}", file=sys.stderr)
        return EXIT_HUB_FAILED
    print(f"Pushed the LogME metric to {url}")
    print(f'Load it with: evaluate.load("{url.repo_id}")')
    return EXIT_OK


def _add_metric_commands(commands: Any) -> None:
    metric = commands.add_parser(
        "metric",
        help="the LogME evaluate metric: install it, export or push its Space",
        description="LogME as a Hugging Face evaluate metric (evaluate.load).",
    )
    actions = metric.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = actions.add_parser(
        "install",
        help='make evaluate.load("logme") work, offline too',
        description='Install the module in evaluate\'s module cache, where evaluate.load("logme") '
        "finds it offline and when the Hub has no such metric.",
    )
    install.set_defaults(run=_cmd_metric_install)
    export = actions.add_parser(
        "export",
        help="write the metric's Space folder (module, card, app, requirements)",
        description="Write the Space files. evaluate.load(FOLDER) loads them when FOLDER is "
        "named after the module (logme by default).",
    )
    export.add_argument("folder", help="destination folder, e.g. ./logme")
    export.add_argument("--name", default="logme", help="module name (default: logme)")
    export.set_defaults(run=_cmd_metric_export)
    push = actions.add_parser(
        "push",
        help="create or update the metric's Space on the Hub",
        description="Upload the Space files to the Hub Space REPO_ID; then "
        'evaluate.load("REPO_ID").',
        epilog="Exit codes: 0 pushed, 1 the Hub refused or could not be reached, 2 bad arguments.",
    )
    push.add_argument("--repo-id", required=True, help="the Space: NAMESPACE/NAME, e.g. me/logme")
    push.add_argument("--token", help="Hub token with write access (default: the logged-in one)")
    push.add_argument("--private", action="store_true", help="create the Space private")
    push.set_defaults(run=_cmd_metric_push)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-logme",
        description="Rank pre-trained checkpoints for a dataset before fine-tuning, with LogME.",
        epilog="Exit codes: 0 success, 1 nothing could be scored, 2 bad arguments or input.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    score = commands.add_parser(
        "score",
        help="score saved features against labels",
        description="Score saved features (n_samples, n_features) against labels.",
    )
    score.add_argument("features", help="features file: .npy, .npz, .pt or .safetensors")
    score.add_argument("labels", help="labels file: .npy, .npz, .pt, .safetensors, or .txt/.csv one per line")
    score.add_argument("--method", default="logme", help="estimator name (default: logme)")
    score.add_argument("--regression", action="store_true", help="labels are continuous targets")
    score.add_argument("--intercept", action="store_true",
                       help="LogME: integrate out a per-target intercept (centred features)")
    score.set_defaults(run=_cmd_score)
    _add_search_parser(commands)
    _add_metric_commands(commands)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logger.setLevel(level)
    if quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    try:
        return args.run(args)
    except (ValueError, TypeError) as err:
        print(f"hf-logme {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
