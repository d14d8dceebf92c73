"""sentence-transformers models scored with their own modules; reference: their own encode()."""

from __future__ import annotations

import pytest
import torch
from tiny_models import build, food_reviews, minilm_path

import hf_logme
from hf_logme.features import load_model
from hf_logme.features.sentence_transformers import module_types, uses_sentence_transformers

st = pytest.importorskip("sentence_transformers")
models = pytest.importorskip("sentence_transformers.models")


@pytest.fixture(scope="module")
def reviews():
    return food_reviews(17)


@pytest.fixture(scope="module")
def dense_folder(tmp_path_factory):
    """A tiny checkpoint whose embedding is Transformer -> mean Pooling -> Dense(32, 8) ->
    Normalize: the Dense layer is what the transformers path alone would miss."""
    root = tmp_path_factory.mktemp("st")
    bert = build("bert", root)
    torch.manual_seed(0)
    transformer = models.Transformer(str(bert), max_seq_length=40)
    modules = [
        transformer,
        models.Pooling(32, pooling_mode="mean"),
        models.Dense(32, 8),
        models.Normalize(),
    ]
    folder = root / "dense"
    st.SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


def _encode(model, texts):
    return model.encode(texts, batch_size=1, convert_to_tensor=True, device="cpu")


def test_a_checkpoint_with_a_dense_layer_runs_all_its_modules(dense_folder, reviews):
    out = hf_logme.extract_features(str(dense_folder), reviews, batch_size=5, progress=False)
    reference = _encode(st.SentenceTransformer(str(dense_folder), device="cpu"), reviews["review"])
    assert out.features.shape == (17, 8) and out.dim == 8
    assert out.model_id == str(dense_folder)
    assert out.pooling == "model"
    assert out.pooling_reason == (
        "its sentence-transformers modules (Transformer, Pooling, Dense, Normalize)"
    )
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)
    assert torch.allclose(out.features.norm(dim=1), torch.ones(17), atol=1e-5)


def test_a_sentence_transformer_object_is_used_as_is_and_named_as_given(dense_folder, reviews):
    model = st.SentenceTransformer(str(dense_folder), device="cpu")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = hf_logme.extract_features(model, reviews, batch_size=4, progress=False)
    assert model.training  # restored (encode() below switches it to eval itself)
    torch.testing.assert_close(
        out.features, _encode(model, reviews["review"]), rtol=1e-4, atol=1e-5
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    named = load_model(model)
    assert named.modality == "text" and named.max_length == 40
    assert named.model_id == str(dense_folder)  # where it was loaded from
    with pytest.raises(ValueError, match="dtype='bfloat16' but the model you passed"):
        hf_logme.extract_features(model, reviews, dtype="bfloat16")


def test_pooling_and_normalize_alone_keep_the_transformers_path_unless_asked():
    assert module_types(minilm_path()) == ("Transformer", "Pooling", "Normalize")
    assert not uses_sentence_transformers(minilm_path(), "auto", "last")
    assert uses_sentence_transformers(minilm_path(), "sentence-transformers", "last")
    assert not uses_sentence_transformers(minilm_path(), "mean", "last")


def test_real_minilm_with_its_modules_equals_encode(reviews):
    subset = reviews.select(range(8))
    out = hf_logme.extract_features(
        minilm_path(), subset, pooling="sentence-transformers", batch_size=3, progress=False
    )
    reference = _encode(st.SentenceTransformer(minilm_path(), device="cpu"), subset["review"])
    assert out.features.shape == (8, 384)
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_sentence_transformers_pooling_needs_a_checkpoint_with_modules(tmp_path, reviews):
    bert = build("bert", tmp_path)
    with pytest.raises(ValueError, match="has no modules.json; use pooling='auto'"):
        hf_logme.extract_features(str(bert), reviews, pooling="sentence-transformers")
    with pytest.raises(ValueError, match="one embedding per text, not one per layer"):
        uses_sentence_transformers(minilm_path(), "sentence-transformers", "all")


def test_rank_models_scores_a_sentence_transformer_object_by_its_embeddings(
    dense_folder, reviews, tmp_path
):
    from hf_logme.features.candidates import as_model_candidate
    from hf_logme.ranking import rank_models

    model = st.SentenceTransformer(str(dense_folder), device="cpu")
    ranking = rank_models(
        [as_model_candidate(model, name="mine")], reviews, cache_dir=tmp_path, progress=False
    )
    row = ranking.rows[0]
    reference = _encode(model, reviews["review"])
    assert row.model == "mine" and row.dim == 8
    expected = hf_logme.logme(reference, reviews["score"], intercept=True)
    assert row.score == pytest.approx(expected, rel=1e-5)


def test_the_example_ranks_minilm_above_a_character_bag(monkeypatch, capsys):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "examples"))
    import rank_model_objects

    ranking = rank_model_objects.main(["--samples", "60"])
    assert [row.model for row in ranking.scored] == ["minilm", "character-bag"]
    assert "character-bag" in capsys.readouterr().out


def test_a_hub_checkpoint_with_a_dense_layer_loads_from_its_resolved_commit(
    hub, dense_folder, reviews
):
    from huggingface_hub import HfApi

    hub.add_repo("acme/st-dense", dense_folder)
    sha = HfApi().model_info("acme/st-dense").sha
    out = hf_logme.extract_features("acme/st-dense", reviews, batch_size=6, progress=False)
    reference = _encode(st.SentenceTransformer(str(dense_folder), device="cpu"), reviews["review"])
    assert out.model_id == "acme/st-dense" and out.revision == sha
    assert out.pooling == "model" and out.dim == 8
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)
