"""Load a candidate once: model, processor, modality and pooling facts, ready to extract repeatedly.

``load_model`` accepts a Hub id or local folder (transformers checkpoints, and timm checkpoints:
see :mod:`.timm_models`), an already loaded transformers model (with its processor), a timm model
object, or any ``torch.nn.Module`` with a ``preprocess`` callable (torchvision, custom).
Models loaded here are placed on the chosen device and dtype; a model the caller passes in is used
where it is and never moved or cast (that would change the caller's object).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import (
    HubUnreachableError,
    ModelNotFoundError,
    RemoteCodeRequiredError,
    UnsafeWeightsError,
    UnsupportedModelError,
)
from ..estimators._validation import check_bool
from .options import resolve_device, resolve_dtype
from .pooling import PoolingChoice, auto_pooling, sentence_transformers_pooling

logger = logging.getLogger(__name__)

MODALITIES = ("text", "image", "audio")


@dataclass
class LoadedModel:
    """A model ready for :func:`hf_logme.extract_features`, reusable across calls.

    Attributes:
        model: the module that is called: the encoder alone for encoder-decoder models.
        processor: tokenizer, image processor or feature extractor (transformers models), or the
            ``preprocess`` callable (custom modules: raw inputs list -> tensor or dict of tensors).
        modality: "text", "image" or "audio"; None for custom modules, where the dataset's input
            column decides.
        model_id: Hub id, local path, or the class name of a custom module.
        revision: the commit sha the Hub revision resolved to; None for local folders and objects.
        device: where ``model`` runs.
        dtype: its floating dtype.
        is_transformers: whether ``model`` is a transformers ``PreTrainedModel``.
        config: the transformers config (None for custom modules).
        max_length: default truncation length for text (the checkpoint's sentence-transformers
            ``max_seq_length``, else the tokenizer's or the config's limit); None if unknown.
        st_pooling: the checkpoint's sentence-transformers pooling mode, if it has one.
        pooler_loaded: whether the checkpoint held the pooler weights (False: they were random).
        decoder_only: whether the model is a causal language model.
        load_s: seconds spent loading.
        forward_args: the input names ``model.forward`` accepts (empty if it takes
            ``**kwargs``); processor outputs it does not accept are dropped.
        classifier: with ``load_model(..., classifier=True)`` and a checkpoint whose
            ``config.architectures`` names a sequence, image or audio classification head: the
            whole classifier, of which ``model`` is the base (its source predictions); else None.
    """

    model: torch.nn.Module
    processor: Any
    modality: str | None
    model_id: str
    revision: str | None
    device: torch.device
    dtype: torch.dtype
    is_transformers: bool
    config: Any = None
    max_length: int | None = None
    st_pooling: str | None = None
    pooler_loaded: bool = True
    decoder_only: bool = False
    load_s: float = 0.0
    forward_args: frozenset[str] = field(default_factory=frozenset)
    classifier: torch.nn.Module | None = None

    def auto_pooling(self, layers: str = "last") -> PoolingChoice:
        """What ``pooling="auto"`` resolves to for this model (see :mod:`.pooling`)."""
        if not self.is_transformers:
            return PoolingChoice("mean", "custom module: token outputs are averaged")
        return auto_pooling(
            self.config,
            modality=self.modality or "text",
            st_pooling=self.st_pooling,
            pooler_loaded=self.pooler_loaded,
            decoder_only=self.decoder_only,
            layers=layers,
        )


def load_model(
    model: str | os.PathLike | torch.nn.Module | Checkpoint | LoadedModel,
    *,
    processor: Any = None,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    classifier: bool = False,
) -> LoadedModel:
    """Load (or wrap) a model and its processor for feature extraction.

    Args:
        model: a Hub id (``"org/name"``) or local folder (a timm checkpoint, whose config.json
            timm wrote, loads with timm: :mod:`hf_logme.features.timm_models`); a timm model
            object (its own data config and pooling); a transformers ``PreTrainedModel``
            (pass its tokenizer / image processor / feature extractor as ``processor``, or it is
            loaded from ``model.name_or_path``); any ``torch.nn.Module`` with a ``preprocess``
            attribute or a ``processor`` callable mapping a list of raw inputs (strings, PIL
            images, 1-D float arrays) to a tensor or a dict of tensors, whose forward returns
            (B, D) vectors or (B, T, D) states; a :class:`Checkpoint` from
            :func:`inspect_checkpoint`; or a ``LoadedModel`` (returned as is).
        processor: the processor for an object ``model``; ignored for ids (loaded with them).
        revision: Hub branch, tag or commit; resolved once to a commit sha so that config,
            weights and processor come from the same commit.
        token: Hub token for private or gated repos.
        trust_remote_code: allow running code from the model repo (off by default).
        use_safetensors: accept only safetensors weights (default). False also accepts pickle
            ``.bin`` weights, which can run arbitrary code when loaded.
        device: "auto" (cuda, then mps, then cpu) or a torch device. For a model object,
            "auto" keeps it where it is.
        dtype: "auto" (bfloat16 on GPUs that support it, else float32), a torch floating dtype
            or its name. For a model object, "auto" keeps its dtype.
        classifier: also load the checkpoint's classification head when its config names one
            (``LoadedModel.classifier``; ids and folders only).

    Returns:
        A :class:`LoadedModel`.

    Raises:
        RemoteCodeRequiredError: the architecture is defined by code in the repo and
            ``trust_remote_code`` is False.
        UnsafeWeightsError: the checkpoint has no safetensors weights and ``use_safetensors``.
        UnsupportedModelError: transformers has no AutoModel for it, or it needs several
            modalities at once (CLIP-like, vision-language).
        ValueError: an object model with a device or dtype other than the requested one, or
            without a processor.

    Example:
        >>> from hf_logme.features import load_model
        >>> loaded = load_model("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> loaded.modality, loaded.auto_pooling().name  # doctest: +SKIP
        ('text', 'mean')
    """
    # Checked first, whatever the model: a string "false" is truthy and would run remote code.
    trust_remote_code = check_bool("trust_remote_code", trust_remote_code)
    use_safetensors = check_bool("use_safetensors", use_safetensors)
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, (str, os.PathLike, Checkpoint)):
        target_device = resolve_device(device)
        target_dtype = resolve_dtype(dtype, target_device)
        start = time.perf_counter()
        if not isinstance(model, Checkpoint):
            model = inspect_checkpoint(
                model, revision=revision, token=token, trust_remote_code=trust_remote_code
            )
        loaded = _load_checkpoint(
            model,
            use_safetensors=use_safetensors,
            device=target_device,
            dtype=target_dtype,
            classifier=classifier,
        )
        loaded.load_s = time.perf_counter() - start
        return loaded
    from .sentence_transformers import is_sentence_transformer, wrap_sentence_transformer

    if is_sentence_transformer(model):  # its own modules: Pooling, Dense, Normalize...
        return wrap_sentence_transformer(model, device=device, dtype=dtype)
    from .timm_models import is_timm_model, wrap_timm_model

    if is_timm_model(model):  # its own data config and pooling
        return wrap_timm_model(model, processor=processor, device=device, dtype=dtype)
    if isinstance(model, torch.nn.Module):
        return _wrap_module(model, processor=processor, device=device, dtype=dtype, token=token)
    raise TypeError(
        f"model must be a Hub id or local path, a transformers PreTrainedModel, a torch.nn.Module "
        f"with a preprocess callable, or a LoadedModel; got {type(model).__name__}."
    )


# ---------------------------------------------------------------------------------------------
# From a Hub id or a local folder


@dataclass(frozen=True)
class Checkpoint:
    """A Hub or local checkpoint whose config has been read but whose weights are not loaded.

    Lets a caller learn the modality (and fail on remote code or unknown architectures) before
    paying for the weights. ``revision`` is the commit sha a Hub revision resolved to (None for
    a local folder), so the later load reads the same files. ``library`` is "transformers", or
    "timm" for a checkpoint whose config.json timm wrote (``config`` is then that dict).
    """

    model_id: str
    revision: str | None
    config: Any
    modality: str
    trust_remote_code: bool
    token: str | bool | None = field(default=None, repr=False)
    library: str = "transformers"


def inspect_checkpoint(
    model_id: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
) -> Checkpoint:
    """Read a checkpoint's config (not its weights): modality, architecture, resolved revision.

    Raises:
        RemoteCodeRequiredError, UnsupportedModelError: as :func:`load_model`.
        huggingface_hub.errors.HFValidationError: a malformed Hub id that is not a local folder.
    """
    from transformers import AutoConfig, PretrainedConfig

    trust_remote_code = check_bool("trust_remote_code", trust_remote_code)
    model_id = str(model_id)
    resolved = None  # local folders have no commit
    if os.path.isdir(model_id):
        _check_local_folder(model_id)
    else:
        resolved = _resolve_hub_revision(model_id, revision=revision, token=token)
    from .timm_models import check_timm_config, is_timm_config

    # The file as written (transformers would read a timm config as its own timm_wrapper).
    try:
        raw = _optional_json(model_id, "config.json", revision=resolved, token=token)
    except ValueError:  # not JSON: transformers' own reading below says so
        raw = None
    if is_timm_config(raw):  # timm/... repos: timm's own config, no model_type
        check_timm_config(model_id, raw)
        return Checkpoint(
            model_id, resolved, raw, "image", trust_remote_code, token, library="timm"
        )
    config_dict, _ = PretrainedConfig.get_config_dict(model_id, revision=resolved, token=token)
    _check_remote_code(model_id, config_dict, trust_remote_code)
    try:
        config = AutoConfig.from_pretrained(
            model_id, revision=resolved, token=token, trust_remote_code=trust_remote_code
        )
    except ValueError as err:
        raise UnsupportedModelError(
            f"{model_id}: transformers cannot read its config ({err}).", model_id=model_id
        ) from err
    _check_auto_model(model_id, config, config_dict, trust_remote_code)
    return Checkpoint(
        model_id, resolved, config, modality_of(config, model_id), trust_remote_code, token
    )


#: ``config.architectures`` suffix -> the Auto class that loads that classification head.
_CLASSIFIER_CLASSES = {
    "ForSequenceClassification": "AutoModelForSequenceClassification",
    "ForImageClassification": "AutoModelForImageClassification",
    "ForAudioClassification": "AutoModelForAudioClassification",
}


def _check_local_folder(folder: str) -> None:
    """A local folder must hold a transformers config (not "upgrade transformers" later)."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        files = sorted(p.name for p in Path(folder).iterdir())[:8]
        raise UnsupportedModelError(
            f"{folder}: this folder has no config.json, so it is not a transformers checkpoint "
            f"(it holds {files or 'nothing'}). Pass the folder save_pretrained wrote, or the "
            f"model as a torch module with a preprocess callable.",
            model_id=folder,
        )


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be a local path, never a Hub id (``./x``, ``/x``, ``~/x``,
    ``x/``, ``a/b/c``, ``C:\\x``)."""
    return (
        name.startswith((".", "/", "~"))
        or name.endswith(("/", os.sep))
        or name.count("/") > 1
        or "\\" in name
        or (os.altsep is not None and os.altsep in name)
    )


def _resolve_hub_revision(model_id: str, *, revision: str | None, token: str | bool | None) -> str:
    """The commit sha of a Hub model, with "not found" errors that say a local path was tried."""
    import huggingface_hub
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionResolutionError,
    )

    where = os.path.abspath(os.path.expanduser(model_id))
    if looks_like_path(model_id):
        what = "is a file, not a folder" if os.path.exists(where) else "does not exist"
        raise ModelNotFoundError(
            f"{model_id}: no such model folder ({where} {what}).", model_id=model_id
        )
    try:
        huggingface_hub.utils.validate_repo_id(model_id)
        # Load everything by commit sha: the same files for config, processor and weights, and
        # never "main", for which transformers may ask a Space to convert pickle weights.
        return huggingface_hub.resolve_revision(model_id, revision=revision, token=token).resolved
    except HFValidationError as err:
        raise ModelNotFoundError(
            f"{model_id}: no such model folder ({where} does not exist), and not a valid Hub id.",
            model_id=model_id,
        ) from err
    except GatedRepoError:
        raise
    except RepositoryNotFoundError as err:
        raise ModelNotFoundError(
            f"{model_id}: not found, neither as a local folder ({where}) nor on the Hub (a "
            f"private repo needs token=).",
            model_id=model_id,
        ) from err
    except RevisionResolutionError as err:
        raise HubUnreachableError(
            f"{model_id}: not a local folder ({where} does not exist), and the Hub could not be "
            f"reached to look it up. Check the path, or the connection and HF_HUB_OFFLINE.",
            model_id=model_id,
        ) from err


def check_hub_config(
    model_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Refuse a Hub checkpoint from its ``config.json`` alone, before any weights are fetched.

    Downloads only ``config.json`` (into the Hub cache, where the later load finds it) and
    applies the same remote-code and known-architecture checks as :func:`inspect_checkpoint`.
    Call it before downloading a snapshot: a repo whose architecture is its own code costs one
    small file, not its weights.

    Returns:
        The config as a dict.

    Raises:
        TypeError: ``trust_remote_code`` is not a bool.
        RemoteCodeRequiredError: the architecture is code in the repo and ``trust_remote_code``
            is False.
        UnsupportedModelError: an architecture this transformers does not know, without code.
    """
    from huggingface_hub import hf_hub_download

    trust_remote_code = check_bool("trust_remote_code", trust_remote_code)
    path = hf_hub_download(
        model_id, "config.json", revision=revision, token=token, cache_dir=cache_dir
    )
    config_dict = json.loads(Path(path).read_text())
    from .timm_models import check_timm_config, is_timm_config

    if is_timm_config(config_dict):  # needs timm, with this architecture; runs no repo code
        check_timm_config(model_id, config_dict)
        return config_dict
    _check_remote_code(model_id, config_dict, trust_remote_code)
    return config_dict


def classifier_class(config: Any) -> str | None:
    """The Auto class of the classification head ``config.architectures`` names, or None."""
    for architecture in getattr(config, "architectures", None) or ():
        for suffix, auto_class in _CLASSIFIER_CLASSES.items():
            if architecture.endswith(suffix):
                return auto_class
    return None


def _load_checkpoint(
    checkpoint: Checkpoint,
    *,
    use_safetensors: bool,
    device: torch.device,
    dtype: torch.dtype,
    classifier: bool = False,
) -> LoadedModel:
    if checkpoint.library == "timm":
        from .timm_models import load_timm_checkpoint

        return load_timm_checkpoint(
            checkpoint.model_id,
            checkpoint.config,
            revision=checkpoint.revision,
            token=checkpoint.token,
            use_safetensors=use_safetensors,
            device=device,
            dtype=dtype,
            classifier=classifier,
        )
    import transformers

    head_class = classifier_class(checkpoint.config) if classifier else None
    auto_class = getattr(transformers, head_class or "AutoModel")
    model_id, config, modality = checkpoint.model_id, checkpoint.config, checkpoint.modality
    hub = {"revision": checkpoint.revision, "token": checkpoint.token}
    trust_remote_code = checkpoint.trust_remote_code
    processor = _load_processor(model_id, modality, trust_remote_code=trust_remote_code, **hub)
    st_pooling, st_max_length = _sentence_transformers_config(model_id, **hub)
    try:
        loaded, info = auto_class.from_pretrained(
            model_id,
            config=config,
            trust_remote_code=trust_remote_code,
            use_safetensors=True if use_safetensors else None,
            dtype=dtype,
            output_loading_info=True,
            **hub,
        )
    except OSError as err:
        if use_safetensors and "safetensors" in str(err):
            raise UnsafeWeightsError(
                f"{model_id}: no safetensors weights (model.safetensors or its index) were found. "
                f"If it has pickle weights (pytorch_model.bin) and you trust it, pass "
                f"use_safetensors=False: loading pickle files can run arbitrary code.",
                model_id=model_id,
            ) from err
        raise
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        logger.info(
            "%s: %d weights missing from the checkpoint were initialised at random: %s",
            model_id,
            len(missing),
            missing[:10],
        )
    head = loaded if head_class is not None else None
    result = _describe(
        loaded.base_model if head is not None else loaded,
        processor=processor,
        model_id=model_id,
        revision=checkpoint.revision,
        device=device,
        dtype=dtype,
        st_config=(st_pooling, st_max_length),
        pooler_loaded=not any(
            key.split(".")[0] == "pooler" or ".pooler." in key for key in missing
        ),
    )
    result.classifier = head
    (head if head is not None else result.model).to(device).eval()
    return result


def _describe(
    model: Any,
    *,
    processor: Any,
    model_id: str,
    revision: str | None,
    device: torch.device,
    dtype: torch.dtype,
    st_config: tuple[str | None, int | None],
    pooler_loaded: bool = True,
) -> LoadedModel:
    """A LoadedModel for a transformers model: the module to call and the facts pooling needs."""
    config = model.config
    modality = modality_of(config, model_id)
    st_pooling, st_max_length = st_config
    module = model.get_encoder() if getattr(config, "is_encoder_decoder", False) else model
    return LoadedModel(
        model=module,
        processor=processor,
        modality=modality,
        model_id=model_id,
        revision=revision,
        device=device,
        dtype=dtype,
        is_transformers=True,
        config=config,
        max_length=(st_max_length or _text_max_length(processor, config))
        if modality == "text"
        else None,
        st_pooling=st_pooling,
        pooler_loaded=pooler_loaded,
        decoder_only=_is_decoder_only(config),
        forward_args=_forward_args(module),
    )


def _check_remote_code(model_id: str, config_dict: dict[str, Any], trust_remote_code: bool) -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    model_type = config_dict.get("model_type")
    auto_map = config_dict.get("auto_map") or {}
    known = model_type in CONFIG_MAPPING_NAMES
    if not known and auto_map and not trust_remote_code:
        raise RemoteCodeRequiredError(
            f"{model_id}: config requires trust_remote_code=True (architecture "
            f"{model_type!r} is not in transformers, its code is in the repo); pass "
            f"trust_remote_code=True to allow it, after reading that code.",
            model_id=model_id,
        )
    if not known and not auto_map:
        raise UnsupportedModelError(
            f"{model_id}: model_type {model_type!r} is not known to this transformers version "
            f"and the repo has no code for it; upgrade transformers or rank another checkpoint.",
            model_id=model_id,
        )
    if known and "AutoModel" in auto_map and not trust_remote_code:
        logger.warning(
            "%s: the repo ships its own AutoModel code; using transformers' built-in %r class "
            "instead (pass trust_remote_code=True to use the repo's code).",
            model_id,
            model_type,
        )


def _check_auto_model(
    model_id: str, config: Any, config_dict: dict[str, Any], trust_remote_code: bool
) -> None:
    """Raise UnsupportedModelError before any download when AutoModel cannot load the config."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    remote = trust_remote_code and "AutoModel" in (config_dict.get("auto_map") or {})
    if not remote and getattr(config, "model_type", None) not in MODEL_MAPPING_NAMES:
        raise UnsupportedModelError(
            f"{model_id}: transformers has no AutoModel for {type(config).__name__} "
            f"(model_type {config.model_type!r}); rank another checkpoint of it, or pass the "
            f"model as a torch module with a preprocess callable.",
            model_id=model_id,
        )


def modality_of(config: Any, model_id: str) -> str:
    """ "text", "image" or "audio" from the task mappings that list the config's model type.

    Raises:
        UnsupportedModelError: the model needs two modalities at once (CLIP, vision-language).
    """
    from transformers.models.auto import modeling_auto as auto

    model_type = getattr(config, "model_type", "")
    audio = (
        auto.MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES,
        auto.MODEL_FOR_CTC_MAPPING_NAMES,
        auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
        auto.MODEL_FOR_AUDIO_XVECTOR_MAPPING_NAMES,
    )
    if any(model_type in mapping for mapping in audio):
        return "audio"
    sub_configs = [
        name
        for name in ("text_config", "vision_config", "audio_config")
        if getattr(config, name, None) is not None
    ]
    if len(sub_configs) > 1:
        raise UnsupportedModelError(
            f"{model_id}: a {model_type} model takes several modalities at once "
            f"({', '.join(sub_configs)}); pass its single-modality tower as a torch module with a "
            f"preprocess callable instead.",
            model_id=model_id,
        )
    image = (auto.MODEL_FOR_IMAGE_MAPPING_NAMES, auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)
    if any(model_type in mapping for mapping in image):
        return "image"
    return "text"


def _is_decoder_only(config: Any) -> bool:
    from transformers.models.auto import modeling_auto as auto

    model_type = getattr(config, "model_type", "")
    return (
        not getattr(config, "is_encoder_decoder", False)
        and model_type in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def _load_processor(model_id: str, modality: str, *, trust_remote_code: bool, **hub: Any) -> Any:
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer

    auto_class = {
        "text": AutoTokenizer,
        "image": AutoImageProcessor,
        "audio": AutoFeatureExtractor,
    }[modality]
    try:
        return auto_class.from_pretrained(model_id, trust_remote_code=trust_remote_code, **hub)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise RemoteCodeRequiredError(
                f"{model_id}: its {auto_class.__name__[4:]} requires trust_remote_code=True; pass "
                f"it to allow the repo's code to run, after reading that code.",
                model_id=model_id,
            ) from err
        raise


def _sentence_transformers_config(model_id: str, **hub: Any) -> tuple[str | None, int | None]:
    """The pooling mode and max_seq_length of a sentence-transformers checkpoint (or Nones)."""
    modules = _optional_json(model_id, "modules.json", **hub)
    if not isinstance(modules, list):
        return None, None
    pooling = None
    for module in modules:
        if str(module.get("type", "")).endswith("models.Pooling"):
            path = str(module.get("path", "")).strip("/")
            config = _optional_json(
                model_id, f"{path}/config.json" if path else "config.json", **hub
            )
            if isinstance(config, dict):
                pooling = sentence_transformers_pooling(config)
    st_config = _optional_json(model_id, "sentence_bert_config.json", **hub)
    max_length = st_config.get("max_seq_length") if isinstance(st_config, dict) else None
    return pooling, int(max_length) if isinstance(max_length, int) else None


def _optional_json(model_id: str, filename: str, **hub: Any) -> Any:
    """A JSON file of the model repo or folder, or None if it has none (or it can't be fetched)."""
    if os.path.isdir(model_id):
        path = Path(model_id, filename)
        return json.loads(path.read_text()) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(model_id, filename, **hub)).read_text())
    except EntryNotFoundError:
        return None


