"""sentence-transformers models, scored with their own modules (Pooling, Dense, Normalize...).

A ``SentenceTransformer`` is a pipeline of modules whose last output, ``sentence_embedding``, is
what its authors trained and what ``SentenceTransformer.encode`` returns. Wrapped here as a
module that maps a batch of texts (or text pairs) to those vectors, it runs through the same batch
loop as every other model: inference mode, batches in a fixed order, features written back in
dataset order. The wrapper only reads the model: it is never moved, cast or changed.

A checkpoint folder or Hub id with a ``modules.json`` is loaded this way with
``pooling="sentence-transformers"``, and with ``pooling="auto"`` when its pipeline holds modules
beyond Transformer, Pooling and Normalize (a Dense projection, say): there, the transformers
model with the Pooling config alone would not give its embeddings. Pooling and Normalize alone are
reproduced by the transformers path too (up to each row's norm), which also offers
``layers="all"``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from ..errors import UnsafeWeightsError
from .loading import LoadedModel, load_model
from .options import resolve_device, resolve_dtype
from .pooling import PoolingChoice

ST_POOLING = "sentence-transformers"
_PLAIN = ("Transformer", "Pooling", "Normalize")  # what the transformers path reproduces


@dataclasses.dataclass
class SentenceTransformerModel(LoadedModel):
    """A :class:`LoadedModel` whose module returns the sentence-transformers embeddings."""

    modules: tuple[str, ...] = ()

    def auto_pooling(self, layers: str = "last") -> PoolingChoice:
        return PoolingChoice(
            "model", f"its sentence-transformers modules ({', '.join(self.modules)})"
        )


class _Embedder(torch.nn.Module):
    """``forward(**features)`` -> the model's ``sentence_embedding`` (B, D)."""

    def __init__(self, model: Any, name: str) -> None:
        super().__init__()
        self.sentence_transformer = model
        self.name_or_path = name
        prompts = getattr(model, "prompts", None) or {}
        default = getattr(model, "default_prompt_name", None)
        self._prompt = prompts.get(default) if default else None  # as encode() applies it
        self._prepare = getattr(model, "preprocess", None) or model.tokenize  # tokenize: ST < 5

    def forward(self, **features: Any) -> torch.Tensor:
        return self.sentence_transformer(dict(features))["sentence_embedding"]

    def preprocess(self, texts: list[Any]) -> dict[str, Any]:
        if self._prompt is None:
            return self._prepare(texts)
        return self._prepare(texts, prompt=self._prompt)


def is_sentence_transformer(model: Any) -> bool:
    """Whether ``model`` is a ``SentenceTransformer`` (False when the package is not imported:
    no object can be one then)."""
    module = sys.modules.get("sentence_transformers")
    return module is not None and isinstance(model, module.SentenceTransformer)


def module_types(
    model_id: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None
) -> tuple[str, ...] | None:
    """The class names in a checkpoint's ``modules.json`` (e.g. ``("Transformer", "Pooling",
    "Normalize")``), or None when it is not a sentence-transformers checkpoint."""
    model_id = os.fspath(model_id)
    if os.path.isdir(model_id):
        path = Path(model_id, "modules.json")
        if not path.is_file():
            return None
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            path = Path(hf_hub_download(model_id, "modules.json", revision=revision, token=token))
        except EntryNotFoundError:
            return None
    modules = json.loads(path.read_text())
    return tuple(str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules)


