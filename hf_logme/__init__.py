"""hf-logme: rank pre-trained checkpoints for a dataset before fine-tuning, with LogME."""

from .estimators import ESTIMATORS, LogME, LogMEResult, logme, score
from .features import ExtractedFeatures, extract_features
from .hub import Candidate, search_candidates

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "Candidate",
    "ExtractedFeatures",
    "LogME",
    "LogMEResult",
    "__version__",
    "extract_features",
    "logme",
    "score",
    "search_candidates",
]
