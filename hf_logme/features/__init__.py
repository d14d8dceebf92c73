"""Features of any checkpoint on the user's dataset: text, image or audio, batched on a device.

One module a job: ``options`` (allowed values, device and dtype), ``loading`` (checkpoint ->
model + processor), ``columns`` and ``targets`` (what to read from the dataset), ``sampling``
(stratified subsets), ``audio`` (decoding and resampling), ``inputs`` (batches of model inputs),
``pooling`` (which vector a head would see), ``forward`` (one pass), ``extract`` (the loop),
``timm_models`` (timm checkpoints and models).
"""

from .extract import ExtractedFeatures, extract_features
from .loading import Checkpoint, LoadedModel, inspect_checkpoint, load_model
from .pooling import PoolingChoice

__all__ = [
    "Checkpoint",
    "ExtractedFeatures",
    "LoadedModel",
    "PoolingChoice",
    "extract_features",
    "inspect_checkpoint",
    "load_model",
]
