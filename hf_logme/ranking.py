"""Rank candidate checkpoints for a dataset: extract, score, cache, and never let one failure stop the run.

For each candidate, in order: resolve its commit, look up the cache, otherwise download only what
``from_pretrained`` needs (the next candidate downloads in the background meanwhile), stream its
features batch by batch into float64 statistics (``N x D`` is never held), store the statistics,
and score them with every requested method. A candidate that cannot be scored becomes a
``skipped`` row with the reason; the model is freed before the next one loads.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from . import distributed
from .cache import StatisticsCache
from .errors import describe as describe_error
from .estimators import GramEstimator, LogME, get_estimator
from .estimators._statistics import GramStatistics
from .results import Ranking, RankingRow

logger = logging.getLogger(__name__)

LayerMode = Literal["last", "best", "mean"]
LAYER_MODES = ("last", "best", "mean")

# Options a ranking uses unless told otherwise. LogME with an intercept: mean-pooled transformer
# features share large common offsets, and without the intercept the pretrained all-MiniLM-L6-v2
# ranked below its own randomly initialised copy on 10 of 10 food-review subsets (with it: on
# none); see the README.
RANKING_DEFAULTS: dict[str, dict[str, Any]] = {"logme": {"intercept": True}}
# Tasks whose labels are classes (token classification: one class per word).
_CLASS_TASKS = ("classification", "token-classification")


@dataclass(frozen=True)
class _Model:
    """One candidate as given: a Hub id (with what search already knows) or a local folder."""

    name: str
    local: bool
    sha: str | None = None
    num_parameters: int | None = None
    obj: Any = None  # a features.candidates.ModelCandidate: a model object


def rank_models(
    models: Iterable[str | os.PathLike | Any],
    dataset: Any,
    *,
    methods: Sequence[str] | Mapping[str, Mapping[str, Any]] = ("logme",),
    layers: LayerMode = "last",
    split: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    image_column: str | None = None,
    audio_column: str | None = None,
    label_column: str | None = None,
    task: str = "auto",
    pooling: str = "auto",
    batch_size: int | str = "auto",
    device: str = "auto",
    dtype: str = "auto",
    max_length: int | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    delete_after: bool = False,
    distribute: Literal["auto", "samples", "candidates"] = "auto",
    progress: bool = True,
) -> Ranking:
    """Score every candidate checkpoint on ``dataset`` and rank them, best first.

    Args:
        models: Hub ids (``"org/name"``), local model folders, ``Candidate`` objects from
            :func:`hf_logme.search_candidates`, or model objects (a ``SentenceTransformer``, a
            ``PreTrainedModel``, a ``torch.nn.Module`` with ``preprocess``, a ``LoadedModel``),
            named by their ``name_or_path`` or by
            :func:`hf_logme.features.candidates.as_model_candidate` (``name=``, ``processor=``)
            and cached by a fingerprint of their weights and preprocessing.
        dataset: a ``datasets.Dataset``, or a ``DatasetDict`` with ``split``.
        methods: estimator names (``("logme",)``), or a mapping from name to its options, e.g.
            ``{"logme": {"intercept": False}}``. The first orders the ranking. Options default to
            ``RANKING_DEFAULTS`` (LogME: ``intercept=True``), then to the estimator's own.
        layers: ``"last"`` scores the last hidden layer; ``"best"`` scores every hidden layer from
            one forward pass and keeps each model's best; ``"mean"`` scores the average of all
            hidden layers.
        split, text_column, text_pair_column, image_column, audio_column, label_column, task,
            pooling, batch_size, device, dtype, max_length, max_samples, seed: as in
            :func:`hf_logme.extract_features`; columns are detected when unambiguous.
        token: Hub token for private or gated models.
        trust_remote_code: allow checkpoints whose architecture is code in their repo.
        use_safetensors: False also accepts pickle (``.bin``) weights.
        cache: reuse and store per-candidate statistics (``--no-cache`` turns it off).
        cache_dir: where; default ``$HF_HOME/hf_logme``.
        delete_after: delete each checkpoint downloaded by this run once it is scored.
        distribute: under ``accelerate launch`` / ``torchrun`` (several processes): "samples"
            gives every process a shard of the rows of every candidate and sums the statistics;
            "candidates" gives each process whole candidates; "auto" spreads candidates when
            there are at least as many as processes, else samples. Every process returns the
            same ranking. Ignored in a single process.
        progress: show progress bars.

    Returns:
        A :class:`Ranking`. Candidates that could not be scored are rows with status
        ``"skipped"`` and the reason; the run only raises for problems that would affect every
        candidate (bad options, unknown columns).

    Example:
        >>> ranking = rank_models(["sentence-transformers/all-MiniLM-L6-v2",
        ...                        "BAAI/bge-small-en-v1.5"], dataset)  # doctest: +SKIP
        >>> print(ranking)  # doctest: +SKIP
    """
    from .features.columns import check_column, resolve_split
    from .features.options import TASKS, check_choice, resolve_device, resolve_dtype
    from .features.targets import find_label_column, read_targets
    from .features.tokens import TOKEN_TASK, is_token_task

    method_specs = _resolve_methods(methods)
    check_choice("layers", layers, LAYER_MODES)
    check_choice("task", task, TASKS)
    check_choice("distribute", distribute, ("auto", "samples", "candidates"))
    candidates = _as_models(models)
    data = resolve_split(dataset, split)
    # Problems every candidate would hit are raised now, before any model loads.
    inputs = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "image_column": image_column,
        "audio_column": audio_column,
    }
    for option, column in inputs.items():
        check_column(data, option, column)
    label_column = find_label_column(data, label_column)
    if is_token_task(data, label_column, task, text_column):  # features and tags per word
        task = TOKEN_TASK
    else:
        task = read_targets(data, label_column, task).task
    _check_methods_support(method_specs, task)
    distributed.init_from_env()
    rank, world = distributed.rank_and_world()
    if world > 1 and device == "auto":
        device = distributed.local_device()
    extract_options = {
        **inputs,
        "label_column": label_column,
        "task": task,
        "pooling": pooling,
        "layers": "last" if layers == "last" else "all",
        "batch_size": batch_size,
        "device": device,
        "dtype": dtype,
        "max_length": max_length,
        "max_samples": max_samples,
        "seed": seed,
        "trust_remote_code": trust_remote_code,
        "use_safetensors": use_safetensors,
    }
    dataset_info = {
        "name": _dataset_name(data),
        "fingerprint": getattr(data, "_fingerprint", None),
        "split": split,
        "num_rows": len(data),
        "label_column": label_column,
        "task": task,
    }
    # Everything that changes the statistics, and nothing that does not (device index, batch size).
    key_base = {
        **{k: v for k, v in dataset_info.items() if k not in ("name", "num_rows")},
        **{k: extract_options[k] for k in (*inputs, "pooling", "max_length", "max_samples", "seed")},
        "layers": layers,
        "dtype": str(resolve_dtype(dtype, resolve_device(device))),
    }
    store = StatisticsCache(cache_dir, enabled=cache)
    mode = "single" if world == 1 else distribute
    if mode == "auto":
        mode = "candidates" if len(candidates) >= world else "samples"
    if mode == "samples":
        # Each process runs every world-th batch of the batches one process would run.
        runner = _Runner(data, {**extract_options, "shard": (rank, world)}, key_base, store, method_specs,
                         layers, token, delete_after, progress, collective=True)
        ranked = runner.run(candidates)
    else:
        mine = candidates[rank::world]
        runner = _Runner(data, extract_options, key_base, store, method_specs, layers, token,
                         delete_after, progress and rank == 0)
        ranked = [row for rows_of_rank in distributed.gather(runner.run(mine)) for row in rows_of_rank]
    options = {k: v for k, v in extract_options.items() if not k.endswith("_column") and k != "task"}
    options["layers"] = layers
    if world > 1:
        options["distribute"] = mode
    return Ranking(ranked, method_specs, dataset_info, options)


# --- option checks (before any model loads) ------------------------------------------------------


def _resolve_methods(
    methods: Sequence[str] | Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    if isinstance(methods, str):
        methods = (methods,)
    specs = dict(methods) if isinstance(methods, Mapping) else {name: {} for name in methods}
    if not specs:
        raise ValueError("methods is empty; pass at least one estimator name, e.g. ('logme',).")
    resolved = {}
    for name, options in specs.items():
        cls = get_estimator(name)
        if not issubclass(cls, GramEstimator):
            raise ValueError(f"method {name!r} needs raw features; rank_models supports Gram-based estimators.")
        options = {**RANKING_DEFAULTS.get(name, {}), **dict(options or {})}
        estimator = cls(**options)  # bad options fail here, before any model loads
        # Record what is used, defaults included; the task decides ``regression`` per run.
        resolved[name] = {k: v for k, v in estimator.get_params().items() if k != "regression"}
    return resolved


def _check_methods_support(specs: Mapping[str, Mapping[str, Any]], task: str) -> None:
    if task in _CLASS_TASKS:
        return
    for name in specs:
        if not get_estimator(name).supports_regression:
            raise ValueError(f"method {name!r} cannot score a {task} task; drop it or change task.")


def _as_models(models: Iterable[Any]) -> list[_Model]:
    from .features.candidates import as_model_candidate, is_model_object

    if isinstance(models, (str, os.PathLike)) or is_model_object(models):
        models = [models]
    candidates, seen = [], set()
    for given in models:
        if isinstance(given, (str, os.PathLike)):
            name = os.fspath(given)
            model = _Model(name, local=Path(name).expanduser().is_dir())
        elif is_model_object(given):  # named by name_or_path, or as_model_candidate(name=)
            obj = as_model_candidate(given)
            model = _Model(obj.name, True, num_parameters=obj.num_parameters, obj=obj)
        elif hasattr(given, "id") and hasattr(given, "sha"):  # a hub.Candidate
            model = _Model(given.id, False, given.sha, getattr(given, "num_parameters", None))
        else:
            raise TypeError(
                f"models must be Hub ids, local paths or Candidates (or model objects: torch "
                f"modules, SentenceTransformers, LoadedModels); got {type(given).__name__}."
            )
        if model.name in seen:
            raise ValueError(f"models lists {model.name!r} twice.")
        seen.add(model.name)
        candidates.append(model)
    if not candidates:
        raise ValueError("models is empty; pass Hub ids, local paths, or search_candidates(...).")
    return candidates


def _dataset_name(dataset: Any) -> str:
    info = getattr(dataset, "info", None)
    return (getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "dataset")


# --- the per-candidate loop ---------------------------------------------------------------------


class _Skip(Exception):
    """A candidate every process agreed to skip (the reason comes from whichever failed)."""


class _Runner:
    """Runs the candidates one at a time; owns the prefetch thread and the cache.

    With ``collective=True`` every process of a process group runs every candidate on its own
    shard of the rows: process 0 decides what the cache holds, all processes extract, their
    statistics are summed, process 0 scores and every process returns the same rows. Every
    collective call is reached by every process whatever fails, so a failure skips the candidate
    everywhere instead of hanging the group. Single-process runs take the same path, whose
    collectives are then no-ops.
    """

    def __init__(
        self,
        dataset: Any,
        extract_options: dict[str, Any],
        key_base: dict[str, Any],
        store: StatisticsCache,
        methods: dict[str, dict[str, Any]],
        layers: LayerMode,
        token: str | bool | None,
        delete_after: bool,
        progress: bool,
        collective: bool = False,
    ) -> None:
        self.dataset = dataset
        self.extract_options = extract_options
        self.key_base = key_base
        self.store = store
        self.methods = methods
        self.layers = layers
        self.token = token
        self.delete_after = delete_after
        self.collective = collective
        self.rank = distributed.rank_and_world()[0] if collective else 0
        self.progress = progress and self.rank == 0
        self._downloads: dict[str, Future] = {}
        self._revisions: dict[str, tuple[str | None, int | None]] = {}

    def run(self, candidates: list[_Model]) -> list[RankingRow]:
        from huggingface_hub.utils import tqdm

        rows = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-logme-download") as pool:
            self._pool = pool
            bar = tqdm(candidates, desc="candidates", unit="model", disable=not self.progress or len(candidates) < 2)
            for index, model in enumerate(bar):
                bar.set_postfix_str(model.name, refresh=False)
                if index + 1 < len(candidates) and self.rank == 0:
                    self._prefetch(candidates[index + 1])
                rows.append(self._rank_one(model))
                _free_memory()
            for future in self._downloads.values():
                future.cancel()
        return rows

    # --- collectives (identities unless collective) ---------------------------------------------

    def _decided_by_first(self, fn: Any) -> Any:
        """``fn()`` computed by process 0 (its exception, if any, raised on every process)."""
        value = error = None
        if self.rank == 0:
            try:
                value = fn()
            except Exception as err:  # every process must reach the broadcast
                error = describe_error(err)
        if self.collective:
            value, error = distributed.broadcast((value, error))
        if error is not None:
            raise _Skip(error)
        return value

    def _agree_all_succeeded(self, error: str | None) -> None:
        errors = distributed.gather(error) if self.collective else [error]
        failed = [e for e in errors if e is not None]
        if failed:
            raise _Skip(failed[0])

    # --- one candidate -------------------------------------------------------------------------

    def _rank_one(self, model: _Model) -> RankingRow:
        downloaded: tuple[Path, bool] | None = None
        revision = None
        try:
            revision, num_parameters = self._decided_by_first(lambda: self._resolve(model))
            key = self._key(model, revision)
            cached = self._decided_by_first(lambda: self.store.get(key) is not None)
            if cached:
                entry = self.store.get(key) if self.rank == 0 else None
            else:
                entry = error = None
                try:
                    source, downloaded = self._source(model, revision)
                    entry = self._extract(source, model.name, revision)
                except Exception as err:
                    error = describe_error(err)
                    logger.debug("Traceback for %s", model.name, exc_info=True)
                self._agree_all_succeeded(error)
                if self.collective:
                    entry = _summed(entry, regression=self.extract_options["task"] not in _CLASS_TASKS)
                if self.rank == 0:
                    _store(self.store, key, entry)
            row = self._decided_by_first(lambda: self._row(model, entry, revision, num_parameters, cached))
        except _Skip as skip:
            logger.warning("Skipping %s: %s", model.name, skip)
            row = RankingRow(model=model.name, status="skipped", revision=revision, reason=str(skip))
        finally:
            if self.delete_after and downloaded is not None and downloaded[1] and _node_main():
                from .hub import delete_snapshot

                delete_snapshot(model.name, revision=revision)
        return row

    def _key(self, model: _Model, revision: str | None) -> dict[str, Any]:
        if model.obj is not None:  # keyed by its weights and preprocessing
            return {**self.key_base, "model": f"object:{model.obj.fingerprint}", "revision": None}
        model = model.name if not model.local else str(Path(model.name).resolve())
        return {**self.key_base, "model": model, "revision": revision}

    def _resolve(self, model: _Model) -> tuple[str | None, int | None]:
        """(commit sha, parameter count) of a Hub candidate; local folders have no commit."""
        if model.local:
            return None, model.num_parameters
        if model.name.startswith((".", "/", "~")) or model.name.count("/") > 1:
            raise FileNotFoundError(f"{model.name!r} is not a model folder (and not a Hub id).")
        if model.name not in self._revisions:
            if model.sha is not None:
                self._revisions[model.name] = (model.sha, model.num_parameters)
            else:
                from .hub import resolve_candidate

                candidate = resolve_candidate(model.name, token=self.token)
                self._revisions[model.name] = (candidate.sha, candidate.num_parameters)
        return self._revisions[model.name]

    def _prefetch(self, model: _Model) -> None:
        """Start downloading the next Hub candidate unless it is cached (errors surface later)."""
        if model.local or model.name in self._downloads:
            return
        try:
            revision, _ = self._resolve(model)
        except Exception:  # reported when its turn comes
            return
        if self.store.get(self._key(model, revision)) is None:
            self._downloads[model.name] = self._pool.submit(self._download, model.name, revision)

    def _source(self, model: _Model, revision: str | None) -> tuple[str | Path, tuple[Path, bool] | None]:
        """The folder to load: a local one, or the downloaded snapshot (process 0 downloads first)."""
        if model.obj is not None:
            options = self.extract_options
            return model.obj.load(device=options["device"], dtype=options["dtype"]), None
        if model.local:
            return model.name, None

        def fetch() -> tuple[Path, bool]:
            future = self._downloads.pop(model.name, None)
            if future is None:
                future = self._pool.submit(self._download, model.name, revision)
            return future.result()

        downloaded = distributed.on_main_first(fetch) if self.collective else fetch()
        return downloaded[0], downloaded

    def _download(self, model_id: str, revision: str | None) -> tuple[Path, bool]:
        from .hub import download_candidate, snapshot_is_cached

        was_cached = snapshot_is_cached(model_id, revision=revision)
        path = download_candidate(
            model_id,
            revision=revision,
            token=self.token,
            use_safetensors=self.extract_options["use_safetensors"],
        )
        return path, not was_cached

    def _extract(self, source: str | Path, name: str, revision: str | None) -> dict[str, Any]:
        """Stream features into per-layer statistics; returns the cache entry."""
        from .features import extract_features
        from .hub import safetensors_parameter_count

        accumulators: dict[int | str, LogME] = {}
        regression = self.extract_options["task"] not in _CLASS_TASKS

        def on_batch(features: torch.Tensor | dict[int, torch.Tensor], labels: Any) -> None:
            if self.layers == "mean":
                features = {"mean": torch.stack(list(features.values())).float().mean(0)}
            elif not isinstance(features, dict):
                features = {"last": features}
            for layer, batch in features.items():
                if layer not in accumulators:
                    accumulators[layer] = LogME(regression=regression)
                accumulators[layer].update(batch, labels)

        start = time.perf_counter()
        result = extract_features(
            source,
            self.dataset,
            **self.extract_options,
            token=self.token,
            on_batch=on_batch,
            return_features=False,
            progress=self.progress,
        )
        return {
            "statistics": {layer: acc.statistics.state_dict() for layer, acc in accumulators.items()},
            "meta": {
                "num_samples": result.num_samples,
                "extract_s": time.perf_counter() - start,
                "pooling": result.pooling,
                "revision": result.revision or revision,
                "num_parameters": safetensors_parameter_count(source)
                if isinstance(source, (str, Path)) and Path(source).is_dir()
                else None,
                "model": name,
            },
        }

    def _row(
        self, model: _Model, entry: dict[str, Any], revision: str | None, num_parameters: int | None, cached: bool
    ) -> RankingRow:
        statistics = {
            layer: GramStatistics.from_state_dict(state) for layer, state in entry["statistics"].items()
        }
        meta = entry["meta"]
        start = time.perf_counter()
        scores, best_layer, layer_scores = self._score(statistics)
        layer = best_layer if best_layer is not None else next(iter(statistics))
        return RankingRow(
            model=model.name,
            status="ok",
            score=scores[next(iter(self.methods))],
            scores=scores,
            revision=revision or meta.get("revision"),
            best_layer=best_layer,
            layer_scores=layer_scores,
            dim=statistics[layer].dim,
            num_samples=meta["num_samples"],
            extract_s=meta["extract_s"],
            score_s=time.perf_counter() - start,
            num_parameters=num_parameters or meta.get("num_parameters"),
            cached=cached,
        )

    def _score(
        self, statistics: dict[int | str, GramStatistics]
    ) -> tuple[dict[str, float], int | None, dict[int, float] | None]:
        """Each method's score (its best layer's with layers='best') and the primary's layers."""
        scores: dict[str, float] = {}
        primary_layers: dict[Any, float] = {}
        for index, (name, options) in enumerate(self.methods.items()):
            per_layer = {}
            for layer, stats in statistics.items():
                estimator = get_estimator(name)(regression=stats.regression, **options)
                estimator.statistics = stats
                per_layer[layer] = estimator.compute()
            if index == 0:
                primary_layers = per_layer
            scores[name] = max(per_layer.values())
        if self.layers != "best":
            return scores, None, None
        best_layer = max(primary_layers, key=primary_layers.get)
        return scores, int(best_layer), {int(k): v for k, v in primary_layers.items()}


def _summed(entry: dict[str, Any], regression: bool) -> dict[str, Any]:
    """This process's cache entry with every layer's statistics summed over all processes
    (a process whose shard was empty contributes nothing)."""
    layers = sorted({layer for keys in distributed.gather(list(entry["statistics"])) for layer in keys}, key=str)
    statistics = {}
    for layer in layers:
        state = entry["statistics"].get(layer)
        local = GramStatistics.from_state_dict(state) if state else GramStatistics(regression=regression)
        statistics[layer] = distributed.all_reduce_statistics(local).state_dict()
    meta = dict(entry["meta"])
    meta["num_samples"] = statistics[layers[0]]["n"]
    meta["extract_s"] = max(distributed.gather(meta["extract_s"]))
    return {"statistics": statistics, "meta": meta}


def _store(store: StatisticsCache, key: dict[str, Any], entry: dict[str, Any]) -> None:
    """Cache an entry; a cache that cannot be written costs a rerun, never this run."""
    try:
        store.put(key, entry)
    except OSError as err:
        logger.warning("Could not write the statistics cache (%s); continuing without it.", err)


def _node_main() -> bool:
    """The first process on this machine (it owns the shared download cache)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
