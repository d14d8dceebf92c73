"""hf-logme: rank pre-trained checkpoints for a dataset before fine-tuning, with LogME."""

from .estimators import ESTIMATORS, LogME, LogMEResult, logme, score
from .features import ExtractedFeatures, extract_features
from .hub import Candidate, search_candidates
from .ranking import rank_models
from .results import Ranking, RankingRow

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "Candidate",
    "ExtractedFeatures",
    "LogME",
    "LogMEResult",
    "Ranking",
    "RankingRow",
    "__version__",
    "extract_features",
    "logme",
    "rank_models",
    "score",
    "search_candidates",
]