def _text_max_length(tokenizer: Any, config: Any) -> int | None:
    """The tighter of the tokenizer's model_max_length (when it is a real limit) and the config's
    number of position embeddings; None when neither is known."""
    limits = [
        value
        for value in (
            getattr(tokenizer, "model_max_length", None),
            getattr(config, "max_position_embeddings", None),
        )
        if isinstance(value, int) and 0 < value < 1_000_000
    ]
    return min(limits) if limits else None


def _forward_args(module: torch.nn.Module) -> frozenset[str]:
    """Names the module's forward accepts (empty when it takes **kwargs: anything goes)."""
    parameters = inspect.signature(module.forward).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return frozenset()
    return frozenset(p.name for p in parameters)


# ---------------------------------------------------------------------------------------------
# From a model object


def _wrap_module(
    module: torch.nn.Module,
    *,
    processor: Any,
    device: str | torch.device,
    dtype: str | torch.dtype,
    token: str | bool | None,
) -> LoadedModel:
    from transformers import PreTrainedModel

    current_device, current_dtype = _placement(module)
    if not (isinstance(device, str) and device == "auto"):
        wanted = resolve_device(device)
        if wanted.type != current_device.type or (
            wanted.index is not None and wanted.index != current_device.index
        ):
            raise ValueError(
                f"device={str(device)!r} but the model you passed is on {current_device}; "
                f"extract_features does not move a model it did not load (that would change your "
                f"object): call model.to({str(wanted)!r}) first, or pass device='auto'."
            )
    if not (isinstance(dtype, str) and dtype == "auto"):
        wanted_dtype = resolve_dtype(dtype, current_device)
        if wanted_dtype != current_dtype:
            raise ValueError(
                f"dtype={dtype!r} but the model you passed is in {current_dtype}; "
                f"extract_features does not cast a model it did not load: call "
                f"model.to({wanted_dtype}) first, or pass dtype='auto'."
            )
    if isinstance(module, PreTrainedModel):
        return _wrap_pretrained(module, processor, current_device, current_dtype, token)
    preprocess: Callable[..., Any] | None = processor or getattr(module, "preprocess", None)
    if not callable(preprocess):
        raise ValueError(
            f"a {type(module).__name__} is not a transformers model, so it needs a preprocess "
            f"callable (a list of raw inputs -> tensor or dict of tensors): set "
            f"model.preprocess or pass processor=."
        )
    return LoadedModel(
        model=module,
        processor=preprocess,
        modality=None,
        model_id=str(getattr(module, "name_or_path", None) or type(module).__name__),
        revision=None,
        device=current_device,
        dtype=current_dtype,
        is_transformers=False,
        forward_args=_forward_args(module),
    )


def _wrap_pretrained(
    model: Any, processor: Any, device: torch.device, dtype: torch.dtype, token: str | bool | None
) -> LoadedModel:
    config = model.config
    model_id = str(getattr(model, "name_or_path", "") or type(model).__name__)
    modality = modality_of(config, model_id)
    if processor is None:
        if not model_id or not (os.path.isdir(model_id) or "/" in model_id):
            raise ValueError(
                f"no processor given for the {type(model).__name__} you passed and none can be "
                f"found from its name_or_path {model_id!r}: pass processor= (its tokenizer, image "
                f"processor or feature extractor)."
            )
        processor = _load_processor(model_id, modality, trust_remote_code=False, token=token)
    # A local sentence-transformers folder still says how it pools and truncates.
    st_config = _sentence_transformers_config(model_id) if os.path.isdir(model_id) else (None, None)
    return _describe(
        model,
        processor=processor,
        model_id=model_id,
        revision=None,
        device=device,
        dtype=dtype,
        st_config=st_config,
    )


def _placement(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and dtype of a module's first floating parameter (cpu, float32 if none)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32
