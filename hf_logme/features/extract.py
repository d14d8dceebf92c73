"""``extract_features``: a checkpoint and a labelled dataset in, pooled features and labels out.

Everything cheap is checked first (options, split, label column, targets, the checkpoint's config
and the input column its modality needs); only then are the weights loaded. Batches are prepared
on worker threads while the model runs, sorted by length (text, audio) so each is padded only to
its own longest row, and written back in dataset order.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from huggingface_hub.utils import tqdm

from ..errors import NonFiniteFeaturesError, UnsupportedModelError
from .columns import find_inputs
from .forward import FeatureRunner, is_out_of_memory, split_batch
from .inputs import RawSource, TextSource, processor_encoder
from .loading import Checkpoint, LoadedModel, inspect_checkpoint, load_model, modality_of
from .options import DATA_FIELDS, ExtractionOptions, check_bool
from .preflight import check_dataset
from .sentence_transformers import load_sentence_transformer, uses_sentence_transformers
from .targets import Targets
from .timm_models import TimmModel, check_timm_options

logger = logging.getLogger(__name__)

# batch_size="auto": where to start (halved on out-of-memory). On CPUs larger batches buy nothing.
_AUTO_BATCH = {
    "cpu": {"text": 32, "image": 32, "audio": 8},
    "accelerator": {"text": 256, "image": 128, "audio": 32},
}


@dataclass
class ExtractedFeatures:
    """Features of one model on one dataset, aligned with their labels.

    Attributes:
        features: (num_samples, dim) float32 tensor on the CPU, in dataset order; with
            ``layers="all"`` a dict from hidden-state index (0 = embeddings) to such a tensor;
            None with ``return_features=False``.
        labels: aligned targets: (num_samples,) class labels, float64 (num_samples,) regression
            values, or float64 (num_samples, K) multi-label 0/1 or multi-target values.
        task: "classification", "regression" or "multilabel".
        model_id: Hub id, local path or module name.
        revision: the commit sha the Hub revision resolved to (None for local models).
        pooling: the pooling used ("cls", "mean", "pooler", "last", "max", or "model" for a
            custom module that returns vectors).
        layers: "last" or "all".
        num_samples: rows scored (after dropping unlabelled rows and subsampling).
        dim: feature width; a dict per layer when layers differ in width (CNN stages).
        timings: seconds and rates: ``load_s``, ``extract_s`` (everything after loading),
            ``prepare_s`` (tokenising and processing, partly hidden behind the forward passes),
            ``wait_s`` (time the model waited for inputs), ``forward_s``, ``samples_per_s``.
        indices: (num_samples,) the dataset rows used, in the order of ``features``.
        label_names: class names (``ClassLabel``) or multi-label column names, if known.
        pooling_reason: why ``pooling="auto"`` chose ``pooling``.
        columns: the input column(s) read; ``label_column``: the label column.
        device, dtype: where and in which precision the model ran.
        batch_size: the batch size in the end (smaller than requested after out-of-memory).
        logits: with ``source_predictions=True`` and a checkpoint with a classification head:
            its (num_samples, num_source_classes) float32 logits on the CPU, from the same
            forward pass as the features (None with ``return_features=False``).
        logits_reason: with ``source_predictions=True``, why there are no logits ("" if there
            are).
    """

    features: torch.Tensor | dict[int, torch.Tensor] | None
    labels: np.ndarray
    task: str
    model_id: str
    revision: str | None
    pooling: str
    layers: str
    num_samples: int
    dim: int | dict[int, int]
    timings: dict[str, float]
    indices: np.ndarray
    label_names: list[Any] | None = None
    pooling_reason: str = ""
    columns: tuple[str, ...] = ()
    label_column: str = ""
    device: str = ""
    dtype: str = ""
    batch_size: int = 0
    logits: torch.Tensor | None = None
    logits_reason: str = ""


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset made ready once for any number of extractions (one per candidate).

    The split is chosen, the named columns checked, the label column found, the targets read and
    the rows to score drawn, so that extraction repeats none of it. Build it with
    :func:`prepare_dataset`; pass it wherever a dataset is accepted.

    Attributes:
        data: the ``datasets.Dataset`` (the split).
        label_column: the label column found.
        targets: every row's targets.
        rows: the rows to score (labelled, subsampled), sorted.
        options: the options it was prepared with, label column and task resolved.
    """

    data: Any
    label_column: str
    targets: Targets
    rows: np.ndarray
    options: ExtractionOptions

    @property
    def task(self) -> str:
        return self.options.task

    def check_matches(self, options: ExtractionOptions) -> None:
        """Raise if ``options`` ask for other rows or targets than those prepared."""
        mine = self.options
        for name in DATA_FIELDS:
            wanted, prepared = getattr(options, name), getattr(mine, name)
            unset = (name in ("split", "label_column") and wanted is None) or (
                name == "task" and wanted == "auto"
            )
            if wanted != prepared and not unset:
                raise ValueError(
                    f"{name}={wanted!r}, but the dataset was prepared with {name}={prepared!r}; "
                    f"pass the same value, or prepare_dataset(...) again with it."
                )


