"""The ``hf-logme`` command itself: --version, a --help that imports no ML library, log levels,
logging through tqdm, and no progress bars (so no escape codes) when stderr is not a terminal."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hub_fixtures import REVIEWS, build_text_model

from hf_logme.cli import build_parser, console, log_levels, main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "datasets", "evaluate", "sklearn", "gradio")


def _python(code: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_version_is_the_package_version(capsys):
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE).group(1)
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"hf-logme {version}"


def test_help_imports_no_ml_library():
    """--help answers without importing torch & co. (seconds of import time); checked in a fresh
    interpreter, after the parser is built and after every subcommand's --help."""
    result = _python(f"""
        import contextlib, io, sys
        from hf_logme.cli import build_parser
        parser = build_parser()
        commands = ["rank", "search", "score", "metric", "app"]
        for argv in [["--help"], *([name, "--help"] for name in commands)]:
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
                parser.parse_args(argv)
            assert "usage: hf-logme" in out.getvalue(), argv
        print(sorted(set({HEAVY!r}) & set(sys.modules)))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("verbose", "quiet", "levels"),
    [
        (0, False, (logging.WARNING, logging.WARNING)),
        (1, False, (logging.WARNING, logging.INFO)),
        (2, False, (logging.WARNING, logging.DEBUG)),
        (3, False, (logging.DEBUG, logging.DEBUG)),
        (2, True, (logging.ERROR, logging.ERROR)),
    ],
)
def test_log_levels(verbose, quiet, levels):
    assert log_levels(verbose, quiet) == levels
    args = build_parser().parse_args(["search", *(["-v"] * verbose), *(["-q"] if quiet else [])])
    assert (args.verbose, args.quiet) == (verbose, quiet)


def _emit_everywhere() -> None:
    logging.getLogger("hf_logme.ranking").debug("ours at debug")
    logging.getLogger("hf_logme.ranking").info("ours at info")
    logging.getLogger("filelock").debug("filelock at debug")
    logging.getLogger("fsspec").warning("fsspec at warning")


@pytest.mark.parametrize(
    ("verbose", "shown"),
    [
        (0, ["fsspec at warning"]),
        (1, ["ours at info", "fsspec at warning"]),
        (2, ["ours at debug", "ours at info", "fsspec at warning"]),
        (3, ["ours at debug", "ours at info", "filelock at debug", "fsspec at warning"]),
    ],
)
def test_debug_is_scoped_to_hf_logme_until_vvv(verbose, shown, monkeypatch):
    from transformers.utils import logging as tf_logging

    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    transformers_before = tf_logging.get_verbosity()
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("hf_logme").level)
    stream = io.StringIO()
    with console(verbose, False, stream):
        _emit_everywhere()
        inside = (os.environ.get("TRANSFORMERS_VERBOSITY"), tf_logging.get_verbosity())
    assert inside == (("debug", logging.DEBUG) if verbose == 3 else (None, transformers_before))
    messages = [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()]
    assert messages == shown
    assert (
        stream.getvalue()
        .splitlines()[0]
        .startswith(("DEBUG hf_logme.ranking: ", "WARNING fsspec: ", "INFO hf_logme.ranking: "))
    )
    assert (root.level, list(root.handlers), logging.getLogger("hf_logme").level) == before
    # -vvv set transformers to DEBUG inside the block only
    assert "TRANSFORMERS_VERBOSITY" not in os.environ
    assert tf_logging.get_verbosity() == transformers_before


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_do_not_land_on_a_progress_bar(monkeypatch):
    from tqdm import tqdm

    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    with console(0, False):
        bar = tqdm(total=3, file=stream, desc="Features", mininterval=0)
        bar.update(1)
        logging.getLogger("hf_logme.ranking").warning("Skipping a/b: OSError")
        bar.update(2)
        bar.close()
    segments = re.split(r"[\r\n]", stream.getvalue())
    assert "WARNING hf_logme.ranking: Skipping a/b: OSError" in segments  # a line of its own
    assert any(segment.startswith("Features: 100%") for segment in segments)  # the bar was drawn


def test_no_bars_when_stderr_is_not_a_terminal(monkeypatch):
    from huggingface_hub.utils import are_progress_bars_disabled, tqdm

    # The session sets HF_HUB_DISABLE_PROGRESS_BARS=1, which overrides the switch: lift it here.
    hub_tqdm = sys.modules["huggingface_hub.utils.tqdm"]
    monkeypatch.setattr(hub_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", None)
    monkeypatch.setattr(hub_tqdm, "progress_bar_states", {})
    stream, terminal = io.StringIO(), _Terminal()
    with console(0, False, stream):
        assert are_progress_bars_disabled()
        for _ in tqdm(range(3), desc="Features", file=stream):
            pass
    assert stream.getvalue() == "" and not are_progress_bars_disabled()
    with console(0, False, terminal):
        for _ in tqdm(range(3), desc="Features", file=terminal):
            pass
    assert "Features: 100%" in terminal.getvalue()


def test_a_log_file_holds_plain_lines(tmp_path):
    """``hf-logme rank -v 2> log``: log lines, no carriage returns, no escape codes."""
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(
            [("review", "score"), *((t, "great" if y else "other") for t, y in REVIEWS)]
        )
    model = build_text_model(tmp_path / "tiny-bert")
    log = tmp_path / "log.txt"
    with log.open("w") as stderr:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "hf_logme.cli",
                "rank",
                "--dataset",
                str(data),
                "--models",
                str(model),
                "--no-cache",
                "-v",
                "--output",
                str(tmp_path / "r.json"),
            ],
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=300,
        )
    text = log.read_text()
    assert result.returncode == 0, text
    assert json.loads((tmp_path / "r.json").read_text())["rows"][0]["status"] == "ok"
    assert "INFO hf_logme" in text
    assert "\r" not in text and "\x1b" not in text
    assert all(
        re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ", line)
        or line.startswith((" ", "\t"))
        for line in text.splitlines()
        if line
    ), text


def test_every_public_name_resolves_lazily():
    import hf_logme

    assert set(hf_logme.__all__) == {*hf_logme._EXPORTS, "__version__"}
    for name in hf_logme.__all__:
        assert getattr(hf_logme, name) is not None
    assert hf_logme.rank_models.__module__ == "hf_logme.ranking"
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        hf_logme.nonexistent  # noqa: B018


def test_rank_help_states_the_library_row_cap(capsys):
    """`--max-rows` defaults to rank_models' own cap; its help (written without importing torch)
    must say the same number."""
    import inspect

    from hf_logme import rank_models
    from hf_logme.estimators._rows import DEFAULT_MAX_ROWS

    assert inspect.signature(rank_models).parameters["max_rows"].default == DEFAULT_MAX_ROWS
    with pytest.raises(SystemExit):
        main(["rank", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"rank_models' max_rows, {DEFAULT_MAX_ROWS})" in help_text
