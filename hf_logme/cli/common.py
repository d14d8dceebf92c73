"""Exit codes and argument types shared by the subcommands."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_NO_RESULT, EXIT_USAGE, EXIT_NOT_WRITTEN = 0, 1, 2, 3
EPILOG = (
    "Exit codes: 0 success, 1 no result or the Hub could not be reached, 2 bad arguments or "
    "input, 3 scored and printed but an output file could not be written."
)


def count(text: str) -> int:
    """argparse type: ``110M``, ``1.5B``, ``300K`` or a plain integer."""
    units = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
    number, unit = (text[:-1], units[text[-1].upper()]) if text[-1:].upper() in units else (text, 1)
    try:
        return round(float(number) * unit)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count like 110M, 1.5B or 300000; got {text!r}"
        ) from None


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


# Python argument -> command-line flag, for error messages raised by the library (which names its
# own arguments). A value in the key is matched literally: flags that set it take no value.
_FLAGS = {
    "use_safetensors=False": "--allow-pickle-weights",
    "use_safetensors=True": "no --allow-pickle-weights",
    "trust_remote_code=True": "--trust-remote-code",
    "cache=False": "--no-cache",
    "delete_after=True": "--delete-after",
    "overwrite=True": "--overwrite",
    "label_column": "--label-column",
    "text_column": "--text-column",
    "text_pair_column": "--text-pair-column",
    "image_column": "--image-column",
    "audio_column": "--audio-column",
    "max_samples": "--max-samples",
    "max_length": "--max-length",
    "batch_size": "--batch-size",
    "cache_dir": "--cache-dir",
    "pooling": "--pooling",
    "layers": "--layers",
    "split": "--split",
    "seed": "--seed",
    "device": "--device",
    "dtype": "--dtype",
    "distribute": "--distribute",
    "token": "--token",
}
_COMMAND_FLAGS = {
    "rank": {"regression=True": "--task-type regression", "task": "--task-type"},
    "score": {"regression=True": "--regression", "intercept=True": "--intercept"},
}
_VALUE = r"""(?:'([^']*)'|"([^"]*)"|(\w(?:[-\w.:/]*\w)?))"""


def to_flags(message: str, command: str | None = None) -> str:
    """``message`` with the library's argument names written as the flags of ``command``.

    ``"pass label_column="`` -> ``"pass --label-column"``, ``"task='regression'"`` ->
    ``"--task-type regression"``, ``"use_safetensors=False"`` -> ``"--allow-pickle-weights"``,
    ``"max_samples must be..."`` -> ``"--max-samples must be..."``. Words that are not argument
    names are left alone (names without an underscore change only when followed by ``=`` or at
    the start of the message).
    """
    import re

    table = {**_FLAGS, **_COMMAND_FLAGS.get(command or "", {})}
    for literal in sorted((k for k in table if "=" in k), key=len, reverse=True):
        message = re.sub(rf"(?<![\w-]){re.escape(literal)}(?!\w)", table[literal], message)
    for name in sorted((k for k in table if "=" not in k), key=len, reverse=True):
        flag = table[name]

        def with_value(match: re.Match[str], flag: str = flag) -> str:
            value = next((g for g in match.groups() if g is not None), None)
            return f"{flag} {value}" if value else flag

        message = re.sub(rf"(?<![\w-]){name}={_VALUE}?", with_value, message)
        pattern = rf"(?<![\w-]){name}(?![\w=])" if "_" in name else rf"^{name}(?= must\b)"
        message = re.sub(pattern, flag, message)
    return message
