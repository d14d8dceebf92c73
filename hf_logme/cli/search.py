"""``hf-logme search``: list candidate checkpoints on the Hub."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..results import format_count
from .common import EPILOG, EXIT_NO_RESULT, EXIT_OK, count, positive_int


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "search",
        parents=[common],
        help="find candidate checkpoints on the Hub",
        description=(
            "List Hub checkpoints that transformers' AutoModel loads, most downloaded first."
        ),
        epilog=EPILOG,
    )
    parser.add_argument(
        "--task",
        action="append",
        metavar="TAG",
        help="pipeline tag, e.g. fill-mask (repeat for several; default: from --modality)",
    )
    parser.add_argument(
        "--modality",
        choices=["text", "image", "audio"],
        help="search the usual encoder tasks of this modality",
    )
    parser.add_argument("--search", help="substring of the model id")
    parser.add_argument("--author", help="user or organisation")
    parser.add_argument(
        "--library", default="transformers", help="Hub library tag (default: transformers)"
    )
    parser.add_argument(
        "--any-library", action="store_true", help="do not filter on the library tag"
    )
    parser.add_argument("--language", help="language code, e.g. en")
    parser.add_argument("--license", help="license id, e.g. apache-2.0")
    parser.add_argument(
        "--max-parameters", type=count, metavar="N", help="largest parameter count, e.g. 150M"
    )
    parser.add_argument("--include-gated", action="store_true", help="also list gated repos")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also list models without safetensors weights (pickle weights run code)",
    )
    parser.add_argument(
        "--sort",
        default="downloads",
        choices=["downloads", "likes", "trending_score", "created_at", "last_modified"],
    )
    parser.add_argument(
        "--limit", type=positive_int, default=20, help="number of models (default: 20)"
    )
    parser.add_argument("--token", help="Hub token (private or gated models)")
    parser.add_argument("--json", action="store_true", help="print the candidates as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import hf_logme

    candidates = hf_logme.search_candidates(
        task=args.task,
        modality=args.modality,
        search=args.search,
        author=args.author,
        library=None if args.any_library else args.library,
        language=args.language,
        license=args.license,
        max_parameters=args.max_parameters,
        exclude_gated=not args.include_gated,
        require_safetensors=not args.allow_pickle,
        sort=args.sort,
        limit=args.limit,
        token=args.token,
    )
    if args.json:
        print(json.dumps([c.to_dict() for c in candidates], indent=2))
    else:
        header = ("#", "model", "task", "params", "downloads", "likes", "license")
        rows = [header] + [
            (
                str(i),
                c.id,
                c.pipeline_tag or "-",
                format_count(c.num_parameters),
                str(c.downloads if c.downloads is not None else "-"),
                str(c.likes if c.likes is not None else "-"),
                c.license or "-",
            )
            for i, c in enumerate(candidates, start=1)
        ]
        widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if not candidates:
        print("No model on the Hub matches these filters.", file=sys.stderr)
        return EXIT_NO_RESULT
    return EXIT_OK
