"""Exit codes and argument types shared by the subcommands."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_NO_RESULT, EXIT_USAGE = 0, 1, 2
EPILOG = "Exit codes: 0 success, 1 no result or the Hub could not be reached, 2 bad arguments or input."


def count(text: str) -> int:
    """argparse type: ``110M``, ``1.5B``, ``300K`` or a plain integer."""
    units = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
    number, unit = (text[:-1], units[text[-1].upper()]) if text[-1:].upper() in units else (text, 1)
    try:
        return round(float(number) * unit)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count like 110M, 1.5B or 300000; got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def batch_size(text: str) -> int | str:
    """argparse type: ``auto`` or a positive integer."""
    return text if text == "auto" else positive_int(text)
