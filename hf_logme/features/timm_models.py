"""timm checkpoints and models, scored with their own preprocessing and their own pooling.

A timm checkpoint on the Hub (``timm/...`` repos, and any repo tagged ``timm``) holds a
``config.json`` that timm writes (``architecture``, ``num_classes``, ``pretrained_cfg``,
``model_args``) and its weights; it has no ``model_type``, so transformers cannot read it. It is
loaded here with ``timm.create_model`` from the files of one resolved commit, fetched the same way
as a transformers checkpoint's (safetensors only unless ``use_safetensors=False``; timm runs no
code from the repo: the architecture must be one timm itself defines).

- **Preprocessing**: the checkpoint's own data config (``timm.data.resolve_model_data_config``:
  input size, interpolation, crop, mean and std) turned into timm's eval transform
  (``timm.data.create_transform``), applied to each RGB image.
- **Features** (``pooling="auto"``, the only one): ``forward_head(forward_features(x),
  pre_logits=True)``, what the model's own classifier reads (its global pool, plus the head norm
  where it has one).
- **Per-stage features** (``layers="all"``, and so ``layers="best"`` / ``"mean"`` in rankings):
  from one ``forward_intermediates`` pass, each stage's (or block's) output averaged over its
  spatial positions (patch tokens for ViTs), then the pooled features above as the last layer.
  An architecture without ``forward_intermediates`` gives the outputs of the modules its
  ``feature_info`` names (what timm's ``features_only`` would return), caught by forward hooks
  on the same single ``forward_features`` pass.
- **Source predictions** (LEEP, NCE): ``forward_head`` of the same pass, when it has classes.

A timm model object (``timm.create_model(...)``) is taken as it is by ``extract_features`` and
``rank_models``, with the same preprocessing from its ``pretrained_cfg``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UnsafeWeightsError, UnsupportedModelError
from .loading import LoadedModel, _wrap_module
from .pooling import PoolingChoice

#: The one pooling of timm models: their own head's.
TIMM_POOLING = "model"
_INSTALL = "pip install 'hf-logme[timm]' (timm imports torchvision: see the README)"


def is_timm_config(config: Any) -> bool:
    """Whether a ``config.json`` (as a dict) is one timm wrote: an ``architecture`` name and no
    transformers ``model_type``."""
    return (
        isinstance(config, Mapping)
        and isinstance(config.get("architecture"), str)
        and "model_type" not in config
    )


def is_timm_model(model: Any) -> bool:
    """Whether ``model`` is a timm model object (False when timm is not imported: no object can
    be one then)."""
    return (
        "timm" in sys.modules
        and isinstance(model, torch.nn.Module)
        and isinstance(getattr(model, "pretrained_cfg", None), Mapping)
        and callable(getattr(model, "forward_features", None))
        and callable(getattr(model, "forward_head", None))
    )


def require_timm(model_id: str) -> Any:
    """The timm module, or an UnsupportedModelError that says how to install it."""
    try:
        import timm
    except ImportError as err:
        raise UnsupportedModelError(
            f"{model_id}: a timm checkpoint (its config.json names a timm architecture), and timm "
            f"is not installed (or does not import: {err}); {_INSTALL}.",
            model_id=model_id,
        ) from err
    return timm


def check_timm_config(model_id: str, config: Mapping[str, Any]) -> None:
    """Raise before any weights are fetched when timm is missing or lacks the architecture."""
    timm = require_timm(model_id)
    architecture = config["architecture"]
    if not timm.is_model(architecture):
        raise UnsupportedModelError(
            f"{model_id}: timm {timm.__version__} has no architecture {architecture!r}; upgrade "
            f"timm (pip install -U timm) or rank another checkpoint.",
            model_id=model_id,
        )


@dataclasses.dataclass
class TimmModel(LoadedModel):
    """A :class:`LoadedModel` whose ``model`` is a timm model (``config`` is its config.json,
    or its ``pretrained_cfg`` for an object).

    Attributes:
        architecture: the timm architecture name.
        num_classes: classes of its own head (0: none).
        data_config: the preprocessing it was given (input size, interpolation, mean, std...).
    """

    architecture: str = ""
    num_classes: int = 0
    data_config: dict[str, Any] = dataclasses.field(default_factory=dict)

    def auto_pooling(self, layers: str = "last") -> PoolingChoice:
        return PoolingChoice(
            TIMM_POOLING, "timm: its own head's pooling, forward_head(pre_logits=True)"
        )


class TimmPreprocess:
    """RGB images (PIL, or (H, W, 3) arrays) -> a (B, C, H, W) float tensor, by timm's eval
    transform for ``data_config``."""

    def __init__(self, data_config: Mapping[str, Any]) -> None:
        from timm.data import create_transform

        self.data_config = dict(data_config)
        self.transform = create_transform(**self.data_config, is_training=False)

    def __call__(self, images: list[Any]) -> torch.Tensor:
        return torch.stack([self.transform(_pil(image)) for image in images])

    def to_json_string(self) -> str:
        """What determines the output (the cache fingerprint of model objects reads it)."""
        return json.dumps(self.data_config, sort_keys=True, default=str)

    def __repr__(self) -> str:
        return f"TimmPreprocess({self.data_config})"


def _pil(image: Any) -> Any:
    """A PIL RGB image from a PIL image or an (H, W, 3) array (floats in [0, 1] or [0, 255])."""
    from PIL import Image

    if hasattr(image, "convert"):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        if array.size and array.max() <= 1.0:
            array = array * 255.0
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return Image.fromarray(array[:, :, :3]).convert("RGB")


def timm_preprocess(model: torch.nn.Module) -> TimmPreprocess:
    """The eval preprocessing of a timm model, from its own ``pretrained_cfg`` (with the input
    size the model was built for, where timm can tell it)."""
    try:  # newer timm: the model's actual input size, as save_for_hf records it
        from timm.data.model_config import resolve_input_data_config
    except ImportError:
        from timm.data import resolve_model_data_config as resolve_input_data_config

    return TimmPreprocess(resolve_input_data_config(model))


def load_timm_checkpoint(
    model_id: str,
    config: Mapping[str, Any],
    *,
    revision: str | None,
    token: str | bool | None,
    use_safetensors: bool,
    device: torch.device,
    dtype: torch.dtype,
    classifier: bool = False,
) -> TimmModel:
    """Load a timm checkpoint (a local folder, or a Hub id at commit ``revision``).

    Raises:
        UnsupportedModelError: timm is missing or lacks the architecture, or it cannot build the
            model from the config and weights.
        UnsafeWeightsError: only pickle weights and ``use_safetensors``.
    """
    timm = require_timm(model_id)
    check_timm_config(model_id, config)
    if os.path.isdir(model_id):
        folder = Path(model_id)
    else:
        from ..hub import download_candidate

        folder = download_candidate(
            model_id, revision=revision, token=token, use_safetensors=use_safetensors
        )
    weights = _weights_file(model_id, folder, use_safetensors)
    try:
        # timm's own reading of config.json (architecture, model_args, pretrained_cfg), with the
        # weights file chosen here: never a pickle unless allowed.
        net = timm.create_model(
            f"local-dir:{folder}",
            pretrained=True,
            pretrained_cfg_overlay={"source": "file", "file": str(weights)},
        )
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise UnsupportedModelError(
            f"{model_id}: timm could not build {config['architecture']!r} from its config.json "
            f"and {weights.name}: {err}",
            model_id=model_id,
        ) from err
    net.to(device=device, dtype=dtype).eval()
    preprocess = timm_preprocess(net)
    return _describe(
        net,
        preprocess,
        model_id=model_id,
        revision=revision,
        device=device,
        dtype=dtype,
        config=dict(config),
        classifier=classifier,
    )


def wrap_timm_model(
    model: torch.nn.Module,
    *,
    processor: Any = None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
) -> TimmModel:
    """A timm model object, used where it is (never moved or cast), ready for extraction.

    Args:
        model: a ``timm.create_model(...)`` result.
        processor: a preprocess callable to use instead of its own data config's transform.
        device, dtype: "auto" keeps the model's own; anything else must match it.
    """
    preprocess = processor or getattr(model, "preprocess", None) or timm_preprocess(model)
    loaded = _wrap_module(model, processor=preprocess, device=device, dtype=dtype, token=None)
    return _describe(
        model,
        preprocess,
        model_id=timm_model_name(model),
        revision=None,
        device=loaded.device,
        dtype=loaded.dtype,
        config=dict(model.pretrained_cfg),
        classifier=True,
    )


def timm_model_name(model: torch.nn.Module) -> str:
    """Its ``name_or_path`` if set, else the Hub id it was loaded from (``hf-hub:``), else its
    architecture name."""
    cfg = model.pretrained_cfg
    hub_id = cfg.get("hf_hub_id") if cfg.get("source") == "hf-hub" else None
    for value in (getattr(model, "name_or_path", None), hub_id, cfg.get("architecture")):
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def _describe(
    net: torch.nn.Module,
    preprocess: Any,
    *,
    model_id: str,
    revision: str | None,
    device: torch.device,
    dtype: torch.dtype,
    config: dict[str, Any],
    classifier: bool,
) -> TimmModel:
    num_classes = int(getattr(net, "num_classes", 0) or 0)
    return TimmModel(
        model=net,
        processor=preprocess,
        modality="image",
        model_id=model_id,
        revision=revision,
        device=device,
        dtype=dtype,
        is_transformers=False,
        config=config,
        classifier=net if classifier and num_classes > 0 else None,
        architecture=str(config.get("architecture") or type(net).__name__),
        num_classes=num_classes,
        data_config=dict(getattr(preprocess, "data_config", {}) or {}),
    )


def _weights_file(model_id: str, folder: Path, use_safetensors: bool) -> Path:
    """The weights to load from a timm checkpoint folder: safetensors, else (if allowed) pickle."""
    safe, pickle = folder / "model.safetensors", folder / "pytorch_model.bin"
    if safe.is_file():
        return safe
    if pickle.is_file():
        if not use_safetensors:
            return pickle
        raise UnsafeWeightsError(
            f"{model_id}: no safetensors weights (model.safetensors), only pytorch_model.bin; "
            f"loading it can run arbitrary code. Pass use_safetensors=False to allow it if you "
            f"trust this repo.",
            model_id=model_id,
        )
    raise UnsupportedModelError(
        f"{model_id}: a timm checkpoint without weights (no model.safetensors or "
        f"pytorch_model.bin in {folder}).",
        model_id=model_id,
    )


def check_timm_options(loaded: TimmModel, pooling: str, layers: str) -> tuple[str, str]:
    """The pooling of a timm model and why; raise for options it has no meaning for."""
    if pooling not in ("auto", TIMM_POOLING):
        raise ValueError(
            f"pooling={pooling!r}, but {loaded.model_id} is a timm model, pooled by its own head "
            f"(forward_head(pre_logits=True)); use pooling='auto'."
        )
    if (
        layers == "all"
        and not _has_intermediates(loaded.model)
        and not _stage_modules(loaded.model)
    ):
        raise ValueError(
            f"{loaded.model_id}: this timm architecture ({loaded.architecture}) has neither "
            f"forward_intermediates nor a feature_info naming its stages, so per-stage features "
            f"(layers='all', 'best', 'mean') are not available for it; use layers='last'."
        )
    choice = loaded.auto_pooling(layers)
    return choice.name, choice.reason


def timm_features(
    net: torch.nn.Module, pixels: torch.Tensor, *, layers: str, predictions: bool
) -> Any:
    """One forward pass of a timm model: pooled features ((B, D), or per stage with
    ``layers="all"``: stage index -> (B, D_i), the head's pooled features last), and with
    ``predictions`` the head's logits too, as a (features, logits) pair."""
    if layers == "all":
        final, stages = _stage_outputs(net, pixels)
        pooled = net.forward_head(final, pre_logits=True)
        features: Any = {i: _spatial_mean(stage).float() for i, stage in enumerate(stages)}
        features[len(stages)] = pooled.float()
    else:
        final = net.forward_features(pixels)
        features = pooled = net.forward_head(final, pre_logits=True).float()
    if predictions:
        return features, net.forward_head(final).float()
    return features


def _has_intermediates(net: torch.nn.Module) -> bool:
    return callable(getattr(net, "forward_intermediates", None))


def _stage_modules(net: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules ``net.feature_info`` names as its stages ([] when it names none, or a name
    that is not a submodule)."""
    info = getattr(net, "feature_info", None)
    names = [entry.get("module") for entry in info] if isinstance(info, list | tuple) else []
    if not names or not all(isinstance(n, str) for n in names):
        return []
    try:  # walks each name's path only: this runs once per batch
        return [net.get_submodule(n) for n in names]
    except AttributeError:
        return []


def _stage_outputs(net: torch.nn.Module, pixels: torch.Tensor) -> tuple[Any, list[torch.Tensor]]:
    """(forward_features output, each stage's output) from one pass: ``forward_intermediates``
    where the architecture has it, else forward hooks on its ``feature_info`` modules."""
    if _has_intermediates(net):
        return net.forward_intermediates(pixels)
    modules = _stage_modules(net)
    outputs: dict[int, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda m, a, out, i=i: outputs.__setitem__(i, out))
        for i, module in enumerate(modules)
    ]
    try:
        final = net.forward_features(pixels)
    finally:
        for hook in hooks:
            hook.remove()
    return final, [outputs[i] for i in range(len(modules))]


def _spatial_mean(stage: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) or (B, L, C) -> (B, C), averaged over positions."""
    if stage.ndim == 4:
        return stage.mean(dim=(2, 3))
    if stage.ndim == 3:
        return stage.mean(dim=1)
    return stage.flatten(1)
