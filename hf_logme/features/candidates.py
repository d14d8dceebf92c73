"""Model objects as ranking candidates: a name, the object, and a fingerprint for the cache.

``rank_models`` takes Hub ids and folders, whose cache keys are a commit sha or a resolved path.
A model object (a ``SentenceTransformer``, a transformers ``PreTrainedModel``, any
``torch.nn.Module`` with a ``preprocess`` callable, or a :class:`LoadedModel`) has neither, so
its statistics are keyed by what determines its features: its class, its architecture as
``repr`` prints it (module configs included: sentence-transformers prints its pooling mode), every
weight and buffer, and its preprocessing (a processor's own serialisation, or a callable's source).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from .loading import LoadedModel, load_model


@dataclass(frozen=True)
class ModelCandidate:
    """One model object to rank.

    Attributes:
        name: what the ranking shows: ``name=`` if given, else the object's ``name_or_path``
            (``model_id`` of a LoadedModel, the path a SentenceTransformer was loaded from),
            else its class name.
        model: the object, used as it is (never moved or cast).
        processor: its processor, for a transformers model or a module without ``preprocess``.
        fingerprint: sha256 over class, architecture, weights and preprocessing (the cache key).
        num_parameters: its parameter count.
    """

    name: str
    model: Any = field(repr=False)
    processor: Any = field(default=None, repr=False)
    fingerprint: str = ""
    num_parameters: int = 0

    def load(self, *, device: Any = "auto", dtype: Any = "auto") -> LoadedModel:
        """The object ready for extraction (checks it is on ``device`` in ``dtype``)."""
        loaded = load_model(self.model, processor=self.processor, device=device, dtype=dtype)
        return dataclasses.replace(loaded, model_id=self.name)  # a LoadedModel given stays as is


def is_model_object(obj: Any) -> bool:
    """Whether ``obj`` is a model object rather than an id, a path or a Hub ``Candidate``."""
    return isinstance(obj, (torch.nn.Module, LoadedModel, ModelCandidate))


def as_model_candidate(
    obj: Any, *, name: str | None = None, processor: Any = None
) -> ModelCandidate:
    """Wrap a model object as a ranking candidate.

    Args:
        obj: a ``torch.nn.Module`` (a ``SentenceTransformer``, a ``PreTrainedModel``, or any
            module with a ``preprocess`` callable), a :class:`LoadedModel`, or a
            ``ModelCandidate`` (returned as is unless ``name`` or ``processor`` is given).
        name: the name to show in the ranking.
        processor: the processor of a transformers model, or the preprocess callable of a
            module that has none.

    Returns:
        A :class:`ModelCandidate`.

    Raises:
        TypeError: ``obj`` is not a model object, or ``name`` is not a non-empty string.

    Example:
        >>> import torch
        >>> from hf_logme.features.candidates import as_model_candidate
        >>> net = torch.nn.Linear(3, 2)
        >>> net.preprocess = lambda rows: torch.tensor(rows, dtype=torch.float32)
        >>> as_model_candidate(net, name="linear").name
        'linear'
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"name must be a non-empty string; got {name!r}.")
    if isinstance(obj, ModelCandidate):
        if name is None and processor is None:
            return obj
        obj, processor = obj.model, processor or obj.processor
    if not isinstance(obj, (torch.nn.Module, LoadedModel)):
        raise TypeError(
            f"a model object must be a torch.nn.Module (SentenceTransformer, PreTrainedModel, or "
            f"a module with a preprocess callable) or a LoadedModel; got {type(obj).__name__}."
        )
    module = obj.model if isinstance(obj, LoadedModel) else obj
    preprocessing = (
        obj.processor
        if isinstance(obj, LoadedModel)
        else processor or getattr(obj, "preprocess", None)
    )
    from .timm_models import is_timm_model, timm_preprocess

    if preprocessing is None and is_timm_model(obj):  # its data config decides its inputs
        preprocessing = timm_preprocess(obj)
    return ModelCandidate(
        name=name or _default_name(obj),
        model=obj,
        processor=processor,
        fingerprint=fingerprint(module, preprocessing),
        num_parameters=sum(p.numel() for p in module.parameters()),
    )


def fingerprint(module: torch.nn.Module, preprocessing: Any = None) -> str:
    """sha256 hex digest of a module's class, ``repr``, weights and buffers, and preprocessing."""
    digest = hashlib.sha256()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}\n".encode())
    digest.update(repr(module).encode())
    for key, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"\n{key}:{flat.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    digest.update(_describe_preprocessing(preprocessing).encode())
    return digest.hexdigest()


def _describe_preprocessing(preprocessing: Any) -> str:
    """A text that changes when the preprocessing does."""
    if preprocessing is None:
        return ""
    backend = getattr(preprocessing, "backend_tokenizer", None)  # fast tokenizers
    if backend is not None:
        return backend.to_str() + repr(getattr(preprocessing, "init_kwargs", {}))
    to_json = getattr(preprocessing, "to_json_string", None)  # image / audio processors
    if callable(to_json):
        return to_json()
    target = getattr(preprocessing, "__func__", preprocessing)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):  # built-ins, lambdas typed at a prompt
        return (
            f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"
        )


def _default_name(obj: Any) -> str:
    if isinstance(obj, LoadedModel):
        return obj.model_id
    from .sentence_transformers import is_sentence_transformer, sentence_transformer_name

    if is_sentence_transformer(obj):
        return sentence_transformer_name(obj)
    from .timm_models import is_timm_model, timm_model_name

    if is_timm_model(obj):
        return timm_model_name(obj)
    value = getattr(obj, "name_or_path", None)
    return value if isinstance(value, str) and value else type(obj).__name__
