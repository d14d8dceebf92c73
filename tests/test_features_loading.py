"""Loading candidates (ids, folders, objects, custom modules), their errors, and the batch loop."""

from __future__ import annotations

import json
import logging

import datasets
import numpy as np
import pytest
import torch
from tiny_models import build, food_reviews

import hf_logme
from hf_logme.errors import (
    NonFiniteFeaturesError,
    RemoteCodeRequiredError,
    UnsafeWeightsError,
    UnsupportedModelError,
)
from hf_logme.features import load_model


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return build("distilbert", tmp_path_factory.mktemp("loading"))


@pytest.fixture(scope="module")
def reviews():
    return food_reviews(12)


# ---------------------------------------------------------------------------------------------
# Refusals with the error classes a ranking records


def test_remote_code_is_refused_unless_allowed(tmp_path, reviews):
    config = {
        "model_type": "fancy",
        "architectures": ["FancyModel"],
        "auto_map": {"AutoConfig": "code.FancyConfig", "AutoModel": "code.FancyModel"},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RemoteCodeRequiredError, match="requires trust_remote_code=True .*'fancy'"):
        hf_logme.extract_features(str(tmp_path), reviews)


def test_unknown_architecture_is_unsupported(tmp_path, reviews):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "not-a-model"}))
    with pytest.raises(UnsupportedModelError, match="model_type 'not-a-model' is not known"):
        hf_logme.extract_features(str(tmp_path), reviews)


def test_configs_without_an_auto_model_are_unsupported_before_any_download(tmp_path, reviews):
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    CONFIG_MAPPING["blt_patcher"]().save_pretrained(tmp_path)  # a sub-model with no AutoModel
    with pytest.raises(UnsupportedModelError, match="no AutoModel for BltPatcherConfig"):
        hf_logme.extract_features(str(tmp_path), reviews)


def test_two_modality_models_are_unsupported(tmp_path, reviews):
    from transformers import CLIPConfig

    CLIPConfig().save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="takes several modalities at once"):
        hf_logme.extract_features(str(tmp_path), reviews)


def test_a_text_model_on_an_image_dataset_is_unsupported(bert):
    pixels = [np.zeros((4, 4, 3), np.uint8)] * 2
    images = datasets.Dataset.from_dict({"pixels": pixels, "label": [0, 1]})
    with pytest.raises(
        UnsupportedModelError, match="reads text but the dataset has no text column"
    ):
        hf_logme.extract_features(str(bert), images)


def test_pickle_weights_need_an_opt_in(tmp_path, bert, reviews):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(bert)
    model.config.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(bert).save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(UnsafeWeightsError, match="no safetensors weights.*use_safetensors=False"):
        hf_logme.extract_features(str(tmp_path), reviews)
    allowed = hf_logme.extract_features(
        str(tmp_path), reviews, use_safetensors=False, progress=False
    )
    reference = hf_logme.extract_features(str(bert), reviews, progress=False)
    torch.testing.assert_close(allowed.features, reference.features)


def test_a_name_found_nowhere_says_where_it_was_looked_for(reviews):
    from huggingface_hub.errors import RevisionResolutionError

    from hf_logme.errors import HubUnreachableError, ModelNotFoundError

    # Offline and not cached: the Hub's error is the cause, the message names the local path too.
    with pytest.raises(HubUnreachableError, match="some-org/some-model: not a local folder") as err:
        hf_logme.extract_features("some-org/some-model", reviews)
    assert isinstance(err.value.__cause__, RevisionResolutionError)
    assert isinstance(err.value, ConnectionError)
    with pytest.raises(ModelNotFoundError, match="not/a/valid/id: no such model folder"):
        hf_logme.extract_features("not/a/valid/id", reviews)


def _cache_as_hub_repo(folder, repo_id: str, sha: str) -> None:
    """Lay ``folder`` out in the session's Hub cache as ``repo_id`` at commit ``sha`` (main)."""
    import shutil
    from pathlib import Path

    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    shutil.copytree(folder, repo / "snapshots" / sha)


