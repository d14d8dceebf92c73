"""The ``transformers.Trainer`` pieces: load the selected checkpoint, and keep watching LogME.

(:func:`hf_logme.select_checkpoint`, which picks the checkpoint, is in :mod:`hf_logme.selection`.)

- :func:`make_model_init` turns that id into the ``model_init`` factory ``Trainer`` calls for a
  fresh model (with the package's safe loading defaults).
- :class:`LogMECallback` adds LogME of the model's current features on the evaluation data to the
  metrics of every evaluation (``eval_logme``), to watch transferability through fine-tuning.

This module imports transformers' Trainer machinery (and accelerate); ``import hf_logme`` loads it
only when one of these names is first used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, TrainerCallback

from .distributed import all_reduce_statistics, gather, rank_and_world
from .errors import UnsupportedModelError
from .errors import describe as describe_error
from .estimators import LogME
from .estimators.logme import RANKING_PRIOR
from .features import LoadedModel, extract_features, load_model
from .features.columns import check_column, find_inputs, resolve_split
from .features.forward import FeatureRunner
from .features.loading import modality_of
from .features.options import POOLINGS, check_choice, check_positive_int
from .features.sampling import rows_to_score
from .features.targets import find_label_column

logger = logging.getLogger(__name__)


# --- make_model_init ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelInit:
    """A ``model_init`` for ``transformers.Trainer``: each call loads a fresh model.

    Made by :func:`make_model_init`; picklable, and its repr says what it loads.
    """

    checkpoint: str
    auto_class: Any
    options: Mapping[str, Any]

    def __call__(self) -> Any:
        return self.auto_class.from_pretrained(self.checkpoint, **self.options)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"ModelInit({self.checkpoint!r}, {self.auto_class.__name__}, {options})"


def make_model_init(
    checkpoint: str | os.PathLike,
    *,
    num_labels: int | None = None,
    auto_class: Any = AutoModelForSequenceClassification,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
    **from_pretrained_kwargs: Any,
) -> ModelInit:
    """A ``model_init`` factory for ``Trainer``: the checkpoint with a fresh task head per call.

    ``Trainer(model_init=...)`` calls it (after seeding) at the start of each training run and
    hyperparameter trial, so every run starts from the pre-trained weights.

    Args:
        checkpoint: Hub id or local folder, e.g. what :func:`select_checkpoint` returned.
        num_labels: classes of the new head (``AutoModelForSequenceClassification``'s config
            default is 2); None leaves the config's value.
        auto_class: the transformers auto class (or model class) to load with, e.g.
            ``AutoModelForImageClassification``, ``AutoModelForTokenClassification``.
        trust_remote_code: allow architectures defined by code in the repo (off by default).
        use_safetensors: load only safetensors weights (default); False also accepts pickle
            ``.bin`` files, which can run arbitrary code when loaded.
        **from_pretrained_kwargs: more ``from_pretrained`` options: ``revision``, ``token``,
            ``dtype``, ``id2label``/``label2id``, ``ignore_mismatched_sizes``, or config
            overrides such as ``hidden_dropout_prob`` (transformers applies unknown names to the
            config).

    Returns:
        A :class:`ModelInit`: calling it returns the loaded model.

    Raises:
        TypeError: ``checkpoint`` is not a str or path, ``auto_class`` has no ``from_pretrained``,
            or a flag is not a bool.
        ValueError: ``num_labels`` is not a positive int, or ``checkpoint`` is neither a folder
            nor a valid Hub id.

    Example:
        >>> init = make_model_init("sentence-transformers/all-MiniLM-L6-v2", num_labels=2)
        >>> init  # doctest: +ELLIPSIS
        ModelInit('sentence-transformers/all-MiniLM-L6-v2', AutoModelForSequenceClassification, ...)
        >>> trainer = Trainer(model_init=init, args=args, train_dataset=train)  # doctest: +SKIP
    """
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint must be a Hub id or a local folder; got {type(checkpoint).__name__}."
        )
    checkpoint = os.fspath(checkpoint)
    if not os.path.isdir(checkpoint):
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(checkpoint)
        except ValueError as err:
            raise ValueError(
                f"checkpoint {checkpoint!r} is not a folder, nor a Hub id ('org/name'): {err}"
            ) from err
    if num_labels is not None:
        check_positive_int("num_labels", num_labels)
    if not callable(getattr(auto_class, "from_pretrained", None)):
        raise TypeError(
            f"auto_class must be a transformers auto or model class with from_pretrained, e.g. "
            f"AutoModelForSequenceClassification; got {auto_class!r}."
        )
    for name, value in (
        ("trust_remote_code", trust_remote_code),
        ("use_safetensors", use_safetensors),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool; got {value!r}.")
    options = {
        **({"num_labels": num_labels} if num_labels is not None else {}),
        "trust_remote_code": trust_remote_code,
        # None lets transformers take safetensors when present and pickle otherwise.
        "use_safetensors": True if use_safetensors else None,
        **from_pretrained_kwargs,
    }
    return ModelInit(checkpoint, auto_class, options)


# --- LogMECallback --------------------------------------------------------------------------------

_LABEL_KEYS = ("label", "labels", "label_ids")


class LogMECallback(TrainerCallback):
    """``eval_logme``: LogME of the model's current features on the evaluation data, at every
    evaluation, to watch how transferable the representation stays through fine-tuning.

    The features are what a new head would see: the hidden states of the model's backbone
    (``model.base_model``) pooled the way its own classification head pools them (the
    :mod:`hf_logme.features.pooling` rule: BERT's pooler, RoBERTa's first token, a decoder's last
    token...), computed in inference mode (the model's train/eval modes are restored after).
    Labels come from the evaluation data. A seeded class-stratified subset of ``max_samples``
    rows is scored, the same rows at every evaluation, so values are comparable over training.

    The data:

    - with a raw input column (text, image, audio): :func:`hf_logme.extract_features`, exactly the
      features a ranking computes (tokenised by the package, batches sorted by length);
    - otherwise (the usual case for the default: the Trainer has dropped the text column its
      model's ``forward`` does not accept): the rows as the Trainer feeds them, batched with the
      Trainer's own data collator.

    Distributed (DDP, accelerate): every process scores its share of the rows and the statistics
    are summed across processes (:func:`hf_logme.distributed.all_reduce_statistics`), so every
    process gets the same value and the same metrics (``metric_for_best_model="logme"`` works).

    The hook is ``on_log``, not ``on_evaluate``: ``Trainer.evaluate`` first calls
    ``self.log(metrics)``, which appends a *copy* of the metrics to ``state.log_history`` and then
    calls ``on_log`` with the metrics dict itself, and only afterwards ``on_evaluate``. A value
    added in ``on_evaluate`` would reach the dict ``evaluate()`` returns but not the history nor
    any logger. In ``on_log`` this callback adds ``eval_logme`` to that dict (so ``evaluate()``
    returns it, and callbacks after this one, such as the progress printer, show it) and to the
    history entry just appended, once. It recognises an evaluation's log by the
    ``on_prediction_step`` events of the evaluation loop just before it. Callbacks that run before
    this one - the ``report_to`` integrations, which ``Trainer`` registers first - do not see
    ``eval_logme``; to have them record it, put this callback first:
    ``trainer.callback_handler.callbacks.insert(0, trainer.pop_callback(LogMECallback))``.

    A model this cannot score - not a transformers model (its head's pooling is unknown), a
    pooling it lacks, data without usable inputs or labels - is skipped with one warning per
    reason; training never stops because of this callback.

    Args:
        dataset: the ``datasets.Dataset`` to score; default: the dataset each evaluation runs on
            (the Trainer's ``eval_dataset``, or the one passed to ``evaluate()``).
        label_column: the labels; detected when there is one ``ClassLabel`` or a usual name.
        text_column, text_pair_column, image_column, audio_column: the raw input column(s), as in
            :func:`hf_logme.extract_features`; detected when unambiguous.
        intercept: LogME with a per-target intercept (default True, as in rankings).
        prior: the small-sample prior's pseudo-observations (default ``RANKING_PRIOR``, 2, as in
            rankings); None is the exact maximum evidence. ``intercept=False, prior=None`` is
            the paper's model. The logged value is ``eval_logme`` whichever variant.
        max_samples: rows scored per evaluation (default 2000); None scores every row.
        pooling: "auto" (what the model's own head reads), or "cls", "mean", "pooler", "last",
            "max".
        max_length: truncation of raw texts; default the checkpoint's limit.
        batch_size: rows per forward pass, or "auto" (as in ``extract_features``; 32 for
            collated rows).
        seed: seed of the ``max_samples`` subset.

    Raises:
        TypeError, ValueError: a bad option, or a column missing from ``dataset`` (at once, not at
            the first evaluation).

    Example:
        >>> trainer = Trainer(model_init=make_model_init(best, num_labels=2), args=args,
        ...                   train_dataset=train, eval_dataset=test, processing_class=tokenizer,
        ...                   callbacks=[LogMECallback()])  # doctest: +SKIP
        >>> trainer.evaluate()["eval_logme"]  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: Any = None,
        *,
        label_column: str | None = None,
        text_column: str | None = None,
        text_pair_column: str | None = None,
        image_column: str | None = None,
        audio_column: str | None = None,
        intercept: bool = True,
        prior: float | None = RANKING_PRIOR,
        max_samples: int | None = 2000,
        pooling: str = "auto",
        max_length: int | None = None,
        batch_size: int | str = "auto",
        seed: int = 0,
    ) -> None:
        self.columns = {
            "text_column": text_column,
            "text_pair_column": text_pair_column,
            "image_column": image_column,
            "audio_column": audio_column,
        }
        for name, value in {"label_column": label_column, **self.columns}.items():
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a column name (str) or None; got {value!r}.")
        if not isinstance(intercept, bool):
            raise TypeError(f"intercept must be a bool; got {intercept!r}.")
        LogME(intercept=intercept, prior=prior)  # a bad prior fails here, not in an evaluation
        if max_samples is not None:
            check_positive_int("max_samples", max_samples)
        check_choice("pooling", pooling, POOLINGS)
        if max_length is not None:
            check_positive_int("max_length", max_length)
        check_positive_int("batch_size", batch_size, allow=("auto",))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int; got {seed!r}.")
        if dataset is not None:
            dataset = resolve_split(dataset, None)
            for name, column in self.columns.items():
                check_column(dataset, name, column)
            find_label_column(dataset, label_column)
        self.dataset = dataset
        self.label_column = label_column
        self.intercept = intercept
        self.prior = prior
        self.max_samples = max_samples
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.seed = seed
        self._evaluating = False
        self._warned: set[str] = set()

    # --- Trainer events ---------------------------------------------------------------------

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._evaluating = True  # an evaluation (or prediction) loop is running

    def on_predict(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._evaluating = False  # that loop was predict(), which logs nothing

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._evaluating = False

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, Any] | None = None,
        model: Any = None,
        processing_class: Any = None,
        eval_dataloader: Any = None,
        **kwargs: Any,
    ) -> None:
        if not self._evaluating or logs is None:
            return
        self._evaluating = False
        dataset = (
            self.dataset if self.dataset is not None else getattr(eval_dataloader, "dataset", None)
        )
        value = self._score_everywhere(
            model, processing_class, dataset, getattr(eval_dataloader, "collate_fn", None), state
        )
        if value is None:
            return
        key = f"{_metric_prefix(logs)}_logme"
        entry = state.log_history[-1] if state.log_history else {}
        logs[key] = value
        if entry.keys() >= logs.keys() - {key}:  # the history's copy of these very logs
            entry[key] = value

    # --- scoring ----------------------------------------------------------------------------

    def accumulate(
        self,
        model: Any,
        *,
        processor: Any = None,
        dataset: Any = None,
        collate_fn: Callable[[list[dict[str, Any]]], Any] | None = None,
        process_index: int = 0,
        num_processes: int = 1,
    ) -> LogME:
        """LogME statistics of ``model``'s features on this process's share of the rows.

        What each evaluation computes before summing over processes; ``.compute()`` on the result
        gives the score of a single-process run.

        Args:
            model: a transformers model (with or without a task head).
            processor: its tokenizer or processor (the Trainer's ``processing_class``); default:
                loaded from ``model.name_or_path`` when raw inputs need it.
            dataset: the data; default: the callback's ``dataset``.
            collate_fn: batches rows without raw inputs into model inputs (the Trainer's data
                collator); default: padding with ``processor`` when it is a tokenizer.
            process_index, num_processes: this process's rows are every ``num_processes``-th of
                the scored rows, starting at ``process_index``.

        Returns:
            A :class:`hf_logme.LogME` holding this share's statistics.

        Raises:
            UnsupportedModelError: ``model`` is not a transformers model.
            ValueError: no dataset, or its labels or inputs do not fit (see
                :func:`hf_logme.extract_features`).
        """
        from transformers import PreTrainedModel

        if not isinstance(model, PreTrainedModel):
            raise UnsupportedModelError(
                f"a {type(model).__name__} is not a transformers PreTrainedModel, so the pooling "
                f"its head reads is unknown; LogMECallback scores transformers models only."
            )
        data = dataset if dataset is not None else self.dataset
        if data is None:
            raise ValueError(
                "no dataset to score: pass LogMECallback(dataset=...) or an eval_dataset."
            )
        data = resolve_split(data, None)
        label_column = find_label_column(data, self.label_column)
        targets, rows = rows_to_score(data, label_column, "auto", self.max_samples, self.seed)
        shard = rows[process_index::num_processes]
        backbone = model.base_model
        modality = modality_of(backbone.config, str(model.name_or_path))
        try:
            find_inputs(data, modality, **self.columns, exclude=(label_column,))
            raw = True
        except LookupError:  # model-ready columns only (input_ids...): batch them with the collator
            raw = False
            collate_fn = collate_fn if collate_fn is not None else _default_collator(processor)
        if not raw and processor is None:
            processor = collate_fn  # collated rows need no processor; load_model wants one
        loaded = load_model(backbone, processor=processor)
        pooling = self._head_pooling(loaded)
        metric = LogME(
            regression=targets.task != "classification",
            intercept=self.intercept,
            prior=self.prior,
        )
        if len(shard) == 0:
            return metric
        with _inference(model):
            if raw:
                extract_features(
                    loaded,
                    data.select(shard),
                    **self.columns,
                    label_column=label_column,
                    task=targets.task,
                    pooling=pooling,
                    max_length=self.max_length,
                    batch_size=self.batch_size,
                    on_batch=metric.update,
                    return_features=False,
                    progress=False,
                )
            else:
                self._collated(
                    loaded, pooling, data, shard, targets.values[shard], collate_fn, metric
                )
        return metric

    def _head_pooling(self, loaded: LoadedModel) -> str:
        """The requested pooling, or the architecture's head rule (not the checkpoint's
        sentence-transformers pooling, which the fine-tuned head does not use)."""
        if self.pooling != "auto":
            return self.pooling
        head = dataclasses.replace(loaded, st_pooling=None, pooler_loaded=True)
        choice = head.auto_pooling()
        logger.debug("%s: pooling=%s (%s).", loaded.model_id, choice.name, choice.reason)
        return choice.name

    def _collated(
        self,
        loaded: LoadedModel,
        pooling: str,
        data: Any,
        shard: np.ndarray,
        labels: np.ndarray,
        collate_fn: Callable[[list[dict[str, Any]]], Any],
        metric: LogME,
    ) -> None:
        """Stream rows batched by ``collate_fn`` through the backbone into ``metric``."""
        runner = FeatureRunner(loaded, pooling, "last")
        size = 32 if self.batch_size == "auto" else self.batch_size
        for start in range(0, len(shard), size):
            batch = collate_fn([data[int(i)] for i in shard[start : start + size]])
            inputs = {k: v for k, v in batch.items() if k not in _LABEL_KEYS}
            with torch.inference_mode():
                features = runner(inputs)
            metric.update(features, labels[start : start + size])

    def _score_everywhere(
        self, model: Any, processor: Any, dataset: Any, collate_fn: Any, state: Any
    ) -> float | None:
        """The score over every process's rows, or None (with a warning) if it cannot be had.

        Every process must call this at the same evaluation: it takes part in the collectives.
        """
        rank, world = rank_and_world()
        metric, error = None, None
        try:
            metric = self.accumulate(
                model,
                processor=processor,
                dataset=dataset,
                collate_fn=collate_fn,
                process_index=rank,
                num_processes=world,
            )
        except Exception as err:  # a monitoring metric must never stop training
            error = describe_error(err)
            logger.debug("LogMECallback failed on process %d", rank, exc_info=True)
        errors = gather(error)  # one process failing means nobody sums (or waits for it)
        failed = [f"process {i}: {e}" if world > 1 else e for i, e in enumerate(errors) if e]
        if failed:
            self._warn("; ".join(failed), state)
            return None
        try:
            options = {k: v for k, v in metric.get_params().items() if k != "regression"}
            total = LogME.from_statistics(all_reduce_statistics(metric.statistics), **options)
            return total.compute()
        except ValueError as err:  # the same on every process: statistics are shared now
            self._warn(describe_error(err), state)
            return None

    def _warn(self, reason: str, state: Any) -> None:
        """Warn once per reason, on the main process."""
        if not getattr(state, "is_world_process_zero", True):
            return
        if reason in self._warned:
            logger.debug("LogMECallback skipped again: %s", reason)
            return
        self._warned.add(reason)
        logger.warning("LogMECallback: no eval_logme for this evaluation: %s", reason)


def _metric_prefix(logs: Mapping[str, Any]) -> str:
    """``eval``, or ``eval_<name>`` for one of several eval datasets: the prefix of the
    evaluation's ``*_runtime`` speed metric."""
    for key in logs:
        if key.endswith("_runtime") and f"{key[: -len('_runtime')]}_samples_per_second" in logs:
            return key[: -len("_runtime")]
    return "eval"


def _default_collator(processor: Any) -> Callable[[list[dict[str, Any]]], Any]:
    from transformers import DataCollatorWithPadding, default_data_collator

    if processor is not None and callable(getattr(processor, "pad", None)):
        return DataCollatorWithPadding(processor)
    return default_data_collator


@contextlib.contextmanager
def _inference(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) inside; every submodule's own mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
