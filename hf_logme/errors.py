"""Errors that make one candidate checkpoint unusable, so a ranking can skip it and go on.

Each subclasses a builtin (``ValueError`` or ``OSError``) so generic handlers still work, and its
message names the model, the problem and the opt-in or fix. Errors from the Hub itself
(``huggingface_hub.errors.RepositoryNotFoundError``, ``GatedRepoError``, ``HfHubHTTPError``...) are
not wrapped: the ranking records them as they are. ``NoCandidateError`` is the one error about a
whole set of candidates: none of them could be scored, so nothing can be selected.
"""

from __future__ import annotations


class CandidateError(Exception):
    """Base class: this model cannot be scored on this dataset (not a bug in the caller's code).

    Example message: ``"org/model: config requires trust_remote_code=True (architecture
    'FancyModel' is not in transformers); pass trust_remote_code=True to allow it."``
    """

    def __init__(self, message: str, *, model_id: str | None = None) -> None:
        super().__init__(message)
        self.model_id = model_id


class RemoteCodeRequiredError(CandidateError, ValueError):
    """The checkpoint's architecture is defined by code in its repo; loading it runs that code."""


class UnsafeWeightsError(CandidateError, OSError):
    """The checkpoint has no safetensors weights; pickle weights need ``use_safetensors=False``."""


class UnsupportedModelError(CandidateError, ValueError):
    """transformers cannot load this checkpoint with an Auto class, or no input fits the dataset."""


class ModelNotFoundError(CandidateError, FileNotFoundError):
    """Neither a local model folder nor a model on the Hub has this name.

    Example message: ``"./models/tiny: no such model folder (/home/me/models/tiny does not
    exist)."``
    """


class HubUnreachableError(CandidateError, ConnectionError):
    """The name is not a local folder, and the Hub could not be reached to look it up."""


class NonFiniteFeaturesError(CandidateError, ValueError):
    """The model produced NaN or infinite features (often float16 overflow)."""


class NoCandidateError(ValueError):
    r"""No candidate could be scored on the dataset (or a Hub search found none), so there is no
    checkpoint to select. ``ranking`` holds the skipped rows and their reasons, when there was a
    run.

    Example message: ``"none of the 2 candidates could be scored on this dataset, so there is no
    checkpoint to select:\n  ./missing: FileNotFoundError: ...\n  org/gated: GatedRepoError: ..."``
    """

    def __init__(self, message: str, *, ranking: object | None = None) -> None:
        super().__init__(message)
        self.ranking = ranking


class InputNotFoundError(FileNotFoundError, ValueError):
    """A dataset or array file the user named does not exist: bad input (CLI exit 2).

    Both a ``FileNotFoundError`` (what it is) and a ``ValueError`` (a wrong argument, which the
    CLI reports with exit code 2 rather than 1, "nothing scored").
    """


def describe(error: BaseException) -> str:
    """A one-line reason for a report: the error class and the first line of its message."""
    import torch

    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, torch.OutOfMemoryError):
        message = "out of memory (try a smaller --batch-size or --max-length)"
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