def prepare_dataset(dataset: Any, options: ExtractionOptions | None = None) -> PreparedDataset:
    """Choose the split, check the columns, find the label column, read the targets, draw the rows.

    Args:
        dataset: a ``datasets.Dataset``, or a ``DatasetDict`` with ``options.split``.
        options: the extraction options (their split, columns, label column, task,
            ``max_samples`` and ``seed`` are used); default ``ExtractionOptions()``.

    Raises:
        ValueError: an unknown split or column, no label column, labels that do not fit the task.
    """
    options = ExtractionOptions() if options is None else options
    checked = check_dataset(
        dataset,
        split=options.split,
        label_column=options.label_column,
        task=options.task,
        **options.columns,
        max_samples=options.max_samples,
        seed=options.seed,
    )
    data, label_column = checked.data, checked.label_column
    targets, rows = checked.targets, checked.rows
    resolved = options.replace(label_column=label_column, task=checked.task)
    return PreparedDataset(data, label_column, targets, rows, resolved)


def extract_features(
    model: Any,
    dataset: Any,
    *,
    split: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    image_column: str | None = None,
    audio_column: str | None = None,
    label_column: str | None = None,
    task: str = "auto",
    pooling: str = "auto",
    layers: str = "last",
    batch_size: int | str = "auto",
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    max_length: int | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
    processor: Any = None,
    sampling_rate: int | None = None,
    num_workers: int | str = "auto",
    source_predictions: bool = False,
    on_batch: Callable[[Any, np.ndarray], Any] | None = None,
    on_logits: Callable[[torch.Tensor, np.ndarray], Any] | None = None,
    return_features: bool = True,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    word_pooling: str = "first",
) -> ExtractedFeatures:
    """Compute the features a new task head would see, for every labelled row of a dataset.

    Args:
        model: Hub id or local folder (timm checkpoints too, with timm installed: their own
            preprocessing and ``forward_head(pre_logits=True)``, see
            :mod:`hf_logme.features.timm_models`); a timm model object; a transformers
            ``PreTrainedModel`` (with ``processor``);
            any ``torch.nn.Module`` with a ``preprocess`` callable (or ``processor=``) that maps
            a list of raw inputs to a tensor or dict of tensors; or a ``LoadedModel`` from
            :func:`hf_logme.features.load_model`, to extract repeatedly without reloading
            (its device and dtype are kept; the loading options below are then unused).
        dataset: a ``datasets.Dataset``, a ``DatasetDict`` with ``split``, or a
            :class:`PreparedDataset` from :func:`prepare_dataset` (to extract several models
            without reading the labels again; the data options must then match its own).
        split: the split of a DatasetDict (may be omitted when it has one split).
        text_column, text_pair_column: the text input, and the second text of sentence-pair
            tasks (NLI); detected from the column types and usual names when unambiguous.
        image_column: ``Image`` column, or nested lists / arrays of pixels.
        audio_column: ``Audio`` column, ``{"array", "sampling_rate"}`` dicts, or bare arrays
            with ``sampling_rate``. Resampled to the feature extractor's rate.
        label_column: targets; detected when there is one ``ClassLabel`` or one usual name.
        task: "auto" (ClassLabel/int/str/bool -> classification, float -> regression, lists ->
            multilabel, one tag per word of a words column -> token-classification),
            "classification", "regression", "multilabel" or "token-classification" (features
            and labels per word: see :mod:`hf_logme.features.tokens`; ``text_column`` then
            names the words column).
        pooling: "auto" (what the model's own classification head reads; see
            :mod:`hf_logme.features.pooling`), "cls", "mean", "pooler", "last", "max", or
            "sentence-transformers" (a checkpoint's own sentence-transformers modules; "auto"
            uses them when they include more than Pooling and Normalize, e.g. a Dense layer,
            and always for a ``SentenceTransformer`` object: see
            :mod:`hf_logme.features.sentence_transformers`).
        layers: "last", or "all" for every hidden state from the same forward pass.
        batch_size: rows per forward pass, or "auto" (32 on CPU, 256 text / 128 image / 32
            audio on accelerators), halved whenever the device runs out of memory.
        device: "auto" (cuda, then mps, then cpu) or a torch device.
        dtype: "auto" (bfloat16 on GPUs that support it, else float32) or a floating dtype.
        max_length: truncate texts to this many tokens; default: the checkpoint's own limit.
        max_samples: score a seeded random subset of this size, stratified by class.
        seed: seed of that subset.
        revision, token, trust_remote_code, use_safetensors: Hub loading options (see
            :func:`hf_logme.features.load_model`); remote code and pickle weights are refused
            unless allowed.
        processor: the processor of a model object.
        sampling_rate: the rate of an audio column of bare arrays.
        num_workers: threads preparing batches ("auto": 1 for text, up to 8 for images and audio).
        source_predictions: also return the checkpoint's own classifier logits (``logits``),
            from the same forward pass, when its ``config.architectures`` names a sequence,
            image or audio classification head (loaded with the matching
            ``AutoModelFor...Classification``; the features stay its base model's hidden
            states). Without a head, ``logits`` is None and ``logits_reason`` says why.
        on_batch: called as ``on_batch(features, labels)`` after each batch, in the processing
            order (longest inputs first for text and audio, not dataset order); ``features`` is
            a (B, D) float32 tensor on the model's device (a dict per layer with
            ``layers="all"``) and ``labels`` the aligned rows of ``ExtractedFeatures.labels``,
            ready for ``LogME.update`` (``regression=True`` for regression and multilabel).
        on_logits: with source predictions, called as ``on_logits(logits, labels)`` after each
            batch: (B, num_source_classes) float32 logits on the model's device.
        shard: ``(index, count)``: process only every ``count``-th batch, starting at
            ``index``, of the batches one call would run, so ``count`` processes share the work
            and together cover every row once. Each process's batches are exactly those of a
            single call (same rows, same padding), so the features are the same bit for bit
            (unless out-of-memory halving changes one process's batch size). The result holds
            that shard's rows only.
        return_features: keep all features (N x D on the CPU); False keeps none, for streaming
            through ``on_batch`` only.
        progress: show a progress bar (also silenced by ``HF_HUB_DISABLE_PROGRESS_BARS``).
        word_pooling: token classification only: a word's "first" sub-token or the "mean" of
            its sub-tokens.

    Returns:
        An :class:`ExtractedFeatures`.

    Raises:
        ValueError: a bad option, or a dataset whose columns or labels do not fit (messages list
            the columns and the option to set).
        TypeError: a dataset that is not a Dataset/DatasetDict, a non-int seed, a non-callable
            on_batch.
        RemoteCodeRequiredError, UnsafeWeightsError: loading needs an opt-in.
        UnsupportedModelError: transformers cannot load the model, or the dataset has no input
            of the model's modality.
        NonFiniteFeaturesError: the model produced NaN or infinite features.

    Example:
        >>> import datasets, hf_logme
        >>> ds = datasets.Dataset.from_dict({"text": ["good", "bad"] * 8, "label": [1, 0] * 8})
        >>> model = "sentence-transformers/all-MiniLM-L6-v2"
        >>> out = hf_logme.extract_features(model, ds)  # doctest: +SKIP
        >>> out.features.shape, out.pooling  # doctest: +SKIP
        (torch.Size([16, 384]), 'mean')
        >>> hf_logme.logme(out.features, out.labels)  # doctest: +SKIP
    """
    options = ExtractionOptions(
        split=split,
        text_column=text_column,
        text_pair_column=text_pair_column,
        image_column=image_column,
        audio_column=audio_column,
        label_column=label_column,
        task=task,
        pooling=pooling,
        layers=layers,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        max_length=max_length,
        max_samples=max_samples,
        seed=seed,
        revision=revision,
        token=token,
        trust_remote_code=trust_remote_code,
        use_safetensors=use_safetensors,
        sampling_rate=sampling_rate,
        num_workers=num_workers,
        source_predictions=source_predictions,
        shard=shard,
    )
    return extract(
        model,
        dataset,
        options,
        processor=processor,
        on_batch=on_batch,
        on_logits=on_logits,
        return_features=return_features,
        progress=progress,
        word_pooling=word_pooling,
    )