def uses_sentence_transformers(
    model_id: str | os.PathLike,
    pooling: str,
    layers: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
) -> bool:
    """Whether a checkpoint is to be run through its sentence-transformers modules (see the
    module docstring).

    Raises:
        ValueError: ``pooling="sentence-transformers"`` on a checkpoint without ``modules.json``,
            with ``layers="all"``, or without the sentence-transformers package.
    """
    if pooling not in ("auto", ST_POOLING) or layers != "last":
        if pooling == ST_POOLING:
            raise ValueError(
                "pooling='sentence-transformers' gives one embedding per text, not one per layer; "
                "use layers='last'."
            )
        return False
    types = module_types(model_id, revision=revision, token=token)
    if pooling == ST_POOLING:
        if types is None:
            raise ValueError(
                f"pooling='sentence-transformers' but {os.fspath(model_id)!r} has no modules.json; "
                f"use pooling='auto'."
            )
        _require_package()
        return True
    return types is not None and any(t not in _PLAIN for t in types) and _installed()


def wrap_sentence_transformer(
    model: Any,
    *,
    name: str | None = None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
) -> SentenceTransformerModel:
    """A ``SentenceTransformer`` object, ready for :func:`hf_logme.extract_features`.

    Args:
        model: the ``SentenceTransformer``; used where it is (never moved or cast).
        name: the name rankings show; default: its ``model_card_data.base_model`` or the path
            it was loaded from, else ``"SentenceTransformer"``.
        device, dtype: "auto" keeps the model's own; anything else must match it.

    Raises:
        ValueError: a device or dtype other than the model's.
    """
    name = name or sentence_transformer_name(model)
    loaded = load_model(_Embedder(model, name), device=device, dtype=dtype)
    return _describe(loaded, model, name)


def load_sentence_transformer(
    model_id: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
) -> SentenceTransformerModel:
    """Load a sentence-transformers checkpoint (folder or Hub id) with all its modules.

    Args:
        model_id: the folder or Hub id.
        revision: a commit sha (resolve branches first, as :func:`inspect_checkpoint` does).
        token, trust_remote_code, use_safetensors, device, dtype: as in
            :func:`hf_logme.features.load_model`.

    Raises:
        UnsafeWeightsError: no safetensors weights and ``use_safetensors``.
        ValueError: the sentence-transformers package is not installed.
    """
    _require_package()
    from sentence_transformers import SentenceTransformer

    target = resolve_device(device)
    target_dtype = resolve_dtype(dtype, target)
    model_id = os.fspath(model_id)
    try:
        model = SentenceTransformer(
            model_id,
            device=str(target),
            revision=revision,
            token=token,
            trust_remote_code=trust_remote_code,
            model_kwargs={"use_safetensors": True if use_safetensors else None},
        )
    except OSError as err:
        if use_safetensors and "safetensors" in str(err):
            raise UnsafeWeightsError(
                f"{model_id}: no safetensors weights were found. If it has pickle weights "
                f"(pytorch_model.bin) and you trust it, pass use_safetensors=False: loading "
                f"pickle files can run arbitrary code.",
                model_id=model_id,
            ) from err
        raise
    model.to(target_dtype).eval()
    loaded = load_model(_Embedder(model, model_id))
    result = _describe(loaded, model, model_id)
    result.revision = revision
    return result


def _describe(loaded: LoadedModel, model: Any, name: str) -> SentenceTransformerModel:
    fields = {f.name: getattr(loaded, f.name) for f in dataclasses.fields(LoadedModel)}
    fields.update(modality="text", model_id=name, max_length=getattr(model, "max_seq_length", None))
    modules = tuple(type(module).__name__ for module in model)
    return SentenceTransformerModel(**fields, modules=modules)


def sentence_transformer_name(model: Any) -> str:
    """Its ``model_card_data.base_model``, else the path its first module was loaded from."""
    card = getattr(model, "model_card_data", None)
    for value in (
        getattr(card, "base_model", None),
        getattr(model, "name_or_path", None),
        getattr(getattr(model[0], "auto_model", None), "name_or_path", None),
    ):
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def _installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("sentence_transformers") is not None


def _require_package() -> None:
    if not _installed():
        raise ValueError(
            "sentence-transformers checkpoints are run with their own modules only when the "
            "sentence-transformers package is installed: pip install sentence-transformers "
            "(or use pooling='auto')."
        )
