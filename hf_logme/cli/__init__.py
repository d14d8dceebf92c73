"""The ``hf-logme`` command: parses arguments, calls the public API, prints. No logic of its own.

One module per subcommand (``score``, ``search``, ``rank``, ``metric``), each with
``add_parser(commands, common)``. Exit codes, for every subcommand:

- 0: success;
- 1: no result (nothing could be scored, nothing matched) or the Hub could not be reached;
- 2: bad arguments or input (the message says which and how to fix it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import metric, rank, score, search, validate
from .common import EPILOG, EXIT_NO_RESULT, EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-logme",
        description="Rank pre-trained checkpoints for a dataset before fine-tuning, with LogME.",
        epilog=EPILOG,
    )
    _add_verbosity(parser, default=True)
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, default=False)  # -v/-q also after the subcommand
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (rank, search, score, metric, validate):
        module.add_parser(commands, common)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, *, default: bool) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0 if default else argparse.SUPPRESS,
                        help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=False if default else argparse.SUPPRESS,
                        help="errors only, no progress bars")


def _configure_logging(verbose: int, quiet: bool) -> None:
    """The CLI, not the library, sets handlers and levels (and silences progress bars with -q)."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hf_logme").setLevel(level)
    if quiet:  # before the HF libraries are imported (the subcommands import them lazily)
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    command = " ".join(filter(None, ("hf-logme", args.command, getattr(args, "action", None))))
    try:
        return args.run(args)
    except (ValueError, TypeError) as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # the Hub (huggingface_hub's HTTP errors are OSErrors), files, network
        print(f"{command}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_NO_RESULT
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