def extract(
    model: Any,
    dataset: Any,
    options: ExtractionOptions,
    *,
    processor: Any = None,
    on_batch: Callable[[Any, np.ndarray], Any] | None = None,
    on_logits: Callable[[torch.Tensor, np.ndarray], Any] | None = None,
    return_features: bool = True,
    progress: bool = True,
    word_pooling: str = "first",
) -> ExtractedFeatures:
    """:func:`extract_features` with its options already in one validated object."""
    for name, callback in (("on_batch", on_batch), ("on_logits", on_logits)):
        if callback is not None and not callable(callback):
            raise TypeError(
                f"{name} must be callable as {name}(features, labels); got {callback!r}."
            )
    check_bool("return_features", return_features)
    check_bool("progress", progress)
    if not return_features and on_batch is None:
        raise ValueError("return_features=False and no on_batch: nothing would be produced.")
    if isinstance(dataset, PreparedDataset):
        dataset.check_matches(options)
        prepared = dataset
    else:
        prepared = prepare_dataset(dataset, options)
    # This call's options (source predictions, shard...) with the prepared label column and task.
    o = options.replace(label_column=prepared.label_column, task=prepared.task)
    from .tokens import TOKEN_TASK, extract_token_features  # tokens imports this module

    if o.task == TOKEN_TASK:  # one row per word
        return extract_token_features(
            model,
            prepared.data,
            tokens_column=o.text_column,
            label_column=prepared.label_column,
            word_pooling=word_pooling,
            pooling=o.pooling,
            layers=o.layers,
            batch_size=o.batch_size,
            device=o.device,
            dtype=o.dtype,
            max_length=o.max_length,
            max_samples=o.max_samples,
            seed=o.seed,
            revision=o.revision,
            token=o.token,
            trust_remote_code=o.trust_remote_code,
            use_safetensors=o.use_safetensors,
            processor=processor,
            on_batch=on_batch,
            return_features=return_features,
            shard=o.shard,
            progress=progress,
        )
    data, label_column, targets, rows = (
        prepared.data,
        prepared.label_column,
        prepared.targets,
        prepared.rows,
    )

    # The checkpoint's config says which input it reads: find it before loading weights.
    load_start = time.perf_counter()
    if isinstance(model, (str, os.PathLike)):
        model = inspect_checkpoint(
            model, revision=o.revision, token=o.token, trust_remote_code=o.trust_remote_code
        )
        hub = {"revision": model.revision, "token": o.token}
        if model.library == "transformers" and uses_sentence_transformers(
            model.model_id, o.pooling, o.layers, **hub
        ):
            model = load_sentence_transformer(
                model.model_id,
                trust_remote_code=o.trust_remote_code,
                use_safetensors=o.use_safetensors,
                device=o.device,
                dtype=o.dtype,
                **hub,
            )
    try:
        inputs = find_inputs(
            data,
            _modality(model),
            **o.columns,
            exclude=(label_column,),
        )
    except LookupError as err:
        raise UnsupportedModelError(f"{_name(model)}: {err}", model_id=_name(model)) from err
    loaded = load_model(
        model,
        processor=processor,
        revision=o.revision,
        token=o.token,
        trust_remote_code=o.trust_remote_code,
        use_safetensors=o.use_safetensors,
        device=o.device,
        dtype=o.dtype,
        classifier=o.source_predictions,
    )
    predictions, logits_reason = _has_predictions(loaded, o.source_predictions)
    load_s = 0.0 if isinstance(model, LoadedModel) else time.perf_counter() - load_start
    pooling, reason = _resolve_pooling(loaded, o.pooling, o.layers)

    extract_start = time.perf_counter()
    subset = data if len(rows) == len(data) else data.select(rows)
    if inputs.modality == "text" and loaded.is_transformers:
        source: Any = TextSource(
            subset,
            inputs.columns,
            loaded.processor,
            max_length=o.max_length or loaded.max_length,
            forward_args=loaded.forward_args,
        )
    else:
        encode, rate = processor_encoder(loaded, inputs.modality)
        source = RawSource(subset, inputs, encode, sampling_rate=rate, column_rate=o.sampling_rate)
    prepare_s = time.perf_counter() - extract_start

    accelerator = "cpu" if loaded.device.type == "cpu" else "accelerator"
    size = _AUTO_BATCH[accelerator][inputs.modality] if o.batch_size == "auto" else o.batch_size
    num_workers = o.num_workers
    if num_workers == "auto":
        num_workers = 1 if inputs.modality == "text" else max(1, min(8, (os.cpu_count() or 2) - 1))
    order = (
        np.arange(len(rows))
        if source.lengths is None
        else np.argsort(-source.lengths, kind="stable")
    )  # longest first: OOM shows early
    shard = o.shard
    if shard is not None:  # every count-th batch of the single-call batches, from index
        mine = [order[i : i + size] for i in range(0, len(order), size)][shard[0] :: shard[1]]
        order = np.concatenate(mine) if mine else order[:0]
    labels = targets.values[rows]
    runner = FeatureRunner(loaded, pooling, o.layers, predictions=predictions)
    loop = _Loop(
        runner,
        size,
        adaptive=o.batch_size == "auto",
        on_batch=on_batch,
        on_logits=on_logits,
        keep=return_features,
        num_rows=len(rows),
        labels=labels,
    )
    was_training = loaded.model.training
    loaded.model.eval()  # no dropout; restored below for a model the caller passed in
    try:
        with tqdm(
            total=len(order),
            unit="sample",
            desc=f"Features {loaded.model_id}",
            disable=not progress,
        ) as bar:
            timings = loop.run(source, order, num_workers, bar)
    finally:
        loaded.model.train(was_training)
    extract_s = time.perf_counter() - extract_start
    timings.update(load_s=load_s, extract_s=extract_s, samples_per_s=len(order) / extract_s)
    timings["prepare_s"] += prepare_s
    features, logits = loop.features, loop.logits
    if shard is not None:  # this shard's rows only, in dataset order
        kept = np.sort(order)
        rows, labels = rows[kept], labels[kept]
        if logits is not None:
            logits = logits[torch.from_numpy(kept)]
        if isinstance(features, dict):
            features = {k: v[torch.from_numpy(kept)] for k, v in features.items()}
        elif features is not None:
            features = features[torch.from_numpy(kept)]

    return ExtractedFeatures(
        features=features,
        labels=labels,
        task=targets.task,
        model_id=loaded.model_id,
        revision=loaded.revision,
        pooling=runner.pooling,
        layers=o.layers,
        num_samples=len(rows),
        dim=loop.dim,
        timings=timings,
        indices=rows,
        label_names=targets.names,
        pooling_reason=reason,
        columns=inputs.columns,
        label_column=label_column,
        device=str(loaded.device),
        dtype=str(loaded.dtype).removeprefix("torch."),
        batch_size=loop.size,
        logits=logits,
        logits_reason=logits_reason,
    )


