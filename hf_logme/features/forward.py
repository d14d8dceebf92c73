"""One forward pass: inputs on the device, the model called once, its states pooled to vectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .loading import LoadedModel
from .pooling import pool
from .timm_models import TimmModel, timm_features


class FeatureRunner:
    """Calls a loaded model on a batch and returns pooled float32 features on its device.

    Args:
        loaded: the model.
        pooling: a resolved pooling name ("cls", "mean", "max", "last", "pooler"), or "model" for
            a custom module whose output already is one vector per sample.
        layers: "last", or "all" for every hidden state (index 0 is the embedding output).
        predictions: also return the classification head's logits (``loaded.classifier`` must
            be set), from the same forward pass: the classifier runs once and the features are
            its base model's outputs, exactly those of the base model alone.
    """

    def __init__(
        self, loaded: LoadedModel, pooling: str, layers: str, *, predictions: bool = False
    ) -> None:
        if predictions and loaded.classifier is None:
            raise ValueError(f"{loaded.model_id} has no classification head loaded.")
        self.loaded = loaded
        self.pooling = pooling
        self.layers = layers
        self.predictions = predictions
        self._non_blocking = loaded.device.type == "cuda"

    def __call__(self, inputs: Any) -> torch.Tensor | dict[int, torch.Tensor]:
        """Pooled features of one batch (with ``predictions``: a (features, logits) pair)."""
        if not self.predictions or isinstance(self.loaded, TimmModel):  # timm: no hook needed
            return self._features(inputs)
        captured: list[Any] = []
        hook = self.loaded.model.register_forward_hook(lambda m, a, out: captured.append(out))
        try:
            features = self._features(inputs, captured)
        finally:
            hook.remove()
        return features

    def _features(self, inputs: Any, captured: list[Any] | None = None) -> Any:
        inputs = self._to_device(inputs)
        if isinstance(self.loaded, TimmModel):  # its own pooling, stages and head
            pixels = inputs["pixel_values"] if isinstance(inputs, dict) else inputs
            return timm_features(
                self.loaded.model, pixels, layers=self.layers, predictions=self.predictions
            )
        is_dict = isinstance(inputs, dict)
        mask = inputs.pop("_pool_mask", None) if is_dict else None
        if mask is None and is_dict:
            mask = inputs.get("attention_mask")
        accepted = self.loaded.forward_args
        if is_dict and accepted:  # processors may return extras the model does not take
            inputs = {k: v for k, v in inputs.items() if k in accepted}
        model = self.loaded.model
        if not self.loaded.is_transformers:
            output = model(**inputs) if is_dict else model(inputs)
            if isinstance(output, torch.Tensor):
                if output.ndim == 2:
                    self.pooling = "model"  # already one vector per sample
                    return output.float()
                return pool(output, mask, self.pooling)
            if getattr(output, "last_hidden_state", None) is None:
                raise TypeError(
                    f"{self.loaded.model_id} returned {type(output).__name__}; a custom module "
                    f"must return a (B, D) or (B, T, D) tensor, or an output with "
                    f"last_hidden_state."
                )
        elif captured is not None:  # the classifier runs; its base model's output is captured
            head = self.loaded.classifier(
                **inputs, output_hidden_states=self.layers == "all", return_dict=True
            )
            output = captured[-1]
            return self._pooled(output, mask), head.logits.float()
        else:
            output = model(**inputs, output_hidden_states=self.layers == "all", return_dict=True)
        return self._pooled(output, mask)

    def _pooled(self, output: Any, mask: torch.Tensor | None) -> Any:
        if self.layers == "all":
            states = output.hidden_states
            if states is None:
                raise ValueError(
                    f"{self.loaded.model_id} returned no hidden_states, so layers='all' is not "
                    f"available for it; use layers='last'."
                )
            return {i: pool(h, self._mask(h, mask), self.pooling) for i, h in enumerate(states)}
        if self.pooling == "pooler":
            pooled = getattr(output, "pooler_output", None)
            if pooled is None:
                raise ValueError(
                    f"{self.loaded.model_id} has no pooler output; use pooling='cls' or 'mean'."
                )
            return pooled.flatten(1).float()
        hidden = output.last_hidden_state
        return pool(hidden, self._mask(hidden, mask), self.pooling)

    def _mask(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """The input mask at the resolution of ``hidden`` (audio encoders downsample time)."""
        if mask is None or hidden.ndim != 3 or mask.shape[1] == hidden.shape[1]:
            return mask
        to_frames = getattr(self.loaded.model, "_get_feature_vector_attention_mask", None)
        if to_frames is None:
            return None  # a downsampled sequence with no mapping of the mask: use every step
        return to_frames(hidden.shape[1], mask)

    def _to_device(self, inputs: Any) -> Any:
        device, dtype = self.loaded.device, self.loaded.dtype

        def move(tensor: torch.Tensor) -> torch.Tensor:
            tensor = tensor.to(device, non_blocking=self._non_blocking)
            return tensor.to(dtype) if tensor.is_floating_point() else tensor

        if isinstance(inputs, torch.Tensor):
            return move(inputs)
        return {k: move(v) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def split_batch(inputs: Any, size: int) -> list[Any]:
    """Cut a batch (a tensor, or a dict of tensors sharing dim 0) into pieces of ``size`` rows."""
    if isinstance(inputs, torch.Tensor):
        return list(inputs.split(size))
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"preprocess must return a tensor or a dict of tensors; got {type(inputs).__name__}."
        )
    rows = next(v.shape[0] for v in inputs.values() if isinstance(v, torch.Tensor))
    return [
        {
            k: v[start : start + size] if isinstance(v, torch.Tensor) else v
            for k, v in inputs.items()
        }
        for start in range(0, rows, size)
    ]


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or an allocator failure on another device."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