def test_hub_ids_load_from_the_cache_with_their_commit(bert, reviews):
    sha = "0123456789abcdef0123456789abcdef01234567"
    _cache_as_hub_repo(bert, "hf-logme-tests/tiny-distilbert", sha)
    out = hf_logme.extract_features("hf-logme-tests/tiny-distilbert", reviews, progress=False)
    assert out.model_id == "hf-logme-tests/tiny-distilbert" and out.revision == sha
    local = hf_logme.extract_features(str(bert), reviews, progress=False)
    torch.testing.assert_close(out.features, local.features)


def test_hub_sentence_transformers_config_sets_pooling_and_length():
    from tiny_models import minilm_path

    _cache_as_hub_repo(minilm_path(), "hf-logme-tests/minilm", "f" * 40)
    loaded = load_model("hf-logme-tests/minilm")
    assert loaded.st_pooling == "mean" and loaded.max_length == 256  # sentence_bert_config.json
    assert loaded.auto_pooling().name == "mean" and loaded.revision == "f" * 40


def test_non_finite_features_are_reported():
    class Broken(torch.nn.Module):
        def forward(self, x):
            return x / 0.0

    data = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
    broken = Broken()
    broken.preprocess = lambda texts: torch.zeros(len(texts), 3)
    with pytest.raises(NonFiniteFeaturesError, match="Broken: the model produced NaN or infinite"):
        hf_logme.extract_features(broken, data, progress=False)


# ---------------------------------------------------------------------------------------------
# Objects passed in


def test_a_loaded_transformers_model_is_used_as_is_and_left_unchanged(bert, reviews):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(bert).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = hf_logme.extract_features(
        model, reviews, processor=AutoTokenizer.from_pretrained(bert), progress=False
    )
    reference = hf_logme.extract_features(str(bert), reviews, progress=False)
    torch.testing.assert_close(out.features, reference.features)  # eval mode: no dropout
    assert model.training  # restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # name_or_path is the folder, so the processor can be found there too.
    again = hf_logme.extract_features(model, reviews, progress=False)
    torch.testing.assert_close(again.features, reference.features)


def test_a_passed_model_is_not_moved_or_cast(bert):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(bert)
    with pytest.raises(
        ValueError,
        match=r"dtype='bfloat16' but the model you passed is in "
        r"torch.float32.*model.to\(torch.bfloat16\)",
    ):
        load_model(model, dtype="bfloat16")
    with pytest.raises(ValueError, match="device='meta' but the model you passed is on cpu"):
        load_model(model, device="meta")
    model.name_or_path = "local-object"
    with pytest.raises(ValueError, match="no processor given .* pass processor="):
        load_model(model)


def test_custom_modules_with_preprocess():
    class Bag(torch.nn.Module):
        """Token embeddings: (B, T, D) states and a mask, or their mean with pooled=True."""

        def __init__(self, pooled: bool) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.embed = torch.nn.Embedding(128, 4)
            self.pooled = pooled

        def forward(self, input_ids, attention_mask):
            states = self.embed(input_ids)
            if not self.pooled:
                return states
            weights = attention_mask[..., None].float()
            return (states * weights).sum(1) / weights.sum(1)

        @staticmethod
        def preprocess(texts):
            width = max(map(len, texts))
            ids = torch.zeros(len(texts), width, dtype=torch.long)
            mask = torch.zeros(len(texts), width, dtype=torch.long)
            for i, text in enumerate(texts):
                ids[i, : len(text)] = torch.tensor([ord(c) % 128 for c in text])
                mask[i, : len(text)] = 1
            return {"input_ids": ids, "attention_mask": mask}

    data = datasets.Dataset.from_dict({"text": ["ab", "abcd", "b", "hello"], "label": [0, 1, 0, 1]})
    tokens = hf_logme.extract_features(Bag(pooled=False), data, batch_size=3, progress=False)
    vectors = hf_logme.extract_features(Bag(pooled=True), data, batch_size=3, progress=False)
    assert tokens.pooling == "mean" and vectors.pooling == "model"
    assert tokens.model_id == "Bag"
    embed = Bag(pooled=False).embed.weight
    expected = torch.stack([embed[[ord(c) for c in t]].mean(0) for t in data["text"]])
    torch.testing.assert_close(tokens.features, expected)
    torch.testing.assert_close(vectors.features, expected)
    with pytest.raises(ValueError, match="needs a preprocess callable"):
        load_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="pooling='pooler' needs a transformers model"):
        hf_logme.extract_features(Bag(pooled=True), data, pooling="pooler")
    with pytest.raises(ValueError, match="layers='all' needs a transformers model"):
        hf_logme.extract_features(Bag(pooled=True), data, layers="all")