def _has_predictions(loaded: LoadedModel, wanted: bool) -> tuple[bool, str]:
    """Whether the source model's logits come with the features, and if not, why not."""
    if not wanted:
        return False, ""
    if loaded.classifier is not None:
        return True, ""
    if isinstance(loaded, TimmModel):
        reason = f"{loaded.model_id} has no classification head (timm num_classes=0)"
        logger.info("%s.", reason)
        return False, reason
    architectures = getattr(loaded.config, "architectures", None)
    reason = (
        f"{loaded.model_id} has no classification head to give source predictions "
        f"(config.architectures={architectures!r}; LEEP and NCE need a checkpoint saved "
        f"with a sequence, image or audio classification head)"
    )
    logger.info("%s.", reason)
    return False, reason


def _resolve_pooling(loaded: LoadedModel, pooling: str, layers: str) -> tuple[str, str]:
    """The pooling name to use and why."""
    if isinstance(loaded, TimmModel):
        pooling, reason = check_timm_options(loaded, pooling, layers)
        logger.info("%s: pooling=%s (%s), layers=%s.", loaded.model_id, pooling, reason, layers)
        return pooling, reason
    if not loaded.is_transformers and (pooling == "pooler" or layers == "all"):
        option = "pooling='pooler'" if pooling == "pooler" else "layers='all'"
        raise ValueError(
            f"{option} needs a transformers model; {loaded.model_id} is a custom module (use "
            f"layers='last' and pooling 'auto', 'mean', 'cls', 'max' or 'last')."
        )
    if pooling == "auto":
        choice = loaded.auto_pooling(layers)
        pooling, reason = choice.name, choice.reason
    else:
        reason = "requested"
        if pooling == "pooler" and not loaded.pooler_loaded:
            logger.warning(
                "%s: its pooler weights are not in the checkpoint (random).", loaded.model_id
            )
    logger.info("%s: pooling=%s (%s), layers=%s.", loaded.model_id, pooling, reason, layers)
    return pooling, reason


