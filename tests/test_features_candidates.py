"""Model objects as rank_models candidates: names, cache fingerprints, scores."""

from __future__ import annotations

import pytest
import torch
from tiny_models import build, food_reviews

import hf_logme
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.features import load_model
from hf_logme.features.candidates import as_model_candidate, fingerprint
from hf_logme.ranking import rank_models


class Chars(torch.nn.Module):
    """Character embeddings averaged over each text: a custom module with ``preprocess``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(128, 6)

    def forward(self, input_ids, attention_mask):
        weights = attention_mask[..., None].float()
        return (self.embed(input_ids) * weights).sum(1) / weights.sum(1)

    @staticmethod
    def preprocess(texts):
        width = max(map(len, texts))
        ids = torch.zeros(len(texts), width, dtype=torch.long)
        mask = torch.zeros(len(texts), width, dtype=torch.long)
        for i, text in enumerate(texts):
            ids[i, : len(text)] = torch.tensor([ord(c) % 128 for c in text])
            mask[i, : len(text)] = 1
        return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module")
def reviews():
    return food_reviews(30)


def test_objects_are_ranked_named_and_scored_like_extract_features(tmp_path, reviews):
    from transformers import AutoModel, AutoTokenizer

    folder = build("distilbert", tmp_path)
    transformers_model = AutoModel.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    candidates = [
        Chars(),
        as_model_candidate(Chars(seed=1), name="chars-1"),
        as_model_candidate(transformers_model, name="distil-object", processor=tokenizer),
        str(folder),
    ]
    ranking = rank_models(candidates, reviews, cache_dir=tmp_path / "cache", progress=False)
    rows = {row.model: row for row in ranking.rows}
    assert sorted(rows) == sorted(["Chars", "chars-1", "distil-object", str(folder)])
    assert all(row.status == "ok" for row in ranking.rows)
    expected = {
        "Chars": hf_logme.extract_features(Chars(), reviews, progress=False),
        "chars-1": hf_logme.extract_features(Chars(seed=1), reviews, progress=False),
        "distil-object": hf_logme.extract_features(str(folder), reviews, progress=False),
    }
    for name, out in expected.items():
        score = hf_logme.logme(out.features, out.labels, intercept=True, prior=RANKING_PRIOR)
        assert rows[name].score == pytest.approx(score, rel=1e-9)
    # The same weights as the folder, so the same score through either route.
    assert rows["distil-object"].score == pytest.approx(rows[str(folder)].score, rel=1e-9)
    assert rows["Chars"].num_parameters == 128 * 6


def test_objects_are_cached_by_their_weights(tmp_path, reviews):
    options = {"cache_dir": tmp_path, "progress": False}
    first = rank_models([Chars()], reviews, **options).rows[0]
    again = rank_models([Chars()], reviews, **options).rows[0]  # a new object, same weights
    assert not first.cached and again.cached and again.score == first.score
    changed = Chars()
    with torch.no_grad():
        changed.embed.weight[0, 0] += 1.0
    assert not rank_models([changed], reviews, **options).rows[0].cached


def test_fingerprint_follows_weights_architecture_and_preprocessing():
    base = fingerprint(Chars(), Chars.preprocess)
    assert fingerprint(Chars(), Chars.preprocess) == base
    assert fingerprint(Chars(seed=1), Chars.preprocess) != base
    assert fingerprint(Chars(), lambda texts: texts) != base
    assert fingerprint(Chars().to(torch.bfloat16), Chars.preprocess) != base


def test_names_and_bad_objects():
    loaded = load_model(Chars())
    assert as_model_candidate(loaded).name == "Chars"
    renamed = as_model_candidate(as_model_candidate(Chars()), name="x")
    assert renamed.name == "x" and renamed.load().model_id == "x"
    assert loaded.model_id == "Chars"  # the object given is left as it was
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        as_model_candidate(Chars(), name="")
    with pytest.raises(TypeError, match="must be a torch.nn.Module .* got dict"):
        as_model_candidate({"weights": 1})
    with pytest.raises(ValueError, match="lists 'Chars' twice"):
        rank_models([Chars(), Chars()], food_reviews(4))
