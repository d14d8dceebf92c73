"""Which vector a new task head would consume, and how to compute it from a model's outputs.

``pooling="auto"`` follows, in order:

1. The checkpoint's sentence-transformers ``Pooling`` module config, when it has one: that is how
   its authors trained and use its embeddings.
2. The model's own classification head in transformers (read from each architecture's
   ``*ForSequenceClassification`` / ``*ForImageClassification`` code): BERT-like heads read the
   ``pooler`` output, RoBERTa-like heads the first token (``cls``), ViT-like heads the first token,
   CNN backbones their pooled output, a few vision heads the mean of the patch tokens. ModernBERT's
   config says which (``classifier_pooling``).
3. Encoder-decoder models (T5, BART...): the encoder alone, averaged over the attention mask.
4. Decoder-only language models: the last non-padding token (what their sequence-classification
   head reads, and the only position that has seen the whole input under causal attention).
5. Anything else, and every audio encoder: the mean over tokens or time steps.

A ``pooler`` choice whose weights were not in the checkpoint (randomly initialised at load time)
falls back to ``cls``, the token that pooler projects. With ``layers="all"`` there is no per-layer
pooler, so ``pooler`` becomes ``cls`` for text and ``mean`` (over positions) for vision backbones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)

# model_type -> what the transformers classification head of that architecture consumes.
_HEAD_POOLING: dict[str, str] = {
    # Text: heads that read ``pooler_output`` (dense + tanh over the first token).
    **dict.fromkeys(
        "albert bert canine ernie fnet gte layoutlm luke markuplm megatron-bert mobilebert "
        "nomic_bert rembert roc_bert squeezebert tapas".split(),
        "pooler",
    ),
    # Text: heads that read the first token of the last hidden state.
    **dict.fromkeys(
        "big_bird camembert convbert data2vec-text deberta deberta-v2 distilbert electra esm "
        "flaubert funnel ibert layoutlmv3 lilt longformer mpnet mra nystromformer roberta "
        "roberta-prelayernorm roformer xlm xlm-roberta xlm-roberta-xl xmod yoso".split(),
        "cls",
    ),
    # XLNet's sequence summary reads the last token.
    "xlnet": "last",
    # Vision: heads that read the backbone's pooled output.
    **dict.fromkeys(
        "beit bit convnext convnextv2 data2vec-vision dinat donut-swin efficientnet focalnet "
        "hiera mobilenet_v1 mobilenet_v2 mobilevit mobilevitv2 regnet resnet swin swinv2".split(),
        "pooler",
    ),
    # Vision: heads that read the class token (DINOv2's reads it concatenated with the patch mean).
    **dict.fromkeys("deit dinov2 dinov2_with_registers pvt vit vit_msn".split(), "cls"),
    # Vision: heads that average the patch tokens.
    **dict.fromkeys(
        "clip_vision_model ijepa levit poolformer pvt_v2 segformer siglip_vision_model "
        "swiftformer".split(),
        "mean",
    ),
}

# sentence-transformers Pooling config keys -> our pooling names.
_ST_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "last",
}
_ST_UNSUPPORTED = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens")


@dataclass(frozen=True)
class PoolingChoice:
    """A resolved pooling: its name and why it was chosen (shown in logs and rankings)."""

    name: str
    reason: str


def sentence_transformers_pooling(config: Mapping[str, Any]) -> str | None:
    """The single pooling mode of a sentence-transformers ``Pooling`` config, or None.

    None when the config concatenates several modes or uses one this package does not implement
    (mean-sqrt-len, weighted mean); the architecture's rule then applies, with a warning.
    """
    if isinstance(config.get("pooling_mode"), str):  # newer single-key format
        mode = {"lasttoken": "last", "mean": "mean", "cls": "cls", "max": "max"}.get(
            config["pooling_mode"]
        )
        if mode is None:
            logger.warning(
                "sentence-transformers pooling %r is not supported.", config["pooling_mode"]
            )
        return mode
    chosen = [name for key, name in _ST_MODES.items() if config.get(key)]
    unsupported = [key for key in _ST_UNSUPPORTED if config.get(key)]
    if len(chosen) == 1 and not unsupported:
        return chosen[0]
    logger.warning(
        "sentence-transformers pooling config %s combines or uses modes this package does not "
        "implement; using the architecture's pooling instead.",
        {k: v for k, v in config.items() if k.startswith("pooling_mode")},
    )
    return None


def auto_pooling(
    config: Any,
    *,
    modality: str,
    st_pooling: str | None = None,
    pooler_loaded: bool = True,
    decoder_only: bool = False,
    layers: str = "last",
) -> PoolingChoice:
    """Resolve ``pooling="auto"`` for a transformers model (see the module docstring).

    Args:
        config: the model's ``PretrainedConfig``.
        modality: "text", "image" or "audio".
        st_pooling: the checkpoint's sentence-transformers pooling, if any.
        pooler_loaded: whether the checkpoint holds the pooler's weights.
        decoder_only: whether the model is a causal language model.
        layers: "last" or "all".

    Returns:
        The pooling name and the reason for it.
    """
    model_type = getattr(config, "model_type", "")
    if st_pooling is not None:
        choice = PoolingChoice(st_pooling, "the checkpoint's sentence-transformers pooling config")
    elif modality == "audio":
        choice = PoolingChoice("mean", "audio encoders are averaged over time")
    elif model_type in _HEAD_POOLING:
        choice = PoolingChoice(
            _HEAD_POOLING[model_type], f"what the {model_type} classification head reads"
        )
    elif getattr(config, "classifier_pooling", None) in ("cls", "mean"):
        choice = PoolingChoice(config.classifier_pooling, "the config's classifier_pooling")
    elif getattr(config, "is_encoder_decoder", False):
        choice = PoolingChoice("mean", "encoder-decoder model: the encoder, averaged")
    elif decoder_only:
        choice = PoolingChoice("last", "decoder-only model: the last non-padding token")
    else:
        choice = PoolingChoice("mean", f"no known head for {model_type or 'this model'}: the mean")
    if choice.name == "pooler" and layers == "all":
        name = "cls" if modality == "text" else "mean"
        choice = PoolingChoice(
            name, choice.reason + f"; layers='all' has no per-layer pooler, so {name}"
        )
    elif choice.name == "pooler" and not pooler_loaded:
        choice = PoolingChoice(
            "cls", choice.reason + "; its pooler weights are not in the checkpoint, so cls"
        )
    return choice


def pool(hidden: torch.Tensor, mask: torch.Tensor | None, name: str) -> torch.Tensor:
    """Pool token states (B, T, D) - or CNN maps (B, C, H, W) - to float32 vectors (B, D).

    Args:
        hidden: the states of one layer.
        mask: (B, T) 1 for real tokens and 0 for padding, on either side; None when every
            position is real (images, unpadded audio).
        name: "cls", "mean", "max" or "last" ("pooler" is read from the model's outputs).

    Returns:
        A float32 (B, D) tensor on ``hidden``'s device.

    Raises:
        ValueError: ``cls`` or ``last`` on a convolutional feature map, which has no token order.
    """
    if hidden.ndim == 4:  # (B, C, H, W) -> (B, H*W, C)
        if name in ("cls", "last"):
            raise ValueError(
                f"pooling={name!r} needs a token sequence, but this model outputs convolutional "
                f"feature maps of shape {tuple(hidden.shape)}; use pooling='mean', 'max' or "
                f"'pooler'."
            )
        hidden = hidden.flatten(2).transpose(1, 2)
    if hidden.ndim != 3:
        raise ValueError(f"cannot pool hidden states of shape {tuple(hidden.shape)}; expected 3-D.")
    hidden = hidden.float()
    if name == "cls":
        if mask is not None:
            first = mask.int().argmax(dim=1)  # first real token, whatever the padding side
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
        return hidden[:, 0]
    if name == "last":
        if mask is None:
            return hidden[:, -1]
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (positions * mask.long()).argmax(dim=1)  # rightmost real token
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if name == "mean":
        if mask is None:
            return hidden.mean(dim=1)
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    if name == "max":
        if mask is None:
            return hidden.amax(dim=1)
        return hidden.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).amax(dim=1)
    raise ValueError(f"unknown token pooling {name!r}; use 'cls', 'mean', 'max' or 'last'.")
