"""The LogME evaluate module as files: a Hub Space folder, a local install, an upload.

Everything is rendered from the package (``hf_logme.metric`` texts and the card template
``metric_card.md``), so an installed hf-logme can write, install or push the same files that
``metric_card/logme/`` holds in the source tree.

How ``evaluate.load`` (0.4) resolves a name, and what each function here relies on:

- a path (``"dir/logme"`` with ``dir/logme/logme.py``, or ``"dir/logme.py"``) loads that script:
  the script must be named after its folder;
- ``"NS/name"`` downloads ``name.py`` from the Space ``NS/name``: :func:`push_space` uploads the
  script under the Space's name;
- ``"logme"`` asks the Hub for ``evaluate-metric/logme`` (or, offline, fails at once) and then falls
  back to the newest cached copy under
  ``<HF_MODULES_CACHE>/evaluate_modules/metrics/evaluate-metric--logme/<64-hex hash>/logme.py``:
  :func:`install_metric` writes the script there. Online, evaluate first asks the Hub and logs
  that it used the cached copy.

The script itself is a single import from ``hf_logme.metric``: evaluate scans it with a regex and
checks that each imported library is installed (the ``# From:`` comment names the pip package).
"""

from __future__ import annotations

import hashlib
import logging
import os
import textwrap
from importlib import resources
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, RepoUrl
from huggingface_hub.utils import HFValidationError, validate_repo_id

from . import __version__
from .estimators._validation import check_bool
from .metric import CITATION, DESCRIPTION, EXAMPLES, INPUTS, OUTPUT

logger = logging.getLogger(__name__)

METRIC_NAME = "logme"
SPACE_FILES = ("README.md", "app.py", "requirements.txt")  # plus the script, <name>.py

_SCRIPT = '''\
"""LogME (You et al., ICML 2021; JMLR 2022) as a Hugging Face evaluate metric; see README.md.

The implementation is in the hf-logme package; this file is what evaluate.load imports.
"""

from hf_logme.metric import Logme  # From: hf-logme

__all__ = ["Logme"]
'''

_APP = '''\
"""The Space's widget: LogME of pasted feature vectors and labels (the card is README.md)."""

import json
from pathlib import Path

import evaluate
import gradio as gr

HERE = Path(__file__).parent
CARD = (HERE / "README.md").read_text(encoding="utf-8").split("---", 2)[2]


def score(config, predictions, references, paper):
    metric = evaluate.load(str(HERE / "{script}"), config)
    # Default: LogME with intercept, small-sample prior 2 (as hf-logme rank); or the papers'.
    options = {"intercept": False, "prior": None} if paper else {}
    return metric.compute(
        predictions=json.loads(predictions), references=json.loads(references), **options
    )


gr.Interface(
    fn=score,
    inputs=[
        gr.Radio(["default", "regression", "multilabel"], value="default", label="config"),
        gr.Textbox(
            label="predictions: JSON list of feature vectors",
            value="[[1.0, 0.1], [0.9, 0.0], [0.1, 1.0], [0.0, 1.1]]",
        ),
        gr.Textbox(label="references: JSON list of labels", value='["cat", "cat", "dog", "dog"]'),
        gr.Checkbox(label="the papers' model (no intercept, exact evidence)"),
    ],
    outputs=gr.JSON(label="result"),
    title="LogME",
    article=CARD,
).launch()
'''

_REQUIREMENTS = f"""\
# The Space runs on CPU: take torch's CPU build (PyPI's default build bundles CUDA).
--extra-index-url https://download.pytorch.org/whl/cpu
hf-logme>={__version__}
"""


def space_files(name: str = METRIC_NAME) -> dict[str, str]:
    """The files of the metric's Space, by path in the repository.

    Args:
        name: the Space's name (``NS/<name>``); evaluate loads ``NS/<name>`` from ``<name>.py``,
            so the script is written under that name. A Python identifier.

    Returns:
        ``{"README.md": card, "<name>.py": module, "app.py": widget, "requirements.txt": ...}``.

    Raises:
        ValueError: ``name`` is not a Python identifier.

    Example:
        >>> from hf_logme.metric_space import space_files
        >>> sorted(space_files())
        ['README.md', 'app.py', 'logme.py', 'requirements.txt']
    """
    _check_name(name)
    return {
        "README.md": render_card(name),
        f"{name}.py": _SCRIPT,
        "app.py": _APP.replace("{script}", f"{name}.py"),
        "requirements.txt": _REQUIREMENTS,
    }


