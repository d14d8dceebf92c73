"""``hf-logme score FEATURES LABELS``: score features saved to files."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EPILOG, EXIT_OK, positive_int


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "score",
        parents=[common],
        help="score saved features against labels",
        description="Score saved features (n_samples, n_features) against labels.",
        epilog=EPILOG,
    )
    parser.add_argument("features", help="features file: .npy, .npz, .pt or .safetensors")
    parser.add_argument(
        "labels", help="labels file: .npy, .npz, .pt, .safetensors, or .txt/.csv one per line"
    )
    parser.add_argument(
        "--method",
        action="append",
        metavar="NAME[,NAME...]",
        help="estimators, comma-separated or repeated, e.g. logme,hscore,knn "
        "(default: logme); an unknown name lists the registered ones",
    )
    parser.add_argument("--regression", action="store_true", help="labels are continuous targets")
    parser.add_argument(
        "--intercept",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="LogME: integrate out a per-target intercept (centred features); default: on, "
        "as in rankings",
    )
    parser.add_argument(
        "--prior",
        type=_prior,
        default=None,
        metavar="NU|none",
        help="LogME: pseudo-observations of the small-sample prior on the noise precision, or "
        "'none' for the exact maximum evidence; default: 2, as in rankings",
    )
    parser.add_argument(
        "--paper",
        action="store_true",
        help="LogME: the paper's model, exact maximum evidence without intercept "
        "(--no-intercept --prior none)",
    )
    parser.add_argument(
        "--max-rows",
        type=positive_int,
        help="row cap of methods that read feature rows (kNN, NLEEP, PARC, linear probe...); "
        "default: each method's own (10000)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import hf_logme
    from hf_logme.data import load_array
    from hf_logme.estimators import get_estimator
    from hf_logme.estimators.logme import DEFAULT_OPTIONS, PAPER_OPTIONS
    from hf_logme.results import method_label

    from .rank import method_names

    names = method_names(args.method)
    logme_options = _logme_options(args, DEFAULT_OPTIONS, PAPER_OPTIONS)
    if logme_options and "logme" not in names:
        given = (("--intercept", args.intercept), ("--prior", args.prior))
        flags = [flag for flag, value in given if value is not None]
        raise ValueError(f"{(flags or ['--paper'])[0]} is an option of --method logme.")
    features = load_array(args.features, what="features")
    labels = load_array(args.labels, what="labels")
    for name in names:
        own = {**DEFAULT_OPTIONS, **logme_options} if name == "logme" else {}
        options: dict[str, Any] = {"regression": args.regression, **own}
        gathers_rows = "max_rows" in get_estimator(name)(**options).gather_options()
        if args.max_rows is not None and gathers_rows:
            options["max_rows"] = args.max_rows
        value = hf_logme.score(features, labels, method=name, **options)
        # The variant is named on its line: "logme: -0.655500  (LogME (with intercept, ...))".
        print(f"{name}: {value:.6f}" + (f"  ({method_label(name, own)})" if own else ""))
    return EXIT_OK


def _prior(text: str) -> Any:
    if text.strip().lower() == "none":
        return _NONE
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none'; got {text!r}")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none'; got {text!r}")
    return value


class _NoPrior:
    """``--prior none`` (argparse's default None means "not given")."""

    def __bool__(self) -> bool:
        return True


_NONE = _NoPrior()


def _logme_options(args: argparse.Namespace, default: dict, paper: dict) -> dict[str, Any]:
    """The LogME options the flags ask for (beyond the default); {} when none was given."""
    if args.paper:
        if args.intercept is not None or args.prior is not None:
            raise ValueError("--paper is --no-intercept --prior none; drop the other flag.")
        return dict(paper)
    options: dict[str, Any] = {}
    if args.intercept is not None:
        options["intercept"] = args.intercept
    if args.prior is not None:
        options["prior"] = None if args.prior is _NONE else args.prior
    return options