def _modality(model: Any) -> str | None:
    if isinstance(model, (Checkpoint, LoadedModel)):
        return model.modality
    from transformers import PreTrainedModel

    if isinstance(model, PreTrainedModel):
        return modality_of(model.config, _name(model))
    return None


def _name(model: Any) -> str:
    return str(
        getattr(model, "model_id", None)
        or getattr(model, "name_or_path", None)
        or type(model).__name__
    )


class _Loop:
    """The batch loop: prefetch inputs on threads, forward, check, hand out, store."""

    def __init__(
        self,
        runner: FeatureRunner,
        size: int,
        *,
        adaptive: bool,
        on_batch: Callable[[Any, np.ndarray], Any] | None,
        on_logits: Callable[[torch.Tensor, np.ndarray], Any] | None = None,
        keep: bool,
        num_rows: int,
        labels: np.ndarray,
    ) -> None:
        self.runner, self.size, self.adaptive = runner, size, adaptive
        self.on_batch, self.keep, self.num_rows, self.labels = on_batch, keep, num_rows, labels
        self.on_logits = on_logits
        self.features: torch.Tensor | dict[int, torch.Tensor] | None = None
        self.logits: torch.Tensor | None = None
        self.dim: int | dict[int, int] = 0

    def run(self, source: Any, order: np.ndarray, num_workers: int, bar: Any) -> dict[str, float]:
        batches = [order[i : i + self.size] for i in range(0, len(order), self.size)]
        pin = self.runner.loaded.device.type == "cuda"

        def prepare(positions: np.ndarray) -> tuple[Any, float]:
            began = time.perf_counter()
            inputs = source.batch(positions)
            if pin:
                inputs = _pin(inputs)
            return inputs, time.perf_counter() - began

        timings = {"prepare_s": 0.0, "wait_s": 0.0, "forward_s": 0.0}
        with ThreadPoolExecutor(
            max_workers=num_workers, thread_name_prefix="hf-logme-inputs"
        ) as pool:
            pending: deque = deque()
            upcoming = iter(batches)
            try:
                for positions in upcoming:
                    pending.append((positions, pool.submit(prepare, positions)))
                    if len(pending) > num_workers:
                        break
                while pending:
                    positions, future = pending.popleft()
                    waited = time.perf_counter()
                    inputs, prepare_s = future.result()
                    timings["wait_s"] += time.perf_counter() - waited
                    timings["prepare_s"] += prepare_s
                    following = next(upcoming, None)
                    if following is not None:
                        pending.append((following, pool.submit(prepare, following)))
                    began = time.perf_counter()
                    self._process(positions, inputs)
                    timings["forward_s"] += time.perf_counter() - began
                    bar.update(len(positions))
            finally:
                for _, future in pending:
                    future.cancel()
        return timings

    def _process(self, positions: np.ndarray, inputs: Any) -> None:
        features = self._forward(inputs)
        logits = None
        if self.runner.predictions:
            features, logits = features
        _check_finite(features, self.runner)
        if not self.dim:
            self.dim = _width(features)
        labels = self.labels[positions]
        if self.on_batch is not None:
            self.on_batch(features, labels)
        if logits is not None and self.on_logits is not None:
            self.on_logits(logits, labels)
        if self.keep:
            self._store(positions, features)
            if logits is not None:
                if self.logits is None:
                    self.logits = torch.empty(self.num_rows, logits.shape[1])
                self.logits[torch.from_numpy(positions)] = logits.cpu()

    def _forward(self, inputs: Any) -> torch.Tensor | dict[int, torch.Tensor]:
        """Run one prepared batch, in pieces of ``self.size`` rows, halving on out-of-memory."""
        while True:
            try:
                with torch.inference_mode():
                    parts = [self.runner(piece) for piece in split_batch(inputs, self.size)]
                break
            except Exception as err:
                if not is_out_of_memory(err):
                    raise
                if not self.adaptive or self.size == 1:
                    raise type(err)(
                        f"{err}\nhf-logme: out of memory at batch_size={self.size}; pass a "
                        f"smaller batch_size, or batch_size='auto' to halve it automatically."
                    ) from err
            # Outside the except clause, so the failed pass's tensors are already released.
            self.size //= 2
            logger.warning("Out of memory; retrying with batch_size=%d.", self.size)
            _empty_cache(self.runner.loaded.device)
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], tuple):  # (features, logits)
            return _concat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return _concat(parts)

    def _store(
        self, positions: np.ndarray, features: torch.Tensor | dict[int, torch.Tensor]
    ) -> None:
        index = torch.from_numpy(positions)
        if isinstance(features, dict):
            if self.features is None:
                self.features = {
                    k: torch.empty(self.num_rows, v.shape[1]) for k, v in features.items()
                }
            for k, v in features.items():
                self.features[k][index] = v.cpu()
            return
        if self.features is None:
            self.features = torch.empty(self.num_rows, features.shape[1])
        self.features[index] = features.cpu()


