"""hf-logme: rank pre-trained checkpoints for a dataset before fine-tuning, with LogME."""

from .estimators import ESTIMATORS, LogME, LogMEResult, logme, score
from .features import ExtractedFeatures, extract_features

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "ExtractedFeatures",
    "LogME",
    "LogMEResult",
    "__version__",
    "extract_features",
    "logme",
    "score",
]
