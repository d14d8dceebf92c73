"""hf-logme: rank pre-trained checkpoints for a dataset before fine-tuning, with LogME.

The public names are imported on first use (PEP 562), so that ``import hf_logme`` and the
``hf-logme`` command's argument parsing (``--help``, ``--version``) do not import torch,
transformers or datasets (seconds); ``from hf_logme import rank_models`` works as usual.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .estimators import ESTIMATORS, LogME, LogMEResult, logme, score
    from .features import ExtractedFeatures, extract_features
    from .hub import Candidate, search_candidates
    from .ranking import rank_models
    from .results import Ranking, RankingRow
    from .selection import select_checkpoint
    from .trainer import LogMECallback, make_model_init

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "ESTIMATORS": ".estimators",
    "LogME": ".estimators",
    "LogMEResult": ".estimators",
    "logme": ".estimators",
    "score": ".estimators",
    "ExtractedFeatures": ".features",
    "extract_features": ".features",
    "Candidate": ".hub",
    "search_candidates": ".hub",
    "rank_models": ".ranking",
    "Ranking": ".results",
    "RankingRow": ".results",
    "LogMECallback": ".trainer",
    "make_model_init": ".trainer",
    "select_checkpoint": ".selection",
}

__all__ = [
    "ESTIMATORS",
    "Candidate",
    "ExtractedFeatures",
    "LogME",
    "LogMECallback",
    "LogMEResult",
    "Ranking",
    "RankingRow",
    "__version__",
    "extract_features",
    "logme",
    "make_model_init",
    "rank_models",
    "score",
    "search_candidates",
    "select_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    else:
        try:  # hf_logme.ranking and other submodules, as a plain import would have bound them
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