def _concat(parts: list[Any]) -> torch.Tensor | dict[int, torch.Tensor]:
    """Pieces of one batch's features (tensors, or dicts of them per layer) joined by rows."""
    if isinstance(parts[0], dict):
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return torch.cat(parts)


def _width(features: torch.Tensor | dict[int, torch.Tensor]) -> int | dict[int, int]:
    """D, or per-layer widths when the layers of a CNN differ."""
    if not isinstance(features, dict):
        return features.shape[1]
    widths = {k: v.shape[1] for k, v in features.items()}
    return widths if len(set(widths.values())) > 1 else next(iter(widths.values()))


def _check_finite(features: torch.Tensor | dict[int, torch.Tensor], runner: FeatureRunner) -> None:
    tensors = features.values() if isinstance(features, dict) else (features,)
    if all(bool(torch.isfinite(t).all()) for t in tensors):
        return
    loaded = runner.loaded
    hint = (
        " It ran in float16, which overflows easily: pass dtype='float32' or 'bfloat16'."
        if loaded.dtype == torch.float16
        else ""
    )
    raise NonFiniteFeaturesError(
        f"{loaded.model_id}: the model produced NaN or infinite features (pooling="
        f"{runner.pooling!r}, dtype={str(loaded.dtype).removeprefix('torch.')}).{hint}",
        model_id=loaded.model_id,
    )


def _pin(inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.pin_memory()
    return {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
