"""hf-logme: rank pre-trained checkpoints for a dataset before fine-tuning, with LogME."""

from typing import TYPE_CHECKING, Any

from .estimators import ESTIMATORS, LogME, LogMEResult, logme, score
from .features import ExtractedFeatures, extract_features
from .hub import Candidate, search_candidates
from .ranking import rank_models
from .results import Ranking, RankingRow
from .selection import select_checkpoint

if TYPE_CHECKING:
    from .trainer import LogMECallback, make_model_init

__version__ = "0.1.0"

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

# hf_logme.trainer imports transformers' Trainer machinery and accelerate (half a second): it is
# imported when one of its names is first used, not by `import hf_logme`.
_TRAINER_NAMES = ("LogMECallback", "make_model_init")


def __getattr__(name: str) -> Any:
    if name in _TRAINER_NAMES:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
