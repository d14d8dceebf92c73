"""Rank candidate checkpoints for a dataset: extract, score, cache; one failure never stops the run.

For each candidate, in order: resolve its commit, look up the cache, otherwise download only what
``from_pretrained`` needs (the next candidate downloads in the background meanwhile), stream its
features batch by batch into float64 statistics (``N x D`` is never held), store the statistics,
and score them with every requested method. A candidate that cannot be scored becomes a
``skipped`` row with the reason; the model is freed before the next one loads.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from . import distributed
from .cache import StatisticsCache, model_key, normalize_model_name
from .confidence import (
    GROUP_MEMORY_BYTES,
    MIN_GROUPS,
    Estimate,
    calibrated,
    group_of_rows,
    num_groups,
)
from .errors import describe as describe_error
from .estimators import (
    STATISTICS,
    Estimator,
    GramStatistics,
    MetadataStatistics,
    get_estimator,
    load_statistics,
)
from .estimators._rows import DEFAULT_MAX_ROWS
from .estimators.logme import DEFAULT_OPTIONS
from .racing import FIRST_BLOCK, RaceResult, race_order, run_race, total_schedule
from .results import Ranking, RankingRow
from .scoring import score_candidate, with_confidence
from .verbosity import quiet_libraries

if TYPE_CHECKING:
    from .features.options import ExtractionOptions

logger = logging.getLogger(__name__)

LayerMode = Literal["last", "best", "mean"]
LAYER_MODES = ("last", "best", "mean")

# Options a ranking uses unless told otherwise. LogME with an intercept: mean-pooled transformer
# features share large common offsets, and without the intercept the pretrained all-MiniLM-L6-v2
# ranked below its own randomly initialised copy on 10 of 10 food-review subsets (with it: on
# none); see the README. And the small-sample LogME (``prior=RANKING_PRIOR``): finite for any
# number of rows and any duplicates, and within O(1/n^2) of the exact value once n >> D. The same
# LogME as every other entry point (``estimators.logme.DEFAULT_OPTIONS``).
RANKING_DEFAULTS: dict[str, dict[str, Any]] = {"logme": dict(DEFAULT_OPTIONS)}
# Tasks whose labels are classes (token classification: one class per word).
_CLASS_TASKS = ("classification", "token-classification")

#: Statistics kinds gathered per layer; source predictions are per candidate, metadata is read
#: from the checkpoint.
LAYER_KINDS = ("gram", "class_statistics", "rows")
#: Layout of cache entries: {"layout", "groups", "statistics": {layer: {group: state}},
#: "shared": {group: state}, "unavailable": {group: reason}, "meta",
#: "row_groups": {group: {layer: [state of each row group]}}} (layout 3 added "row_groups": the
#: jackknife's G row groups of the primary method's statistics; older entries load without them).
ENTRY_LAYOUT = 3
#: Statistics kinds whose row groups are kept for error bars (G x D^2 memory, see
#: ``confidence.num_groups``); rows and class statistics are not grouped.
GROUPED_KINDS = ("gram",)
#: Names the row order of a race in its cache keys (``racing.race_order``); a change of that
#: order must change this, so that no entry of other rows is read as these.
RACE_ORDER = "stratified-1"


@dataclass(frozen=True)
class _Model:
    """One candidate as given: a Hub id (with what search already knows) or a local folder."""

    name: str
    local: bool
    sha: str | None = None
    num_parameters: int | None = None
    obj: Any = None  # a features.candidates.ModelCandidate: a model object
    revision: str | None = None  # the branch, tag or commit asked for (Hub ids only)


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
    revision: Mapping[str, str] | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    delete_after: bool = False,
    distribute: Literal["auto", "samples", "candidates"] = "auto",
    max_rows: int = DEFAULT_MAX_ROWS,
    keep_duplicates: bool = False,
    race: bool = False,
    race_first_block: int = FIRST_BLOCK,
    progress: bool = True,
) -> Ranking:
    """Score every candidate checkpoint on ``dataset`` and rank them, best first.

    Args:
        models: Hub ids (``"org/name"``), local model folders, ``Candidate`` objects from
            :func:`hf_logme.search_candidates`, or model objects (a ``SentenceTransformer``, a
            ``PreTrainedModel``, a ``torch.nn.Module`` with ``preprocess``, a ``LoadedModel``),
            named by their ``name_or_path`` or by
            :func:`hf_logme.features.candidates.as_model_candidate` (``name=``, ``processor=``)
            and cached by a fingerprint of their weights and preprocessing. A Hub id may name
            its revision, ``"org/name@v1.0"`` (a branch, tag or commit sha).
        dataset: a ``datasets.Dataset``, or a ``DatasetDict`` with ``split``.
        methods: estimator names (``("logme",)``), or a mapping from name to its options, e.g.
            ``{"logme": {"intercept": False}}``. The first orders the ranking. Options default to
            ``RANKING_DEFAULTS`` (LogME: ``intercept=True, prior=RANKING_PRIOR``, the finite
            small-sample score; ``prior=None`` asks for the exact maximum evidence), then to the
            estimator's own.
            Each candidate runs ONE forward pass that gathers what all methods consume (see
            :mod:`hf_logme.estimators.base`): Gram statistics, per-class statistics, a capped
            row sample (per layer with ``layers="best"``), the checkpoint's own classifier
            predictions (LEEP, NCE; a candidate without a classification head gets that method
            in ``RankingRow.method_errors``, the others still score it) and its parameter
            count. Memory stays O(D^2) per layer unless a method that reads rows is asked for.
        layers: ``"last"`` scores the last hidden layer; ``"best"`` scores every hidden layer from
            one forward pass and keeps each model's best; ``"mean"`` scores the average of all
            hidden layers.
        split, text_column, text_pair_column, image_column, audio_column, label_column, task,
            pooling, batch_size, device, dtype, max_length, max_samples, seed: as in
            :func:`hf_logme.extract_features`; columns are detected when unambiguous.
        revision: the branch, tag or commit sha of some Hub candidates, by id, e.g.
            ``{"org/name": "v1.0"}`` (the same as ``"org/name@v1.0"`` in ``models``); the others
            use their default branch. Each row's ``revision`` is the commit it resolved to.
            With ``HF_HUB_OFFLINE=1`` revisions resolve from the local Hugging Face cache (a
            branch or tag through its ``refs/``), as ``from_pretrained`` does, and a candidate
            not in the cache is a skipped row saying so.
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
        max_rows: the row cap of methods that read feature rows or source predictions (kNN,
            NLEEP, PARC, TransRate, SFDA, linear probe, LEEP's sample): at most this many rows
            per layer, a seeded content-hash sample, so memory is O(max_rows * D). Default
            10000. A method's own ``max_rows`` option wins.
        keep_duplicates: False (default) scores each distinct input once: rows whose input
            columns repeat an earlier row's are dropped before ``max_samples`` draws its rows (a
            repeat weighs twice in every estimator). Needs input columns the data alone decides
            (named, or one text / image / audio column); otherwise nothing is dropped and
            ``num_duplicates`` is None. True keeps them (still counted).
        race: successive halving (see :mod:`hf_logme.racing`): score every candidate on the
            first ``race_first_block`` rows of a seeded, class-stratified order of the rows,
            drop those whose paired difference to the leader has a 90% interval above zero, and
            go on with the others on twice the rows, and so on up to ``max_samples`` rows (all
            rows without it); the race ends early when one candidate is left. Each round
            extracts only the rows a candidate has not seen (its statistics are extended). A
            dropped candidate stays in the ranking, below those that raced on, with its score
            at the rows it saw, ``dropped_after`` and the note "dropped after N rows"; after the
            last round nobody is dropped. The rows come from the race
            order, not from ``max_samples``'s subsample: with ``max_samples`` below the number
            of rows, a race scores other rows than a full run (the same rows without it). With
            the cache, each round's statistics are stored under their row count, so a later race
            (same data, options and seed; any ``max_samples``) reuses every round already run
            and extends from the last one. Needs error bars (LogME or H-score first).
        race_first_block: rows of the race's first round (default 128).
        progress: show progress bars.

    The primary score of every scored row carries a delete-a-group jackknife error when its
    statistics are Gram statistics (LogME, H-score): ``score_se``, a 90% ``interval``, and
    across rows ``p_best`` and ``tied`` (``Ranking.confident``); see :mod:`hf_logme.confidence`.
    The interval is for the score on all rows available (``dataset["rows_available"]``: the
    labelled, distinct rows), not only the ``max_samples`` scored
    (:func:`~hf_logme.confidence.calibrated`); ``tied`` and ``p_best`` use it too.
    A LogME at its no-signal floor gets the note "no signal at N rows".

    Returns:
        A :class:`Ranking`. Candidates that could not be scored are rows with status
        ``"skipped"`` and the reason; the run only raises for problems that would affect every
        candidate (bad options, unknown columns).

    Example:
        >>> ranking = rank_models(["sentence-transformers/all-MiniLM-L6-v2",
        ...                        "BAAI/bge-small-en-v1.5"], dataset)  # doctest: +SKIP
        >>> print(ranking)  # doctest: +SKIP
    """
    from .features.extract import prepare_dataset
    from .features.options import ExtractionOptions, check_bool, check_choice, check_positive_int

    check_positive_int("max_rows", max_rows)
    method_specs = _resolve_methods(methods, max_rows)
    check_choice("layers", layers, LAYER_MODES)
    check_choice("distribute", distribute, ("auto", "samples", "candidates"))
    for name, flag in (
        ("cache", cache),
        ("delete_after", delete_after),
        ("keep_duplicates", keep_duplicates),
        ("race", race),
        ("progress", progress),
    ):
        check_bool(name, flag)
    check_positive_int("race_first_block", race_first_block)
    if race and next(iter(method_specs.values())).kind not in GROUPED_KINDS:
        raise ValueError(
            f"race=True needs error bars on the first method, which {next(iter(method_specs))!r} "
            f"has none of; put 'logme' (or 'hscore') first, or race=False."
        )
    options = ExtractionOptions(
        split=split,
        text_column=text_column,
        text_pair_column=text_pair_column,
        image_column=image_column,
        audio_column=audio_column,
        label_column=label_column,
        task=task,
        pooling=pooling,
        layers="last" if layers == "last" else "all",
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        max_length=max_length,
        max_samples=None if race else max_samples,  # a race draws its rows from race_order
        seed=seed,
        token=token,
        trust_remote_code=trust_remote_code,
        use_safetensors=use_safetensors,
    )
    candidates = _as_models(models, revision)
    # Prepared once for every candidate; problems every candidate would hit are raised now,
    # before any model loads.
    distinct, kept, num_duplicates = _distinct_inputs(dataset, options, keep_duplicates)
    prepared = prepare_dataset(distinct, options)
    options, task, data = prepared.options, prepared.task, prepared.data
    schedule: list[int] | None = None
    if race and task == "token-classification":
        raise ValueError(
            "race=True does not support task='token-classification' yet (its rows are words, "
            "grouped in sentences that a race would have to split between rounds); rank without "
            "race=True, with max_samples to cap the sentences scored."
        )
    if race:  # every labelled row, in the race's order; round k scores the first schedule[k]
        targets = prepared.targets
        classes = targets.values[prepared.rows] if task in _CLASS_TASKS else None
        if classes is not None and classes.ndim != 1:
            classes = None
        order = race_order(len(prepared.rows), seed=seed, classes=classes)
        schedule = total_schedule(len(prepared.rows), max_samples, race_first_block)
        prepared = replace(prepared, rows=prepared.rows[order])
    scored_rows = prepared.rows if schedule is None else prepared.rows[: schedule[-1]]
    # Duplicate inputs among the rows each candidate scores (0 once they are dropped).
    scored_duplicates = (
        None if kept is None else len(scored_rows) - int(np.isin(scored_rows, kept).sum())
    )
    _check_methods_support(method_specs, task)
    distributed.init_from_env()
    rank, world = distributed.rank_and_world()
    if world > 1 and device == "auto":
        options = options.replace(device=distributed.local_device())
    dataset_info = {
        "name": _dataset_name(data),
        "fingerprint": getattr(data, "_fingerprint", None),
        "split": split,
        "num_rows": len(data),
        "label_column": prepared.label_column,
        "task": task,
        "num_duplicates": num_duplicates,
        "duplicates_kept": keep_duplicates,
    }
    # Everything that changes the statistics, and nothing that does not (device index, batch size).
    key_base = {**options.cache_key(), "fingerprint": dataset_info["fingerprint"], "layers": layers}
    store = StatisticsCache(cache_dir, enabled=cache)
    mode = "single" if world == 1 else distribute
    if mode == "auto":
        mode = "candidates" if len(candidates) >= world else "samples"
    if schedule is not None:
        return _race(
            candidates,
            prepared,
            options,
            key_base,
            store,
            method_specs,
            layers,
            delete_after,
            progress,
            schedule,
            mode,
            dataset_info,
            scored_duplicates,
            max_samples,
        )
    if mode == "samples":
        # Each process runs every world-th batch of the batches one process would run.
        runner = _Runner(
            prepared,
            options.replace(shard=(rank, world)),
            key_base,
            store,
            method_specs,
            layers,
            delete_after,
            progress,
            collective=True,
        )
        with quiet_libraries():  # transformers' and the Hub's own bars and reports, unless -v
            outcomes = runner.run(candidates)
    else:
        mine = candidates[rank::world]
        runner = _Runner(
            prepared,
            options,
            key_base,
            store,
            method_specs,
            layers,
            delete_after,
            progress and rank == 0,
        )
        with quiet_libraries():
            done_here = runner.run(mine)
        outcomes = [done for of_rank in distributed.gather(done_here) for done in of_rank]
    # Intervals for the score on every row available, not only the max_samples scored.
    available = len(prepared.rows)
    if prepared.targets is not None:
        available = int((~np.asarray(prepared.targets.missing)).sum())
    dataset_info["rows_available"] = available
    estimates = {
        done.row.model: calibrated(
            done.estimate, done.row.num_samples, max(available, done.row.num_samples)
        )
        for done in outcomes
        if done.estimate is not None
    }
    ranked = with_confidence(
        [
            replace(
                done.row,
                num_duplicates=scored_duplicates,
                interval=(estimates[done.row.model].low, estimates[done.row.model].high)
                if done.row.model in estimates
                else done.row.interval,
            )
            for done in outcomes
        ],
        estimates,
        no_signal={done.row.model for done in outcomes if done.no_signal},
    )
    reported = {**options.reported(), "layers": layers}
    if world > 1:
        reported["distribute"] = mode
    return Ranking(
        ranked, {n: m.reported() for n, m in method_specs.items()}, dataset_info, reported
    )


def _race(
    candidates: list[_Model],
    prepared: Any,
    options: ExtractionOptions,
    key_base: dict[str, Any],
    store: StatisticsCache,
    method_specs: dict[str, _Method],
    layers: LayerMode,
    delete_after: bool,
    progress: bool,
    schedule: list[int],
    mode: str,
    dataset_info: dict[str, Any],
    scored_duplicates: int | None,
    max_samples: int | None,
) -> Ranking:
    """``rank_models(race=True)`` from the prepared rows in race order (see ``rank_models``).

    Processes: with "samples" every process extracts a shard of every round's new rows and the
    statistics are summed; with "candidates" candidate i stays on process i % world for the whole
    race (its statistics stay where they were gathered) and the estimates are gathered after each
    round. Either way every process sees the same estimates and makes the same decisions."""
    rank, world = distributed.rank_and_world()
    collective = mode == "samples"
    runner = _Runner(
        prepared,
        options.replace(shard=(rank, world)) if collective else options,
        {**key_base, "race_order": RACE_ORDER},
        store,
        method_specs,
        layers,
        delete_after,
        progress and (collective or rank == 0),
        collective=collective,
    )
    runner.group_rows = schedule[0]
    with quiet_libraries():
        result, outcomes = runner.race(
            candidates,
            schedule,
            mine=(lambda i: i % world == rank) if mode == "candidates" else (lambda i: True),
            gather=mode == "candidates",
        )
    racing = [i for i in range(len(candidates)) if i not in result.dropped]
    rows = []
    for index, done in enumerate(outcomes):
        row = replace(done.row, num_duplicates=scored_duplicates)
        if index in result.dropped:
            rows_seen, reason = result.dropped[index]
            note = reason if row.note is None else f"{row.note}; {reason}"
            row = replace(row, note=note, dropped_after=rows_seen)
        rows.append(row)
    # Ties and P(best) among the candidates that raced on (the dropped ones lost already, on
    # other rows: their scores are not comparable with the finalists').
    finalists = with_confidence(
        [rows[i] for i in racing],
        {outcomes[i].row.model: outcomes[i].estimate for i in racing if outcomes[i].estimate},
        no_signal={outcomes[i].row.model for i in racing if outcomes[i].no_signal},
    )
    for index, row in zip(racing, finalists):
        rows[index] = row
    reported = {**options.reported(), "layers": layers, "max_samples": max_samples}
    reported.update(race=True, race_rounds=result.rounds)
    if world > 1:
        reported["distribute"] = mode
    return Ranking(rows, {n: m.reported() for n, m in method_specs.items()}, dataset_info, reported)


# --- option checks (before any model loads) ------------------------------------------------------


@dataclass(frozen=True)
class _Method:
    """A requested method: its estimator, its own options, and the statistics it reads."""

    name: str
    cls: type[Estimator]
    options: dict[str, Any]  # for Estimator.from_statistics
    gather: dict[str, Any]  # the options its statistics are gathered with (e.g. a row cap)

    @property
    def kind(self) -> str:
        return self.cls.consumes

    @property
    def group(self) -> str:
        """The key of its statistics in a cache entry: the kind, plus gather options if any.
        (Metadata is filled in per candidate, so its gather options are not part of it.)"""
        if not self.gather or self.kind == "metadata":
            return self.kind
        return f"{self.kind}{json.dumps(self.gather, sort_keys=True, default=str)}"

    def reported(self) -> dict[str, Any]:
        """The options a Ranking records (the per-candidate parameter count left out)."""
        gather = {k: v for k, v in self.gather.items() if k != "num_parameters"}
        return {**self.options, **gather}


def _resolve_methods(
    methods: Sequence[str] | Mapping[str, Mapping[str, Any]], max_rows: int
) -> dict[str, _Method]:
    if isinstance(methods, str):
        methods = (methods,)
    specs = dict(methods) if isinstance(methods, Mapping) else {name: {} for name in methods}
    if not specs:
        raise ValueError("methods is empty; pass at least one estimator name, e.g. ('logme',).")
    resolved = {}
    for name, options in specs.items():
        cls = get_estimator(name)
        options = {**RANKING_DEFAULTS.get(name, {}), **dict(options or {})}
        estimator = cls(**options)  # bad options fail here, before any model loads
        if "max_rows" in estimator.gather_options() and "max_rows" not in options:
            estimator = cls(**options, max_rows=max_rows)
        gather = estimator.gather_options()
        cls.new_statistics(**gather)  # and bad gather options (a row cap of 1) too
        # Record what is used, defaults included; the task decides ``regression`` per run.
        params = {k: v for k, v in estimator.get_params().items() if k != "regression"}
        own = {k: v for k, v in {**params, **options}.items() if k not in gather}
        resolved[name] = _Method(name, cls, own, gather)
    return resolved


def _check_methods_support(specs: Mapping[str, Mapping[str, Any]], task: str) -> None:
    if task in _CLASS_TASKS:
        return
    for name in specs:
        if not get_estimator(name).supports_regression:
            raise ValueError(f"method {name!r} cannot score a {task} task; drop it or change task.")


def _as_models(models: Iterable[Any], revisions: Mapping[str, str] | None = None) -> list[_Model]:
    from .features.candidates import as_model_candidate, is_model_object

    if isinstance(models, (str, os.PathLike)) or is_model_object(models):
        models = [models]
    revisions = _check_revisions(revisions)
    candidates, seen = [], {}
    for given in models:
        if isinstance(given, (str, os.PathLike)):
            name = normalize_model_name(given)
            local = Path(name).expanduser().is_dir()
            asked = None
            if not local and "@" in name:  # org/name@rev
                name, _, asked = name.rpartition("@")
                if not name or not asked:
                    raise ValueError(
                        f"models: {given!r} is neither a model folder nor 'org/name@revision'."
                    )
            model = _Model(name, local=local, revision=asked)
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
        if model.name in revisions:
            model = _with_revision(model, revisions[model.name], given)
        identity = (
            os.path.realpath(model.name) if model.local else model.name
        )  # one folder, one row
        if identity in seen:
            twice = f" (as {seen[identity]!r} and {given!r})" if seen[identity] != given else ""
            raise ValueError(f"models lists {model.name!r} twice{twice}; drop one.")
        seen[identity] = given
        candidates.append(model)
    if not candidates:
        raise ValueError("models is empty; pass Hub ids, local paths, or search_candidates(...).")
    unknown = sorted(set(revisions) - {m.name for m in candidates})
    if unknown:
        raise ValueError(
            f"revision names {unknown}, which are not among models; its keys are Hub ids of "
            f"candidates, e.g. revision={{{candidates[0].name!r}: 'v1.0'}}."
        )
    return candidates


def _check_revisions(revisions: Any) -> dict[str, str]:
    if revisions is None:
        return {}
    if not isinstance(revisions, Mapping):
        raise TypeError(
            f"revision must map Hub ids to a branch, tag or commit, e.g. "
            f"{{'org/name': 'v1.0'}} (or write 'org/name@v1.0' in models); got {revisions!r}."
        )
    for name, value in revisions.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(
                f"revision[{name!r}] must be a branch, tag or commit sha; got {value!r}."
            )
    return dict(revisions)


def _with_revision(model: _Model, revision: str, given: Any) -> _Model:
    """``model`` pinned to ``revision`` (from the ``revision`` mapping)."""
    if model.local:
        raise ValueError(
            f"revision[{model.name!r}]: {model.name!r} is a local model, which has no revision; "
            f"drop it from revision."
        )
    if model.revision is not None and model.revision != revision:
        raise ValueError(
            f"models gives {given!r} but revision[{model.name!r}] is {revision!r}; keep one."
        )
    # A revision asked for replaces the commit a search resolved.
    return replace(model, revision=revision, sha=None, num_parameters=None)


def _distinct_inputs(
    dataset: Any, options: ExtractionOptions, keep_duplicates: bool
) -> tuple[Any, np.ndarray | None, int | None]:
    """(the split, without repeated inputs unless ``keep_duplicates``; the first row of each
    distinct input, in that split's positions; how many rows repeat one).

    The input columns must follow from the data and the column options alone (so the dataset is
    still prepared once, before any model); when a model must decide them, nothing is dropped and
    the last two are None. Problems with the dataset are left to ``prepare_dataset`` to report.
    """
    from .features.columns import find_inputs, resolve_split
    from .features.duplicates import find_duplicate_inputs
    from .features.targets import find_label_column

    data = resolve_split(dataset, options.split)
    try:
        label_column = find_label_column(data, options.label_column)
        inputs = find_inputs(data, None, **options.columns, exclude=(label_column,))
    except (ValueError, LookupError):
        return data, None, None
    first, repeats = find_duplicate_inputs(data, inputs.columns)
    if keep_duplicates or not repeats:
        return data, first, repeats
    return data.select(first), np.arange(len(first)), repeats


def _dataset_name(dataset: Any) -> str:
    info = getattr(dataset, "info", None)
    return getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "dataset"


# --- the per-candidate loop ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Ranked:
    """A candidate's row, the jackknife estimate of its primary score (None: no error bars),
    and whether that score is LogME's no-signal floor."""

    row: RankingRow
    estimate: Estimate | None = None
    no_signal: bool = False


@dataclass
class _RaceState:
    """One candidate in a race: its commit, the statistics of the rows it has seen (process 0's,
    summed over processes), how many, and whether this run downloaded its snapshot."""

    resolved: bool = False
    revision: str | None = None
    num_parameters: int | None = None
    entry: dict[str, Any] | None = None
    rows: int = 0
    downloaded: tuple[Path, bool] | None = None


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
        options: ExtractionOptions,
        key_base: dict[str, Any],
        store: StatisticsCache,
        methods: dict[str, _Method],
        layers: LayerMode,
        delete_after: bool,
        progress: bool,
        collective: bool = False,
    ) -> None:
        self.dataset = dataset
        self.options = options
        self.key_base = key_base
        self.store = store
        self.methods = methods
        # What one pass gathers: one statistics object per (kind, gather options), per layer.
        self.groups = {
            m.group: (m.kind, m.gather) for m in methods.values() if m.kind != "metadata"
        }
        primary = next(iter(methods.values()))
        # The primary's statistics are also kept in row groups, for its error bars.
        self.grouped = primary.group if primary.kind in GROUPED_KINDS else None
        self.layers = layers
        self.token = options.token
        self.delete_after = delete_after
        self.collective = collective
        self.rank = distributed.rank_and_world()[0] if collective else 0
        self.progress = progress and self.rank == 0
        self._downloads: dict[str, Future] = {}
        self._revisions: dict[str, tuple[str | None, int | None]] = {}
        # Rows that bound the number of row groups (at most half of them); a race sets its
        # first round's, so that a candidate keeps the same groups in every round.
        self.group_rows: int | None = None

    def run(self, candidates: list[_Model]) -> list[_Ranked]:
        """Each candidate's row, with its primary score's jackknife estimate when there is one."""
        from huggingface_hub.utils import tqdm

        rows = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-logme-download") as pool:
            self._pool = pool
            bar = tqdm(
                candidates,
                desc="candidates",
                unit="model",
                disable=not self.progress or len(candidates) < 2,
            )
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
            except Exception as err:  # noqa: BLE001 (every process must reach the broadcast)
                error = describe_error(err)
                logger.debug("Traceback", exc_info=True)
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

    def _rank_one(self, model: _Model) -> _Ranked:
        downloaded: tuple[Path, bool] | None = None
        revision = None
        try:
            revision, num_parameters = self._decided_by_first(lambda: self._resolve(model))
            key = self._key(model, revision)
            # Process 0 reads the cache; all learn which statistics it lacks (None: no entry).
            held: dict[str, Any] = {}
            missing = self._decided_by_first(lambda: self._missing(key, held))
            entry = held.get("entry")
            cached = missing == []
            if not cached:
                wanted = {g: self.groups[g] for g in (self.groups if missing is None else missing)}
                fresh = error = None
                try:
                    source, downloaded = self._source(model, revision)
                    fresh = self._extract(source, model.name, revision, wanted)
                except Exception as err:
                    error = describe_error(err)
                    logger.debug("Traceback for %s", model.name, exc_info=True)
                self._agree_all_succeeded(error)
                if self.collective:
                    fresh = self._summed(fresh, wanted)
                if self.rank == 0:
                    entry = fresh if entry is None else _extended(entry, fresh)
                    _store(self.store, key, entry)
            row = self._decided_by_first(
                lambda: self._row(model, entry, revision, num_parameters, cached)
            )
        except _Skip as skip:
            logger.warning("Skipping %s: %s", model.name, skip)
            row = _Ranked(
                RankingRow(model=model.name, status="skipped", revision=revision, reason=str(skip))
            )
        finally:
            if self.delete_after and downloaded is not None and downloaded[1] and _node_main():
                from .hub import delete_snapshot

                delete_snapshot(model.name, revision=revision)
        return row

    # --- racing -------------------------------------------------------------------------------

    def race(
        self,
        candidates: list[_Model],
        schedule: list[int],
        *,
        mine: Any,
        gather: bool,
    ) -> tuple[RaceResult, list[_Ranked]]:
        """Race the candidates over the runner's rows (in race order) through ``schedule``.

        ``mine(i)``: whether this process advances candidate i; ``gather``: collect the other
        processes' rows after each round. Returns the race and each candidate's last row."""
        from huggingface_hub.utils import tqdm

        states = [_RaceState() for _ in candidates]
        last: dict[int, _Ranked] = {}

        def advance(indices: list[int], rows: int) -> dict[int, Estimate | None]:
            here = {}
            bar = tqdm(
                [i for i in indices if mine(i)],
                desc=f"race: {rows} rows",
                unit="model",
                disable=not self.progress,
            )
            for index in bar:
                bar.set_postfix_str(candidates[index].name, refresh=False)
                here[index] = self._advance(candidates[index], states[index], rows)
                if candidates[index].obj is None:  # a model loaded here (objects stay alive)
                    _free_memory()
            if gather:  # each process raced its own candidates: every process learns all
                here = {k: v for part in distributed.gather(here) for k, v in part.items()}
            last.update(here)
            return {
                i: last[i].estimate for i in indices if i in last and last[i].row.status == "ok"
            }

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-logme-download") as pool:
            self._pool = pool
            try:
                result = run_race(advance, len(candidates), schedule)
            finally:
                for model, state in zip(candidates, states):
                    self._delete_if_downloaded(model, state.revision, state.downloaded)
        return result, [last[i] for i in range(len(candidates))]

    def _advance(self, model: _Model, state: _RaceState, rows: int) -> _Ranked:
        """Bring one candidate to the first ``rows`` rows of the race order: from the cache
        entry of that round when there is one, else by extracting the rows it has not seen and
        adding their statistics to those it has. Its row (skipped with the reason on failure)."""
        revision = state.revision
        try:
            if not state.resolved:
                revision, state.num_parameters = self._decided_by_first(
                    lambda: self._resolve(model)
                )
                state.revision, state.resolved = revision, True
            key = {**self._key(model, revision), "race_rows": rows}
            held: dict[str, Any] = {}
            missing = self._decided_by_first(lambda: self._missing(key, held))
            cached = missing == []  # an entry lacking some statistics is extracted again
            entry = held.get("entry") if cached else None
            if not cached:
                error = fresh = None
                start = state.rows if state.entry is not None or self.rank != 0 else 0
                block = replace(self.dataset, rows=self.dataset.rows[start:rows])
                try:
                    source, downloaded = self._source(model, revision)
                    if downloaded is not None and downloaded[1]:
                        state.downloaded = downloaded
                    fresh = self._extract(
                        source, model.name, revision, self.groups, dataset=block, start=start
                    )
                except Exception as err:
                    error = describe_error(err)
                    logger.debug("Traceback for %s", model.name, exc_info=True)
                self._agree_all_succeeded(error)
                if self.collective:
                    fresh = self._summed(fresh, self.groups)
                if self.rank == 0:
                    entry = fresh if state.entry is None else _appended(state.entry, fresh)
                    _store(self.store, key, entry)
            state.entry, state.rows = entry, rows
            return self._decided_by_first(
                lambda: self._row(model, entry, revision, state.num_parameters, cached)
            )
        except _Skip as skip:
            logger.warning("Skipping %s: %s", model.name, skip)
            state.entry = None
            return _Ranked(
                RankingRow(model=model.name, status="skipped", revision=revision, reason=str(skip))
            )

    def _delete_if_downloaded(
        self, model: _Model, revision: str | None, downloaded: tuple[Path, bool] | None
    ) -> None:
        if self.delete_after and downloaded is not None and downloaded[1] and _node_main():
            from .hub import delete_snapshot

            delete_snapshot(model.name, revision=revision)

    def _missing(self, key: dict[str, Any], held: dict[str, Any] | None = None) -> list[str] | None:
        """The statistics groups this run needs that the cache entry lacks (None: no entry).
        The entry itself is put in ``held``."""
        entry = _upgraded(self.store.get(key))
        if entry is None:
            return None
        if held is not None:
            held["entry"] = entry
        return [group for group in self.groups if group not in entry["groups"]]

    def _key(self, model: _Model, revision: str | None) -> dict[str, Any]:
        if model.obj is not None:  # a model object: keyed by its weights and preprocessing
            return {**self.key_base, "model": f"object:{model.obj.fingerprint}", "revision": None}
        name = model_key(model.name, local=model.local)
        return {**self.key_base, "model": name, "revision": revision}

    def _resolve(self, model: _Model) -> tuple[str | None, int | None]:
        """(commit sha, parameter count) of a Hub candidate; local folders have no commit."""
        if model.local:
            return None, model.num_parameters
        if model.name.startswith((".", "/", "~")) or model.name.count("/") > 1:
            raise FileNotFoundError(f"{model.name!r} is not a model folder (and not a Hub id).")
        if model.name not in self._revisions:
            from .hub import cached_snapshot, hub_offline

            if model.sha is not None:
                self._revisions[model.name] = (model.sha, model.num_parameters)
            elif hub_offline():  # as from_pretrained: the commit the cache has for it
                commit, _ = cached_snapshot(model.name, revision=model.revision)
                self._revisions[model.name] = (commit, None)  # counted from its weights
            else:  # recorded in the cache's refs/, so an offline run finds the same commit
                import huggingface_hub

                from .hub import _check_model_id

                _check_model_id(model.name, model.revision)
                resolved = huggingface_hub.resolve_revision(
                    model.name, revision=model.revision, token=self.token
                )
                self._revisions[model.name] = (resolved.resolved, None)  # counted from weights
        return self._revisions[model.name]

    def _prefetch(self, model: _Model) -> None:
        """Start downloading the next Hub candidate unless it is cached (errors surface later)."""
        if model.local or model.name in self._downloads:
            return
        try:
            revision, _ = self._resolve(model)
        except Exception:  # noqa: BLE001 (reported when its turn comes)
            return
        if self._missing(self._key(model, revision)) != []:
            self._downloads[model.name] = self._pool.submit(self._snapshot, model.name, revision)

    def _source(
        self, model: _Model, revision: str | None
    ) -> tuple[str | Path, tuple[Path, bool] | None]:
        """The folder to load: a local one, or the downloaded snapshot (process 0 first); a
        model object is loaded as it is."""
        if model.obj is not None:
            return model.obj.load(device=self.options.device, dtype=self.options.dtype), None
        if model.local:
            return model.name, None

        def fetch() -> tuple[Path, bool]:
            future = self._downloads.pop(model.name, None)
            if future is None:
                future = self._pool.submit(self._snapshot, model.name, revision)
            return future.result()

        downloaded = distributed.on_main_first(fetch) if self.collective else fetch()
        return downloaded[0], downloaded

    def _snapshot(self, model_id: str, revision: str | None) -> tuple[Path, bool]:
        """(the snapshot folder of ``model_id`` at commit ``revision``, whether this run
        downloaded it): downloaded, or with ``HF_HUB_OFFLINE=1`` taken from the cache."""
        from .hub import hub_offline

        if not hub_offline():
            return self._download(model_id, revision)
        from .features.loading import check_hub_config
        from .hub import _files_to_download, cached_snapshot

        _, folder = cached_snapshot(model_id, revision=revision)
        # The checks a download makes, on the cached files: remote code, pickle-only weights.
        check_hub_config(
            model_id,
            revision=revision,
            token=self.token,
            trust_remote_code=self.options.trust_remote_code,
        )
        _files_to_download(
            model_id,
            [p.name for p in folder.iterdir()],
            use_safetensors=self.options.use_safetensors,
        )
        return folder, False

    def _download(self, model_id: str, revision: str | None) -> tuple[Path, bool]:
        from .hub import download_candidate, snapshot_is_cached

        was_cached = snapshot_is_cached(model_id, revision=revision)
        # Refuses remote code (or an unknown architecture) from config.json, before the weights.
        path = download_candidate(
            model_id,
            revision=revision,
            token=self.token,
            use_safetensors=self.options.use_safetensors,
            trust_remote_code=self.options.trust_remote_code,
        )
        return path, not was_cached

    def _extract(
        self,
        source: str | Path,
        name: str,
        revision: str | None,
        groups: dict[str, tuple[str, dict]],
        dataset: Any = None,
        start: int = 0,
    ) -> dict[str, Any]:
        """One forward pass over the data (``dataset``, default the runner's), gathering every
        group of statistics in ``groups`` (per layer, or once for source predictions); returns
        the cache entry. ``start``: the stream position of the first row (row groups are dealt
        on from there, when a race extends statistics)."""
        from .features.extract import extract
        from .hub import safetensors_parameter_count

        regression = self.options.task not in _CLASS_TASKS
        per_layer = {g: spec for g, spec in groups.items() if spec[0] in LAYER_KINDS}
        shared = {
            g: STATISTICS[kind](regression=regression, **gather)
            for g, (kind, gather) in groups.items()
            if kind == "source_predictions"
        }
        layers: dict[Any, dict[str, Any]] = {}
        grouped = self.grouped if self.grouped in per_layer else None
        row_groups: dict[Any, list[Any]] = {}  # layer -> G statistics of the grouped kind
        seen = start  # rows of this process's stream so far

        def on_batch(features: torch.Tensor | dict[int, torch.Tensor], labels: Any) -> None:
            nonlocal seen
            if self.layers == "mean":
                widths = sorted({batch.shape[-1] for batch in features.values()})
                if len(widths) > 1:  # CNN stages: no average of vectors of different widths
                    raise ValueError(
                        f"layers='mean' averages the layers' features, but {name}'s layers "
                        f"differ in width ({widths}); use layers='best' or 'last'."
                    )
                features = {"mean": torch.stack(list(features.values())).float().mean(0)}
            elif not isinstance(features, dict):
                features = {"last": features}
            for layer, batch in features.items():
                if layer not in layers:
                    layers[layer] = {
                        g: STATISTICS[kind](regression=regression, **gather)
                        for g, (kind, gather) in per_layer.items()
                    }
                    if grouped is not None:
                        count = self._num_groups(batch.shape[-1], len(features))
                        kind, gather = per_layer[grouped]
                        row_groups[layer] = [
                            STATISTICS[kind](regression=regression, **gather) for _ in range(count)
                        ]
                for g, statistics in layers[layer].items():
                    if g != grouped or not row_groups[layer]:  # else merged from its groups
                        statistics.update(batch, labels)
                if row_groups.get(layer):
                    _update_groups(row_groups[layer], seen, batch, labels)
            seen += len(labels)

        def on_logits(logits: torch.Tensor, labels: Any) -> None:
            for statistics in shared.values():
                statistics.update(logits, labels)

        start = time.perf_counter()
        result = extract(
            source,
            self.dataset if dataset is None else dataset,
            self.options.replace(source_predictions=bool(shared)),
            on_batch=on_batch,
            on_logits=on_logits if shared else None,
            return_features=False,
            progress=self.progress,
        )
        unavailable = {}
        if result.logits_reason:
            unavailable = dict.fromkeys(shared, result.logits_reason)
            shared = {}
        for layer, held in row_groups.items():
            for statistics in held:  # the full statistics are the sum of the groups
                layers[layer][grouped].merge(statistics)
        return {
            "layout": ENTRY_LAYOUT,
            "groups": list(groups),
            "row_groups": {}
            if grouped is None
            else {
                grouped: {
                    layer: [stats.state_dict() for stats in held]
                    for layer, held in row_groups.items()
                }
            },
            "statistics": {
                layer: {g: stats.state_dict() for g, stats in held.items()}
                for layer, held in layers.items()
            },
            "shared": {g: stats.state_dict() for g, stats in shared.items()},
            "unavailable": unavailable,
            "meta": {
                "num_samples": result.num_samples,
                "extract_s": time.perf_counter() - start,
                "pooling": result.pooling,
                "revision": result.revision or revision,
                "num_parameters": safetensors_parameter_count(source)
                if isinstance(source, (str, Path)) and Path(source).is_dir()
                else None,
                "model": name,
                "dim": result.dim,
            },
        }

    def _num_groups(self, dim: int, num_layers: int) -> int:
        """Row groups per layer: ``num_groups`` under the byte budget shared by the layers, at
        most half the rows (so each group holds two), none below ``MIN_GROUPS``."""
        count = min(
            num_groups(dim, memory_bytes=GROUP_MEMORY_BYTES // num_layers),
            (self.group_rows or len(self.dataset.rows)) // 2,
        )
        return count if count >= MIN_GROUPS else 0

    def _summed(
        self, entry: dict[str, Any] | None, groups: dict[str, tuple[str, dict]]
    ) -> dict[str, Any]:
        """This process's entry with every statistics group summed over all processes (a process
        whose shard was empty contributes nothing). Every process calls this, in step."""
        regression = self.options.task not in _CLASS_TASKS

        def merged(
            state: dict[str, Any] | None, kind: str, gather: dict[str, Any]
        ) -> dict[str, Any]:
            if kind == "gram":
                local = load_statistics(state) if state else GramStatistics(regression=regression)
                return distributed.all_reduce_statistics(local).state_dict()
            total = STATISTICS[kind](regression=regression, **gather)
            for other in distributed.gather(state):
                if other:
                    total.merge(load_statistics(other))
            return total.state_dict()

        layer_names = {
            layer for keys in distributed.gather(list(entry["statistics"])) for layer in keys
        }
        statistics = {}
        for layer in sorted(layer_names, key=str):
            mine = entry["statistics"].get(layer, {})
            statistics[layer] = {
                g: merged(mine.get(g), kind, gather)
                for g, (kind, gather) in groups.items()
                if kind in LAYER_KINDS
            }
        # Group g of the sum is group g of every process: row groups are dealt by each process's
        # own row positions (the extraction callback does not see global ones), so a sharded
        # run's groups differ from a single process's, but they still partition the rows.
        row_groups: dict[str, dict[Any, list[dict[str, Any]]]] = {}
        if self.grouped in groups:
            kind, gather = groups[self.grouped]
            mine_groups = entry["row_groups"].get(self.grouped, {})
            row_groups[self.grouped] = {}
            for layer in sorted(layer_names, key=str):
                held = mine_groups.get(layer, [])
                count = max(distributed.gather(len(held)))
                row_groups[self.grouped][layer] = [
                    merged(held[i] if i < len(held) else None, kind, gather) for i in range(count)
                ]
        unavailable: dict[str, str] = {}
        for reasons in distributed.gather(entry["unavailable"]):
            unavailable.update(reasons)
        shared = {
            g: merged(entry["shared"].get(g), kind, gather)
            for g, (kind, gather) in groups.items()
            if kind == "source_predictions" and g not in unavailable
        }
        meta = dict(entry["meta"])
        meta["num_samples"] = sum(distributed.gather(meta["num_samples"]))
        meta["extract_s"] = max(distributed.gather(meta["extract_s"]))
        return {
            **entry,
            "statistics": statistics,
            "row_groups": row_groups,
            "shared": shared,
            "unavailable": unavailable,
            "meta": meta,
        }

    def _row(
        self,
        model: _Model,
        entry: dict[str, Any],
        revision: str | None,
        num_parameters: int | None,
        cached: bool,
    ) -> _Ranked:
        layers = {
            layer: {g: load_statistics(state) for g, state in held.items()}
            for layer, held in entry["statistics"].items()
        } or {"last": {}}
        row_groups = {
            layer: [load_statistics(state) for state in held]
            for layer, held in entry["row_groups"].get(self.grouped, {}).items()
            if held
        }
        shared = {g: load_statistics(state) for g, state in entry["shared"].items()}
        unavailable = dict(entry["unavailable"])
        meta = entry["meta"]
        num_parameters = num_parameters or meta.get("num_parameters")
        if num_parameters:
            shared["metadata"] = MetadataStatistics(num_parameters=num_parameters)
        else:
            unavailable["metadata"] = (
                "the parameter count is unknown (no safetensors weights to read it from)"
            )
        start = time.perf_counter()
        result = score_candidate(
            layers,
            {name: method.options for name, method in self.methods.items()},
            best_layer=self.layers == "best",
            shared=shared,
            unavailable=unavailable,
            keys={name: method.group for name, method in self.methods.items()},
            row_groups=row_groups or None,
        )
        primary = next(iter(self.methods))
        layer = result.best_layer if result.best_layer is not None else next(iter(layers))
        dim = meta.get("dim")
        if isinstance(dim, dict):
            dim = dim.get(layer, next(iter(dim.values())))
        failed = primary in result.method_errors
        estimate = None if failed else result.estimate
        row = RankingRow(
            model=model.name,
            status="skipped" if failed else "ok",
            score=result.scores.get(primary),
            scores=result.scores,
            revision=revision or meta.get("revision"),
            best_layer=result.best_layer,
            layer_scores=result.layer_scores,
            dim=dim if dim is not None else getattr(layers[layer].get("gram"), "dim", None),
            num_samples=meta["num_samples"],
            extract_s=meta["extract_s"],
            score_s=time.perf_counter() - start,
            num_parameters=num_parameters,
            reason=f"{primary}: {result.method_errors[primary]}" if failed else None,
            cached=cached,
            method_errors=result.method_errors,
            score_se=None if estimate is None else estimate.se,
            interval=None if estimate is None else (estimate.low, estimate.high),
            note=f"no signal at {meta['num_samples']} rows" if result.no_signal else None,
        )
        return _Ranked(row, estimate, result.no_signal and not failed)


def _upgraded(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """A cache entry in the current layout: entries written before kinds existed hold Gram
    statistics per layer only; those before layout 3 have no row groups (no error bars)."""
    if entry is None or entry.get("layout") == ENTRY_LAYOUT:
        return entry
    if entry.get("layout") == 2:
        return {**entry, "layout": ENTRY_LAYOUT, "row_groups": {}}
    statistics = {layer: {"gram": state} for layer, state in entry["statistics"].items()}
    return {
        "layout": ENTRY_LAYOUT,
        "groups": ["gram"],
        "statistics": statistics,
        "row_groups": {},
        "shared": {},
        "unavailable": {},
        "meta": entry["meta"],
    }


def _extended(entry: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """A cached entry with the groups of a new pass added (same key, so the same rows)."""
    layers = {*entry["statistics"], *fresh["statistics"]}
    statistics = {
        layer: {**entry["statistics"].get(layer, {}), **fresh["statistics"].get(layer, {})}
        for layer in layers
    }
    return {
        "layout": ENTRY_LAYOUT,
        "groups": list(dict.fromkeys([*entry["groups"], *fresh["groups"]])),
        "statistics": statistics,
        "row_groups": {**entry["row_groups"], **fresh["row_groups"]},
        "shared": {**entry["shared"], **fresh["shared"]},
        "unavailable": {**entry["unavailable"], **fresh["unavailable"]},
        "meta": {
            **entry["meta"],
            "extract_s": fresh["meta"]["extract_s"],
            "dim": fresh["meta"]["dim"],
        },
    }


def _appended(entry: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """The statistics of an entry's rows and of a pass over further rows: every statistics
    state, row group and shared state merged (row group g with row group g), the row counts and
    extraction times added."""

    def merged(mine: dict[str, Any] | None, other: dict[str, Any] | None) -> dict[str, Any]:
        if mine is None or other is None:
            return mine if other is None else other
        return load_statistics(mine).merge(load_statistics(other)).state_dict()

    statistics = {
        layer: {g: merged(held.get(g), fresh["statistics"].get(layer, {}).get(g)) for g in held}
        for layer, held in entry["statistics"].items()
    }
    row_groups = {
        g: {
            layer: [
                merged(a, b) for a, b in zip(held, fresh["row_groups"].get(g, {}).get(layer, []))
            ]
            for layer, held in layers.items()
        }
        for g, layers in entry["row_groups"].items()
    }
    shared = {g: merged(state, fresh["shared"].get(g)) for g, state in entry["shared"].items()}
    meta = dict(fresh["meta"])
    meta["num_samples"] = entry["meta"]["num_samples"] + fresh["meta"]["num_samples"]
    meta["extract_s"] = entry["meta"]["extract_s"] + fresh["meta"]["extract_s"]
    return {
        **entry,
        "statistics": statistics,
        "row_groups": row_groups,
        "shared": shared,
        "unavailable": {**entry["unavailable"], **fresh["unavailable"]},
        "meta": meta,
    }


def _update_groups(groups: list[Any], start: int, batch: torch.Tensor, labels: Any) -> None:
    """Fold a batch's rows, at stream positions ``start ..``, into their round-robin groups."""
    which = group_of_rows(start, len(labels), len(groups))
    for index, statistics in enumerate(groups):
        rows = np.flatnonzero(which == index)
        if rows.size:
            statistics.update(batch[torch.as_tensor(rows, device=batch.device)], labels[rows])


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
