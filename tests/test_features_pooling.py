"""Pooling: the vectorised masked poolings, and what pooling="auto" picks per architecture."""

from __future__ import annotations

import importlib
import inspect
import re

import numpy as np
import pytest
import torch

from hf_logme.features.pooling import (
    _HEAD_POOLING,
    auto_pooling,
    pool,
    sentence_transformers_pooling,
)


def _states_and_masks():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    lengths = [5, 2, 3]
    right = torch.tensor([[1] * n + [0] * (5 - n) for n in lengths])
    left = torch.tensor([[0] * (5 - n) + [1] * n for n in lengths])
    return hidden, lengths, right, left


@pytest.mark.parametrize("side", ["right", "left"])
def test_masked_poolings_use_only_real_tokens(side):
    hidden, lengths, right, left = _states_and_masks()
    mask = right if side == "right" else left
    array = hidden.numpy()
    for row, n in enumerate(lengths):
        real = array[row, :n] if side == "right" else array[row, 5 - n :]
        expected = {"cls": real[0], "last": real[-1], "mean": real.mean(0), "max": real.max(0)}
        for name, value in expected.items():
            np.testing.assert_allclose(pool(hidden, mask, name)[row].numpy(), value, rtol=1e-6)


def test_unmasked_and_convolutional_states():
    hidden = torch.randn(2, 6, 3)
    torch.testing.assert_close(pool(hidden, None, "mean"), hidden.mean(1))
    torch.testing.assert_close(pool(hidden, None, "last"), hidden[:, -1])
    maps = torch.randn(2, 3, 4, 5)  # (B, C, H, W)
    torch.testing.assert_close(pool(maps, None, "mean"), maps.mean(dim=(2, 3)))
    torch.testing.assert_close(pool(maps, None, "max"), maps.amax(dim=(2, 3)))
    with pytest.raises(ValueError, match="pooling='cls' needs a token sequence.*feature maps"):
        pool(maps, None, "cls")
    with pytest.raises(ValueError, match="cannot pool hidden states of shape"):
        pool(torch.randn(2, 3), None, "mean")
    with pytest.raises(ValueError, match="unknown token pooling 'pooler'"):
        pool(hidden, None, "pooler")


def test_bfloat16_states_are_pooled_in_float32():
    hidden = torch.randn(2, 7, 3).to(torch.bfloat16)
    out = pool(hidden, torch.ones(2, 7), "mean")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, hidden.float().mean(1))


def test_sentence_transformers_configs(caplog):
    assert sentence_transformers_pooling({"pooling_mode_mean_tokens": True}) == "mean"
    assert sentence_transformers_pooling({"pooling_mode_cls_token": True}) == "cls"
    assert sentence_transformers_pooling({"pooling_mode_lasttoken": True}) == "last"
    assert sentence_transformers_pooling({"pooling_mode": "lasttoken"}) == "last"
    assert (
        sentence_transformers_pooling(
            {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}
        )
        is None
    )
    assert "combines or uses modes this package does not implement" in caplog.text
    assert sentence_transformers_pooling({"pooling_mode_weightedmean_tokens": True}) is None
    assert sentence_transformers_pooling({"pooling_mode": "weightedmean"}) is None


def test_auto_pooling_rules():
    from transformers import BertConfig, GPT2Config, ModernBertConfig, T5Config, ViTConfig

    assert auto_pooling(BertConfig(), modality="text").name == "pooler"
    assert auto_pooling(BertConfig(), modality="text", pooler_loaded=False).name == "cls"
    assert auto_pooling(BertConfig(), modality="text", layers="all").name == "cls"
    assert auto_pooling(BertConfig(), modality="text", st_pooling="mean").name == "mean"
    assert auto_pooling(GPT2Config(), modality="text", decoder_only=True).name == "last"
    assert auto_pooling(T5Config(), modality="text").name == "mean"
    assert auto_pooling(ModernBertConfig(classifier_pooling="mean"), modality="text").name == "mean"
    assert auto_pooling(ViTConfig(), modality="image").name == "cls"
    from transformers import ConvNextConfig, Wav2Vec2Config

    assert auto_pooling(ConvNextConfig(), modality="image").name == "pooler"
    assert auto_pooling(ConvNextConfig(), modality="image", layers="all").name == "mean"
    assert auto_pooling(Wav2Vec2Config(), modality="audio").name == "mean"


def test_decoder_only_and_modality_detection():
    from transformers import BertConfig, CLIPConfig, GPT2Config, T5Config, ViTConfig, WhisperConfig

    from hf_logme.errors import UnsupportedModelError
    from hf_logme.features.loading import _is_decoder_only, modality_of

    assert _is_decoder_only(GPT2Config()) and not _is_decoder_only(BertConfig())
    assert not _is_decoder_only(T5Config())
    assert modality_of(ViTConfig(), "m") == "image" and modality_of(WhisperConfig(), "m") == "audio"
    assert modality_of(BertConfig(), "m") == "text"
    with pytest.raises(UnsupportedModelError, match="takes several modalities at once"):
        modality_of(CLIPConfig(), "m")


def _head(model_type: str) -> tuple[str, str]:
    """Source of the architecture's classification forward, and of its helper head classes."""
    import transformers
    from transformers.models.auto import modeling_auto as auto

    names = (
        auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(model_type)
        or auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES.get(model_type)
        or auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES[
            model_type.removesuffix("_vision_model")
        ]
    )
    cls = getattr(transformers, names[0] if isinstance(names, tuple) else names)
    module = importlib.import_module(cls.__module__)
    helpers = "".join(
        inspect.getsource(obj)
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and obj.__module__ == module.__name__
        and re.search(r"(ClassificationHead|ContextPooler|SequenceSummary)$", name)
    )
    return inspect.getsource(cls.forward), helpers


@pytest.mark.parametrize("model_type", sorted(_HEAD_POOLING))
def test_head_table_agrees_with_the_installed_transformers_code(model_type):
    """Each entry is what that architecture's own classification head reads, per its source."""
    forward, helpers = _head(model_type)
    reads_pooler = bool(re.search(r"pooler_output|outputs\[1\]", forward))
    expected = _HEAD_POOLING[model_type]
    assert reads_pooler == (expected == "pooler")
    if expected == "cls":
        assert re.search(r"\[:, 0\]|\[:, 0, :\]|summary_type == \"first\"", forward + helpers)
    elif expected == "mean":
        assert re.search(r"\.mean\(|torch\.mean\(", forward)
    elif expected == "last":
        assert 'summary_type == "last"' in helpers
