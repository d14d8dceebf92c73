"""``hf-logme metric install|export|push``: the LogME evaluate metric and its Hub Space."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EPILOG, EXIT_OK, EXIT_USAGE, to_flags


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "metric",
        help="the LogME evaluate metric: install it, export or push its Space",
        description="LogME as a Hugging Face evaluate metric (evaluate.load).",
        epilog=EPILOG,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = actions.add_parser(
        "install",
        parents=[common],
        help='make evaluate.load("logme") work, offline too',
        description='Install the module in evaluate\'s module cache, where evaluate.load("logme") '
        "finds it offline and when the Hub has no such metric.",
    )
    install.set_defaults(run=run_install)
    export = actions.add_parser(
        "export",
        parents=[common],
        help="write the metric's Space folder (module, card, app, requirements)",
        description="Write the Space files. evaluate.load(FOLDER) loads them when FOLDER is "
        "named after the module (logme by default).",
    )
    export.add_argument("folder", help="destination folder, e.g. ./logme")
    export.add_argument("--name", default="logme", help="module name (default: logme)")
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder, replacing files of the same names",
    )
    export.set_defaults(run=run_export)
    push = actions.add_parser(
        "push",
        parents=[common],
        help="create or update the metric's Space on the Hub",
        description=(
            'Upload the Space files to the Hub Space REPO_ID; then evaluate.load("REPO_ID").'
        ),
        epilog=EPILOG,
    )
    push.add_argument("--repo-id", required=True, help="the Space: NAMESPACE/NAME, e.g. me/logme")
    push.add_argument("--token", help="Hub token with write access (default: the logged-in one)")
    push.add_argument("--private", action="store_true", help="create the Space private")
    push.set_defaults(run=run_push)


def run_install(args: argparse.Namespace) -> int:
    from ..metric_space import install_metric

    path = install_metric()
    print(f"Installed the LogME evaluate module at {path}")
    print('Load it with: evaluate.load("logme")')
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from ..metric_space import export_space

    try:
        folder = export_space(args.folder, name=args.name, overwrite=args.overwrite)
    except FileExistsError as err:  # the user's files are kept: a usage error, not a failure
        print(f"hf-logme metric export: error: {to_flags(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Wrote the LogME metric's Space files to {folder}")
    return EXIT_OK


def run_push(args: argparse.Namespace) -> int:
    from ..metric_space import push_space

    url = push_space(args.repo_id, token=args.token, private=args.private)
    print(f"Pushed the LogME metric to {url}")
    print(f'Load it with: evaluate.load("{url.repo_id}")')
    return EXIT_OK