def render_card(name: str = METRIC_NAME) -> str:
    """The metric card (README.md of the Space): the template filled with the module's texts."""
    template = resources.files("hf_logme").joinpath("metric_card.md").read_text(encoding="utf-8")
    inputs = "\n".join(
        textwrap.fill(f"- **{key}**: {text}", 100, subsequent_indent="  ")
        for key, text in INPUTS.items()
    )
    examples = "\n\n".join(
        f"{textwrap.fill(title, 100)}\n\n```python\n{code}\n```" for title, code in EXAMPLES
    )
    fields = {
        "description": textwrap.fill(DESCRIPTION, 100),
        "inputs": inputs,
        "output": textwrap.fill(OUTPUT, 100),
        "examples": examples,
        "citation": CITATION,
        "name": name,
        "version": __version__,
    }
    for key, value in fields.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def export_space(
    folder: str | os.PathLike[str], *, name: str = METRIC_NAME, overwrite: bool = False
) -> Path:
    """Write the Space's files into ``folder``, ready to edit, to load with
    ``evaluate.load(folder)`` or to push.

    Args:
        folder: destination directory, created if needed. ``evaluate.load(folder)`` needs it
            named ``<name>``.
        name: the script's name, see :func:`space_files`.
        overwrite: write into a folder that is not empty, replacing files of the same names
            (README.md, requirements.txt...). False (default) refuses, so nothing is lost.

    Returns:
        The folder.

    Raises:
        FileExistsError: ``folder`` is a file, or a non-empty folder and ``overwrite`` is False.
    """
    overwrite = check_bool("overwrite", overwrite)
    files = space_files(name)
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} is a file; pass a folder to export the Space into.")
    present = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
    if present and not overwrite:
        replaced = sorted(set(present) & {Path(p).parts[0] for p in files})
        raise FileExistsError(
            f"{target} is not empty ({len(present)} entries"
            f"{', would replace ' + ', '.join(replaced) if replaced else ''}); export into a new "
            f"or empty folder, or pass overwrite=True to replace those files."
        )
    target.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        (target / path).write_text(text, encoding="utf-8")
    if target.resolve().name != name:
        logger.warning(
            "Wrote %s; evaluate.load(%r) needs the folder named %r (or pass the script's path).",
            target,
            str(target),
            name,
        )
    return target


def install_metric() -> Path:
    """Install the module where ``evaluate.load("logme")`` finds it, online or offline.

    Writes the script to evaluate's module cache, as the cached copy of the canonical name
    ``logme`` (see the module docstring). Run it again after upgrading hf-logme; it is idempotent.

    Returns:
        The path of the installed script.
    """
    from evaluate.loading import init_dynamic_modules

    digest = hashlib.sha256(_SCRIPT.encode("utf-8")).hexdigest()  # evaluate wants 64 hex digits
    metrics = Path(init_dynamic_modules()) / "metrics"
    folder = metrics / f"evaluate-metric--{METRIC_NAME}" / digest
    folder.mkdir(parents=True, exist_ok=True)
    for package in (metrics, folder.parent, folder):
        (package / "__init__.py").touch()
    script = folder / f"{METRIC_NAME}.py"
    script.write_text(_SCRIPT, encoding="utf-8")  # a fresh mtime: evaluate takes the newest copy
    logger.info("Installed the LogME evaluate module at %s", script)
    return script


def push_space(
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    api: HfApi | None = None,
) -> RepoUrl:
    """Create (or update) the metric's Space on the Hub: one commit with every file.

    Args:
        repo_id: ``"NS/name"`` (or ``"name"`` for the token's own namespace). Users then load
            the metric with ``evaluate.load("NS/name")``.
        token: a Hub token with write access; default: the logged-in token (``hf auth login``)
            or ``HF_TOKEN``.
        private: create the Space private (an existing Space keeps its visibility).
        api: the client to use, e.g. ``HfApi(endpoint=...)``; default ``HfApi()``.

    Returns:
        The Space's URL (``.repo_id`` holds the full id).

    Raises:
        ValueError: ``repo_id`` is malformed or its name is not a Python identifier.
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"repo_id {repo_id!r} is not a valid Hub repo id: {err}") from None
    files = space_files(repo_id.split("/")[-1])
    api = api or HfApi()
    url = api.create_repo(
        repo_id, token=token, private=private, repo_type="space", space_sdk="gradio", exist_ok=True
    )
    api.create_commit(
        url.repo_id,
        [CommitOperationAdd(path, text.encode("utf-8")) for path, text in files.items()],
        commit_message=f"LogME evaluate metric (hf-logme {__version__})",
        token=token,
        repo_type="space",
    )
    logger.info("Pushed the LogME metric to %s", url)
    return url


def _check_name(name: str) -> None:
    if not name.isidentifier():
        raise ValueError(
            f"The metric's name {name!r} becomes the module file {name}.py that evaluate imports: "
            f"use letters, digits and underscores, not starting with a digit (e.g. 'logme' or "
            f"'my_logme')."
        )
