"""hf-logme: rank pre-trained checkpoints for a dataset before fine-tuning, with LogME."""

from .estimators import ESTIMATORS, LogME, LogMEResult, logme, score

__version__ = "0.1.0"

__all__ = ["ESTIMATORS", "LogME", "LogMEResult", "logme", "score", "__version__"]