# ---------------------------------------------------------------------------------------------
# The batch loop


class _Limited(torch.nn.Module):
    """Raises CUDA's out-of-memory error above ``limit`` rows, like a GPU would."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x * 2.0

    @staticmethod
    def preprocess(values):
        return torch.tensor([[float(v), float(v) ** 2] for v in values])


def test_out_of_memory_halves_the_batch_size_and_loses_nothing(caplog):
    data = datasets.Dataset.from_dict(
        {"text": [str(i) for i in range(70)], "label": [i % 3 for i in range(70)]}
    )
    model = _Limited(limit=5)
    with caplog.at_level(logging.WARNING):
        out = hf_logme.extract_features(model, data, progress=False)  # auto: starts at 32 on CPU
    assert out.batch_size == 4 and max(model.sizes[-3:]) <= 4
    assert "Out of memory; retrying with batch_size=16" in caplog.text
    values = torch.arange(70, dtype=torch.float32)
    torch.testing.assert_close(out.features, torch.stack([2 * values, 2 * values**2], dim=1))
    with pytest.raises(
        torch.OutOfMemoryError, match="out of memory at batch_size=8; pass a smaller"
    ):
        hf_logme.extract_features(_Limited(limit=5), data, batch_size=8, progress=False)


def test_streaming_into_logme_equals_scoring_the_returned_features(bert):
    data = food_reviews(40)
    metric = hf_logme.LogME()
    seen: list[int] = []

    def on_batch(features, labels):
        assert features.shape[0] == len(labels) and isinstance(labels, np.ndarray)
        seen.append(len(labels))
        metric.update(features, labels)

    out = hf_logme.extract_features(
        str(bert), data, batch_size=7, on_batch=on_batch, progress=False
    )
    assert sum(seen) == 40 and len(seen) == 6
    assert metric.compute() == pytest.approx(hf_logme.logme(out.features, out.labels), abs=1e-9)
    streamed = hf_logme.extract_features(
        str(bert),
        data,
        batch_size=7,
        on_batch=lambda f, y: None,
        return_features=False,
        progress=False,
    )
    assert streamed.features is None and streamed.dim == 32 and len(streamed.labels) == 40


def test_subsample_rows_are_reported_in_dataset_order(bert):
    data = food_reviews(200)
    out = hf_logme.extract_features(str(bert), data, max_samples=30, seed=1, progress=False)
    assert out.num_samples == 30 and np.all(np.diff(out.indices) > 0)
    assert out.labels.tolist() == [data["score"][i] for i in out.indices]
    full = hf_logme.extract_features(str(bert), data.select(out.indices), progress=False)
    torch.testing.assert_close(out.features, full.features)


def test_progress_bar_follows_the_hub_switch(bert, reviews, capsys, monkeypatch):
    import sys

    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    # The session sets HF_HUB_DISABLE_PROGRESS_BARS=1, which overrides the switch: lift it here.
    hub_tqdm = sys.modules["huggingface_hub.utils.tqdm"]
    monkeypatch.setattr(hub_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", None)
    monkeypatch.setattr(hub_tqdm, "progress_bar_states", {})
    enable_progress_bars()
    hf_logme.extract_features(str(bert), reviews)
    assert "sample/s" in capsys.readouterr().err
    disable_progress_bars()
    hf_logme.extract_features(str(bert), reviews)
    assert "sample/s" not in capsys.readouterr().err


def test_timings_and_provenance(bert, reviews):
    out = hf_logme.extract_features(str(bert), reviews, progress=False)
    assert out.model_id == str(bert) and out.revision is None  # a local folder has no commit
    assert out.device == "cpu" and out.dtype == "float32"
    assert {"load_s", "extract_s", "samples_per_s", "forward_s", "wait_s", "prepare_s"} <= set(
        out.timings
    )
    assert out.timings["samples_per_s"] == pytest.approx(12 / out.timings["extract_s"])


def test_a_pooler_missing_from_the_checkpoint_is_not_used(tmp_path, reviews, caplog):
    """A BERT saved without its pooler (e.g. from a masked-LM) would get a random one at load."""
    from tiny_models import minilm_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(tmp_path)
    out = hf_logme.extract_features(str(tmp_path), reviews, progress=False)
    assert out.pooling == "cls" and "pooler weights are not in the checkpoint" in out.pooling_reason
    with caplog.at_level(logging.WARNING):
        hf_logme.extract_features(str(tmp_path), reviews, pooling="pooler", progress=False)
    assert "its pooler weights are not in the checkpoint (random)" in caplog.text


def test_a_processor_defined_by_repo_code_is_refused(tmp_path):
    from tiny_models import build

    folder = build("vit", tmp_path)
    config = json.loads((folder / "preprocessor_config.json").read_text())
    config.update(
        auto_map={"AutoImageProcessor": "proc.MyProcessor"}, image_processor_type="MyProcessor"
    )
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    with pytest.raises(
        RemoteCodeRequiredError, match="its ImageProcessor requires trust_remote_code"
    ):
        load_model(str(folder))


def test_other_objects_are_not_models():
    with pytest.raises(TypeError, match="model must be a Hub id or local path.*got int"):
        load_model(42)


def test_a_model_without_a_pooler_output_says_so(bert, reviews):
    with pytest.raises(ValueError, match="has no pooler output; use pooling='cls' or 'mean'"):
        hf_logme.extract_features(str(bert), reviews, pooling="pooler", progress=False)


def test_texts_must_be_strings(bert):
    data = datasets.Dataset.from_dict({"text": ["fine", None, "ok"], "label": [0, 1, 0]})
    with pytest.raises(ValueError, match=r"text column 'text' has 1 values that are not strings"):
        hf_logme.extract_features(str(bert), data, progress=False)


def test_custom_modules_must_return_tensors():
    class Odd(torch.nn.Module):
        def forward(self, x):
            return {"logits": x}

    data = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
    odd = Odd()
    odd.preprocess = lambda texts: torch.zeros(len(texts), 2)
    with pytest.raises(TypeError, match="must return a \\(B, D\\) or \\(B, T, D\\) tensor"):
        hf_logme.extract_features(odd, data, progress=False)
    odd.preprocess = lambda texts: [0.0] * len(texts)
    with pytest.raises(
        TypeError, match="preprocess must return a tensor or a dict of tensors; got list"
    ):
        hf_logme.extract_features(odd, data, progress=False)


def test_layers_all_needs_hidden_states(bert):
    """A model that ignores output_hidden_states cannot give per-layer features."""
    from transformers.modeling_outputs import BaseModelOutput

    from hf_logme.features.forward import FeatureRunner

    loaded = load_model(str(bert))
    runner = FeatureRunner(loaded, "mean", "all")
    loaded.model = lambda **inputs: BaseModelOutput(last_hidden_state=torch.zeros(1, 2, 32))
    with pytest.raises(ValueError, match="returned no hidden_states, so layers='all' is not"):
        runner({"input_ids": torch.zeros(1, 2, dtype=torch.long)})
