"""``hf-logme app``: the ranking Space (a Gradio app), started locally."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EPILOG, EXIT_OK, EXIT_USAGE, positive_int


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "app",
        parents=[common],
        help="start the ranking app (Gradio) in the browser",
        description="Start the ranking Space locally: pick a dataset and candidates, rank them, "
        "see the table and plot, download the JSON. Needs pip install 'hf-logme[app]'.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument("--port", type=positive_int, default=7860, help="port (default: 7860)")
    parser.add_argument(
        "--share",
        action="store_true",
        help="also open a public gradio.live link (goes through Gradio's servers)",
    )
    parser.add_argument(
        "--max-candidates",
        type=positive_int,
        default=10,
        help="most candidates a user may rank in one run (default: 10)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..app import build_app

    try:
        demo = build_app(max_candidates=args.max_candidates)
    except ImportError as err:
        if err.name != "gradio":
            raise
        print(f"hf-logme app: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    demo.queue().launch(
        server_name=args.host, server_port=args.port, share=args.share, ssr_mode=False
    )
    return EXIT_OK
