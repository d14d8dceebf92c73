"""select_checkpoint, make_model_init and LogMECallback: against rank_models, the local Hub, a real
Trainer, and LogME of independently extracted features."""

from __future__ import annotations

import logging
import pickle
import socket
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
from hub_fixtures import CATALOG, build_entry, build_text_model, reviews_dataset

import hf_logme
from hf_logme.errors import NoCandidateError, UnsupportedModelError
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.hub import MODALITY_TASKS
from hf_logme.selection import select_checkpoint
from hf_logme.trainer import LogMECallback, make_model_init

TRAINER_OPTIONS = {
    "report_to": "none",
    "save_strategy": "no",
    "disable_tqdm": True,
    "use_cpu": True,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "seed": 0,
}


@pytest.fixture(scope="module")
def local_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return [
        str(build_text_model(root / "small", seed=1)),
        str(build_text_model(root / "deep", seed=2, hidden_size=32, num_layers=2)),
    ]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny BERT classifier checkpoint (with its tokenizer) and that tokenizer."""
    from transformers import AutoTokenizer

    folder = build_text_model(
        tmp_path_factory.mktemp("classifier") / "bert", head="sequence-classification"
    )
    return str(folder), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def tokenized(reviews, classifier):
    tokenizer = classifier[1]
    return reviews.map(lambda batch: tokenizer(batch["text"]), batched=True)


def pooler_logme(model, dataset, tokenizer, **options):
    """LogME (with intercept, small-sample prior: the callback's default, as in rankings) of the
    features extract_features gives for the model's backbone, pooled by BERT's pooler: what its
    sequence-classification head reads."""
    out = hf_logme.extract_features(
        model.bert, dataset, processor=tokenizer, pooling="pooler", progress=False, **options
    )
    return hf_logme.logme(out.features, out.labels, intercept=True, prior=RANKING_PRIOR)


def trainer_for(checkpoint, train, evaluation, tokenizer, tmp_path, callbacks, **options):
    from transformers import Trainer, TrainingArguments

    return Trainer(
        model_init=make_model_init(checkpoint, num_labels=2),
        args=TrainingArguments(output_dir=str(tmp_path / "out"), **{**TRAINER_OPTIONS, **options}),
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


# --- select_checkpoint ----------------------------------------------------------------------------


def test_select_checkpoint_returns_the_model_the_ranking_ranks_first(
    reviews, local_models, tmp_path
):
    expected = hf_logme.rank_models(local_models, reviews, cache=False, progress=False)
    best, ranking = select_checkpoint(
        reviews, local_models, return_ranking=True, cache_dir=tmp_path, progress=False
    )
    assert best == expected.rows[0].model == ranking.best
    assert [r.model for r in ranking.rows] == [r.model for r in expected.rows]
    assert [r.score for r in ranking.rows] == pytest.approx(
        [r.score for r in expected.rows], rel=1e-12
    )
    assert (
        select_checkpoint(reviews, local_models[::-1], cache_dir=tmp_path, progress=False) == best
    )
    assert (
        select_checkpoint(reviews, best, cache_dir=tmp_path, progress=False) == best
    )  # one candidate


def test_select_checkpoint_forwards_the_ranking_options(reviews, local_models, tmp_path):
    data = reviews.add_column("rating", np.random.default_rng(0).normal(size=len(reviews)).tolist())
    _, ranking = select_checkpoint(
        datasets.DatasetDict({"train": data}),
        local_models,
        return_ranking=True,
        split="train",
        label_column="rating",
        label_task="regression",
        methods={"logme": {"intercept": False}},
        max_samples=20,
        pooling="mean",
        layers="best",
        cache=False,
        progress=False,
    )
    assert ranking.dataset["task"] == "regression" and ranking.dataset["label_column"] == "rating"
    assert ranking.methods == {"logme": {"intercept": False, "prior": 2.0}}
    assert ranking.options["pooling"] == "mean" and ranking.options["layers"] == "best"
    assert {row.num_samples for row in ranking.rows} == {20}
    assert all(row.best_layer is not None for row in ranking.rows)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"intercep": True}, TypeError, r"unexpected keyword argument 'intercep'"),
        ({"return_ranking": "yes"}, TypeError, r"return_ranking must be a bool"),
        (
            {"task": "fill-mask"},
            ValueError,
            r"task='fill-mask' and limit=None choose what to search",
        ),
        ({"limit": 3}, ValueError, r"only when candidates is None"),
        ({"layers": "first"}, ValueError, r"layers must be one of .*; got 'first'"),
        (
            {"label_task": "ranking"},
            ValueError,
            r"label_task must be one of \['auto', 'classification'",
        ),
    ],
)
def test_select_checkpoint_rejects_bad_options(reviews, local_models, options, error, match):
    with pytest.raises(error, match=match):
        select_checkpoint(reviews, local_models, progress=False, **options)


def test_when_nothing_can_be_scored_the_error_lists_every_reason(reviews, tmp_path):
    missing, empty = str(tmp_path / "no-such-model"), tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        NoCandidateError, match="none of the 2 candidates could be scored"
    ) as caught:
        select_checkpoint(reviews, [missing, str(empty)], cache=False, progress=False)
    message = str(caught.value)
    assert f"{missing}: FileNotFoundError: " in message and "is not a model folder" in message
    assert f"\n  {empty}: " in message
    assert [row.status for row in caught.value.ranking.rows] == ["skipped", "skipped"]


def test_without_candidates_it_ranks_the_hub_search_for_the_datasets_modality(
    hub, reviews, tmp_path
):
    best, ranking = select_checkpoint(
        reviews, limit=3, return_ranking=True, cache_dir=tmp_path, progress=False
    )
    searched = [c.id for c in hf_logme.search_candidates(modality="text", limit=3)]
    assert sorted(row.model for row in ranking.rows) == sorted(searched)
    assert best == ranking.rows[0].model and ranking.rows[0].status == "ok"
    assert all(row.revision == hub.repo(row.model).sha for row in ranking.rows)
    listings = [r.query for r in hub.requests if r.path == "/api/models"]
    assert {q["pipeline_tag"][0] for q in listings} == set(MODALITY_TASKS["text"])


def test_an_unknown_option_fails_before_the_hub_is_searched(hub, reviews):
    with pytest.raises(TypeError, match=r"select_checkpoint: .*'max_sample'.*rank_models"):
        select_checkpoint(reviews, max_sample=100)
    assert hub.count("/api/models*") == 0


def test_a_task_chooses_what_the_hub_search_returns(hub, reviews, tmp_path):
    assert (
        select_checkpoint(reviews, task="sentence-similarity", cache_dir=tmp_path, progress=False)
        == "zeta/sentence-tiny"
    )
    with pytest.raises(
        NoCandidateError, match=r"the Hub search \(task='no-such-task'\) found no loadable"
    ):
        select_checkpoint(reviews, task="no-such-task", progress=False)


def test_without_a_task_the_dataset_must_show_its_input_modality(reviews):
    mixed = reviews.add_column("audio", [[0.0, 0.1, 0.2]] * len(reviews))
    with pytest.raises(ValueError, match=r"cannot tell which column the model reads"):
        select_checkpoint(mixed, progress=False)


# --- make_model_init ------------------------------------------------------------------------------


def test_model_init_loads_a_fresh_model_with_the_new_head_at_each_call(local_models):
    from safetensors.torch import load_file
    from transformers import AutoModelForTokenClassification, BertForSequenceClassification

    init = make_model_init(local_models[0], num_labels=3, hidden_dropout_prob=0.25)
    first, second = init(), init()
    assert isinstance(first, BertForSequenceClassification) and first is not second
    assert first.config.num_labels == 3 and first.config.hidden_dropout_prob == 0.25
    saved = load_file(f"{local_models[0]}/model.safetensors")
    assert torch.equal(
        first.bert.embeddings.word_embeddings.weight, saved["embeddings.word_embeddings.weight"]
    )
    assert repr(init).startswith(
        f"ModelInit({local_models[0]!r}, AutoModelForSequenceClassification, num_labels=3"
    )
    assert pickle.loads(pickle.dumps(init)) == init
    tokens = make_model_init(
        local_models[0], num_labels=5, auto_class=AutoModelForTokenClassification
    )()
    assert type(tokens).__name__ == "BertForTokenClassification" and tokens.num_labels == 5


def test_model_init_refuses_pickle_weights_and_remote_code_unless_allowed(tmp_path):
    entries = {e.repo_id: e for e in CATALOG}
    pickle_only = build_entry(entries["broken/pickle-only"], tmp_path / "pickle")
    remote = build_entry(entries["broken/remote-code"], tmp_path / "remote")
    with pytest.raises(OSError, match="safetensors"):
        make_model_init(pickle_only, num_labels=2)()
    assert make_model_init(pickle_only, num_labels=2, use_safetensors=False)().num_labels == 2
    with pytest.raises(ValueError, match="trust_remote_code"):
        make_model_init(remote, num_labels=2)()


@pytest.mark.parametrize(
    "checkpoint, options, error, match",
    [
        (3, {}, TypeError, r"checkpoint must be a Hub id or a local folder; got int"),
        ("./no/such/model", {}, ValueError, r"is not a folder, nor a Hub id"),
        ("org/model", {"num_labels": 0}, ValueError, r"num_labels must be a positive int"),
        ("org/model", {"auto_class": object}, TypeError, r"auto_class must be a transformers auto"),
        ("org/model", {"trust_remote_code": "yes"}, TypeError, r"trust_remote_code must be a bool"),
        ("org/model", {"use_safetensors": 1}, TypeError, r"use_safetensors must be a bool"),
    ],
)
def test_model_init_rejects_bad_arguments_at_once(checkpoint, options, error, match):
    with pytest.raises(error, match=match):
        make_model_init(checkpoint, **options)


# --- LogMECallback in a Trainer -------------------------------------------------------------------


class Reference:
    """A callback after LogMECallback: at each evaluation, LogME of the features of the model at
    that point, extracted independently, next to the eval_logme the metrics carry."""

    def __init__(self, compute):
        from transformers import TrainerCallback

        self.pairs = []
        self.callback = type("Recorder", (TrainerCallback,), {"on_evaluate": self._on_evaluate})()
        self.compute = compute

    def _on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        self.pairs.append((metrics.get("eval_logme"), self.compute(model)))


def test_eval_logme_is_logme_of_the_features_at_each_evaluation(
    reviews, tokenized, classifier, tmp_path
):
    checkpoint, tokenizer = classifier
    reference = Reference(lambda model: pooler_logme(model, reviews, tokenizer))
    trainer = trainer_for(
        checkpoint,
        tokenized,
        tokenized,
        tokenizer,
        tmp_path,
        [LogMECallback(reviews), reference.callback],
        num_train_epochs=2,
        eval_strategy="epoch",
        logging_steps=1,
        learning_rate=1e-2,
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert len(reference.pairs) == 4  # before, two epochs, after
    for logged, expected in reference.pairs:
        assert logged == pytest.approx(expected, rel=1e-9)
    assert before["eval_logme"] != pytest.approx(after["eval_logme"], rel=1e-3)  # training moved it
    assert after["eval_logme"] == reference.pairs[-1][0]
    # Once per evaluation in the history, in the evaluation's own entry, nowhere else.
    history = trainer.state.log_history
    evaluations = [entry for entry in history if "eval_loss" in entry]
    assert len(evaluations) == 3 and all("eval_logme" in entry for entry in evaluations)
    assert sum("eval_logme" in entry for entry in history) == 3
    assert [e["eval_logme"] for e in evaluations] == [p[0] for p in reference.pairs[1:]]


def test_by_default_it_scores_the_rows_the_trainer_feeds(reviews, classifier, tmp_path):
    checkpoint, tokenizer = classifier
    # Truncated, so that these rows differ from what the package would tokenise from the text.
    short = reviews.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=8), batched=True
    )

    def fed_rows(
        model,
    ):  # the Trainer's eval rows in order, padded per batch of 32, through the backbone
        rows = short.remove_columns(["text", "label"])
        with torch.inference_mode():
            batches = [
                tokenizer.pad(rows[i : i + 32], return_tensors="pt")
                for i in range(0, len(rows), 32)
            ]
            features = torch.cat([model.bert(**batch).pooler_output for batch in batches])
        return hf_logme.logme(features, short["label"], intercept=True, prior=RANKING_PRIOR)

    reference = Reference(fed_rows)
    trainer = trainer_for(
        checkpoint, short, short, tokenizer, tmp_path, [LogMECallback(), reference.callback]
    )
    metrics = trainer.evaluate()
    ((logged, expected),) = reference.pairs
    assert metrics["eval_logme"] == logged == pytest.approx(expected, rel=1e-9)
    assert logged != pytest.approx(
        pooler_logme(trainer.model, reviews, tokenizer), rel=1e-3
    )  # not the text
    several = trainer.evaluate(
        eval_dataset={"first": short, "second": short.select(range(0, 24, 2))}
    )
    assert several["eval_first_logme"] == pytest.approx(logged, rel=1e-9)
    assert several["eval_second_logme"] != pytest.approx(logged, rel=1e-3)


def test_loggers_registered_before_it_see_eval_logme_once_it_is_moved_first(
    tokenized, classifier, tmp_path
):
    from transformers import TrainerCallback

    class Logger(
        TrainerCallback
    ):  # stands for a report_to integration, which Trainer registers first
        def __init__(self):
            self.seen = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append("eval_logme" in logs)

    logger_ = Logger()
    trainer = trainer_for(
        classifier[0], tokenized, tokenized, classifier[1], tmp_path, [logger_, LogMECallback()]
    )
    assert "eval_logme" in trainer.evaluate() and logger_.seen == [False]
    trainer.callback_handler.callbacks.insert(
        0, trainer.pop_callback(LogMECallback)
    )  # as the docs say
    assert "eval_logme" in trainer.evaluate() and logger_.seen == [False, True]


def test_a_model_with_no_known_pooling_gets_a_warning_and_training_goes_on(
    tokenized, classifier, tmp_path, caplog
):
    from transformers import Trainer, TrainingArguments

    class Bag(torch.nn.Module):  # a custom model: no transformers config, no known head
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.EmbeddingBag(200, 8, mode="sum")
            self.head = torch.nn.Linear(8, 2)

        def forward(self, input_ids, attention_mask=None, labels=None):
            logits = self.head(self.embed(input_ids, per_sample_weights=attention_mask.float()))
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

    trainer = Trainer(
        model=Bag(),
        args=TrainingArguments(
            output_dir=str(tmp_path), num_train_epochs=2, eval_strategy="epoch", **TRAINER_OPTIONS
        ),
        train_dataset=tokenized,
        eval_dataset=tokenized,
        processing_class=classifier[1],
        callbacks=[LogMECallback()],
    )
    with caplog.at_level(logging.WARNING, logger="hf_logme.trainer"):
        trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == 2 and not any("eval_logme" in entry for entry in evaluations)
    warnings = [r.getMessage() for r in caplog.records if r.name == "hf_logme.trainer"]
    assert len(warnings) == 1  # once per reason, not at every evaluation
    assert (
        "Bag is not a transformers PreTrainedModel, so the pooling its head reads is unknown"
        in warnings[0]
    )


def test_a_pooling_the_model_lacks_is_skipped_with_a_warning(reviews, classifier, caplog):
    from transformers import BertForTokenClassification

    model = BertForTokenClassification.from_pretrained(classifier[0])  # a BERT without a pooler
    callback = LogMECallback(reviews, pooling="pooler")
    logs = {"eval_loss": 0.5, "eval_runtime": 0.1, "eval_samples_per_second": 9.0}
    state = SimpleNamespace(log_history=[{**logs, "step": 0}], is_world_process_zero=True)
    callback.on_prediction_step(None, state, None)
    with caplog.at_level(logging.WARNING, logger="hf_logme.trainer"):
        callback.on_log(None, state, None, logs=logs, model=model, processing_class=classifier[1])
    assert "eval_logme" not in logs and "eval_logme" not in state.log_history[-1]
    assert "ValueError: " in caplog.text and "has no pooler output" in caplog.text


def test_it_only_reacts_to_an_evaluations_log(reviews, classifier):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(classifier[0])
    callback = LogMECallback(reviews)
    state = SimpleNamespace(log_history=[], is_world_process_zero=True)
    training_logs = {"loss": 0.7, "learning_rate": 1e-3}
    callback.on_log(
        None, state, None, logs=training_logs, model=model, processing_class=classifier[1]
    )
    assert "eval_logme" not in training_logs
    callback.on_prediction_step(None, state, None)
    callback.on_predict(None, state, None, metrics={})  # predict() runs the loop but logs nothing
    callback.on_log(
        None, state, None, logs=training_logs, model=model, processing_class=classifier[1]
    )
    assert "eval_logme" not in training_logs


# --- LogMECallback's computation ------------------------------------------------------------------


def test_train_and_eval_modes_are_restored_and_features_come_from_eval_mode(reviews, classifier):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        classifier[0], hidden_dropout_prob=0.5
    )
    model.train()
    model.bert.encoder.layer[0].attention.eval()  # a submodule the user keeps in eval mode
    modes = {name: module.training for name, module in model.named_modules()}
    seen = []
    hook = model.bert.register_forward_hook(
        lambda module, args, output: seen.append(module.training)
    )
    first = LogMECallback(reviews).accumulate(model, processor=classifier[1]).compute()
    hook.remove()
    assert seen and not any(seen)
    assert {name: module.training for name, module in model.named_modules()} == modes
    model.eval()
    assert first == pytest.approx(
        pooler_logme(model, reviews, classifier[1]), rel=1e-9
    )  # no dropout


def test_the_heads_pooling_is_scored_not_the_checkpoints_sentence_transformers_pooling(
    reviews, classifier, tmp_path
):
    import json
    import shutil

    from transformers import AutoModelForSequenceClassification

    folder = shutil.copytree(classifier[0], tmp_path / "sentence-bert")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    mean = hf_logme.extract_features(model.bert, reviews, processor=classifier[1], progress=False)
    assert mean.pooling == "mean"  # what a ranking of this checkpoint scores
    mean_logme = hf_logme.logme(mean.features, mean.labels, intercept=True, prior=RANKING_PRIOR)
    value = LogMECallback(reviews).accumulate(model, processor=classifier[1]).compute()
    assert value == pytest.approx(
        pooler_logme(model, reviews, classifier[1]), rel=1e-9
    )  # what the head reads
    assert value != pytest.approx(mean_logme, rel=1e-3)
    requested = (
        LogMECallback(reviews, pooling="mean").accumulate(model, processor=classifier[1]).compute()
    )
    assert requested == pytest.approx(mean_logme, rel=1e-9)


@pytest.mark.parametrize("max_samples", [None, 15])
def test_statistics_of_two_shards_merged_equal_one_pass(reviews, classifier, max_samples):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(classifier[0]).eval()
    callback = LogMECallback(reviews, max_samples=max_samples, batch_size=1)  # per-row features
    one = callback.accumulate(model, processor=classifier[1])
    shards = [
        callback.accumulate(model, processor=classifier[1], process_index=i, num_processes=2)
        for i in (0, 1)
    ]
    expected_n = max_samples or len(reviews)
    assert [s.statistics.n for s in shards] == [(expected_n + 1) // 2, expected_n // 2]
    merged = shards[0].merge(shards[1])
    assert merged.statistics.n == one.statistics.n == expected_n
    torch.testing.assert_close(merged.statistics.gram, one.statistics.gram, rtol=1e-12, atol=0)
    assert merged.compute() == pytest.approx(one.compute(), rel=1e-9)


def test_accumulate_needs_a_transformers_model_and_data(reviews, classifier):
    with pytest.raises(UnsupportedModelError, match="Linear is not a transformers PreTrainedModel"):
        LogMECallback(reviews).accumulate(torch.nn.Linear(2, 2))
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(classifier[0])
    with pytest.raises(ValueError, match=r"no dataset to score: pass LogMECallback\(dataset=...\)"):
        LogMECallback().accumulate(model, processor=classifier[1])


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"pooling": "median"}, ValueError, r"pooling must be one of"),
        ({"max_samples": 0}, ValueError, r"max_samples must be a positive int"),
        ({"max_length": -1}, ValueError, r"max_length must be a positive int"),
        ({"batch_size": 0}, ValueError, r"batch_size must be a positive int or one of \['auto'\]"),
        ({"intercept": "yes"}, TypeError, r"intercept must be a bool"),
        ({"prior": -1.0}, ValueError, r"prior"),
        ({"seed": 1.5}, TypeError, r"seed must be an int"),
        ({"label_column": 3}, TypeError, r"label_column must be a column name"),
        (
            {"label_column": "stars"},
            ValueError,
            r"label_column='stars' is not a column of the dataset",
        ),
        ({"text_column": "body"}, ValueError, r"text_column='body' is not a column of the dataset"),
        (
            {"dataset": [("good", 1)]},
            TypeError,
            r"dataset must be a datasets.Dataset or DatasetDict",
        ),
    ],
)
def test_bad_options_fail_when_the_callback_is_made(reviews, options, error, match):
    options = {"dataset": reviews, **options}
    with pytest.raises(error, match=match):
        LogMECallback(options.pop("dataset"), **options)


# --- two real processes ---------------------------------------------------------------------------


def _worker(rank, port, checkpoint, queue):
    import os

    import torch.distributed as dist
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        data = reviews_dataset()
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
        callback = LogMECallback(data, batch_size=1)
        results = []
        # Round 2: one process's model cannot be scored; no process may wait for it in a collective.
        for broken in (False, rank == 1):
            logs = {"eval_loss": 0.5, "eval_runtime": 0.1, "eval_samples_per_second": 9.0}
            state = SimpleNamespace(log_history=[dict(logs)], is_world_process_zero=rank == 0)
            callback.on_prediction_step(None, state, None)
            callback.on_log(
                None,
                state,
                None,
                logs=logs,
                model=torch.nn.Linear(2, 2) if broken else model,
                processing_class=tokenizer,
            )
            results.append((logs.get("eval_logme"), state.log_history[-1].get("eval_logme")))
        queue.put((rank, results))
        dist.barrier()  # both done with every collective before either tears the group down
    finally:
        dist.destroy_process_group()


def test_two_processes_share_one_score_and_skip_together(classifier, reviews):
    import torch.multiprocessing as mp
    from transformers import AutoModelForSequenceClassification

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(port, classifier[0], queue), nprocs=2, start_method="spawn")
    results = dict(queue.get() for _ in range(2))
    model = AutoModelForSequenceClassification.from_pretrained(classifier[0]).eval()
    expected = (
        LogMECallback(reviews, batch_size=1).accumulate(model, processor=classifier[1]).compute()
    )
    for rank in (0, 1):
        (logged, history), skipped = results[rank]
        assert logged == history == pytest.approx(expected, rel=1e-9)
        assert skipped == (None, None)


# --- the README -----------------------------------------------------------------------------------


def test_the_readme_example_runs_as_written(reviews, local_models, tmp_path, monkeypatch):
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = readme.split("## Before fine-tuning: select_checkpoint and Trainer")[1].split(
        "```python\n"
    )[1]
    code = code.split("```")[0]
    hub_candidates = [line for line in code.splitlines() if line.startswith("candidates = ")]
    assert len(hub_candidates) == 1  # the one line replaced by local checkpoints here
    monkeypatch.chdir(tmp_path)
    namespace = {"train": reviews, "test": reviews, "candidates": local_models}
    exec(compile(code.replace(hub_candidates[0], ""), "README.md", "exec"), namespace)  # noqa: S102
    assert (
        namespace["best"]
        == hf_logme.rank_models(local_models, reviews, cache=False, progress=False).best
    )
    evaluations = [e for e in namespace["trainer"].state.log_history if "eval_loss" in e]
    assert len(evaluations) == 3 and all(np.isfinite(e["eval_logme"]) for e in evaluations)
    assert np.isfinite(namespace["before"])
