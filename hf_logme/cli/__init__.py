"""The ``hf-logme`` command: parses arguments, calls the public API, prints. No logic of its own.

One module per subcommand (``score``, ``search``, ``rank``, ``metric``, ``app``), each with
``add_parser(commands, common)``; they import torch, transformers and datasets only when they
run, so that ``--help`` and ``--version`` answer at once. Exit codes, for every subcommand:

- 0: success;
- 1: no result (nothing could be scored, nothing matched) or the Hub could not be reached;
- 2: bad arguments or input (the message says which and how to fix it);
- 3: the result was computed and printed, but an output file could not be written (the message
  names it; nothing computed is lost: the ranking is on stdout).

Output: logs go to stderr as plain ``LEVEL logger: message`` lines, through tqdm while progress
bars are drawn (a log line never lands on a bar's line); bars are drawn only when stderr is a
terminal, so a redirected stderr (a log file) holds no carriage returns or escape codes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator

from .. import __version__
from ..verbosity import restore_env
from . import app, metric, rank, score, search, validate
from .common import EPILOG, EXIT_NO_RESULT, EXIT_USAGE, to_flags

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-logme",
        description="Rank pre-trained checkpoints for a dataset before fine-tuning, with LogME.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_verbosity(parser, default=True)
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, default=False)  # -v/-q also after the subcommand
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (rank, search, score, validate, metric, app):
        module.add_parser(commands, common)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, *, default: bool) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if default else argparse.SUPPRESS,
        help="more output: -v hf-logme's info and the HF libraries' own logs and bars, "
        "-vv hf-logme's debug logs, -vvv debug logs of every library",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if default else argparse.SUPPRESS,
        help="errors only, no progress bars",
    )


def log_levels(verbose: int, quiet: bool) -> tuple[int, int]:
    """(root level, ``hf_logme`` level) for ``-v`` counted ``verbose`` times or ``-q``."""
    if quiet:
        return logging.ERROR, logging.ERROR
    package = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    return (logging.DEBUG if verbose >= 3 else logging.WARNING), package


@contextlib.contextmanager
def console(verbose: int, quiet: bool, stream=None) -> Iterator[None]:
    """Logging and progress bars for one command; every change is undone on exit.

    The CLI, not the library, sets handlers and levels. ``-vv`` is DEBUG for hf_logme only (not
    filelock, fsspec, urllib3...), ``-vvv`` for every library.
    """
    stream = sys.stderr if stream is None else stream
    root, package = logging.getLogger(), logging.getLogger("hf_logme")
    root_level, package_level = log_levels(verbose, quiet)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    bars = not quiet and stream.isatty()
    with contextlib.ExitStack() as undo:
        undo.callback(root.setLevel, root.level)
        undo.callback(package.setLevel, package.level)
        root.setLevel(root_level)
        package.setLevel(package_level)
        root.addHandler(handler)
        undo.callback(root.removeHandler, handler)
        if verbose >= 3:
            from ..verbosity import libraries_debug

            undo.enter_context(libraries_debug())
        if bars:
            from tqdm.contrib.logging import logging_redirect_tqdm

            undo.enter_context(logging_redirect_tqdm([root]))
        else:
            _no_progress_bars(undo)
        yield


def _no_progress_bars(undo: contextlib.ExitStack) -> None:
    """Every bar off, through the libraries' switches: huggingface_hub's (hf-logme's bars, the
    downloads, and transformers' when it is imported later, as the subcommands do) and datasets'
    (its environment variable when it is not imported yet)."""
    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not the class

    states = dict(hub_tqdm.progress_bar_states)
    hub_tqdm.disable_progress_bars()

    def reset() -> None:
        hub_tqdm.progress_bar_states.clear()
        hub_tqdm.progress_bar_states.update(states)

    undo.callback(reset)
    if "datasets" not in sys.modules:
        name = "HF_DATASETS_DISABLE_PROGRESS_BARS"
        undo.callback(restore_env, name, os.environ.get(name))
        os.environ[name] = "1"
        return
    ds_tqdm = importlib.import_module("datasets.utils.tqdm")
    if not ds_tqdm.are_progress_bars_disabled():
        ds_tqdm.disable_progress_bars()
        undo.callback(ds_tqdm.enable_progress_bars)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = " ".join(filter(None, ("hf-logme", args.command, getattr(args, "action", None))))
    with console(args.verbose, args.quiet):
        try:
            return args.run(args)
        except (ValueError, TypeError) as err:
            print(f"{command}: error: {to_flags(str(err), args.command)}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as err:  # the Hub (huggingface_hub's HTTP errors are OSErrors), files
            message = to_flags(str(err), args.command)
            print(f"{command}: error: {type(err).__name__}: {message}", file=sys.stderr)
            return EXIT_NO_RESULT
        except KeyboardInterrupt:
            print(f"{command}: interrupted", file=sys.stderr)
            return 130
