"""Which checkpoint to fine-tune: dataset-driven candidate search and :func:`select_checkpoint`.

- :func:`search_for_dataset` finds Hub candidates for a dataset: of a pipeline tag, or of the usual
  encoder tasks of the dataset's input modality.
- :func:`select_checkpoint` ranks candidates (given, or found so) with
  :func:`hf_logme.rank_models` and returns the best one's id, for ``from_pretrained`` or
  :func:`hf_logme.make_model_init`.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import NoCandidateError
from .features.columns import find_inputs, resolve_split
from .features.options import TASKS, check_choice
from .features.targets import find_label_column
from .hub import Candidate, search_candidates
from .ranking import rank_models
from .results import Ranking

logger = logging.getLogger(__name__)


def search_for_dataset(
    dataset: Any,
    *,
    task: str | Sequence[str] | None = None,
    limit: int = 20,
    label_column: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    image_column: str | None = None,
    audio_column: str | None = None,
    require_safetensors: bool = True,
    token: str | bool | None = None,
) -> list[Candidate]:
    """Candidates for a ``datasets.Dataset``: of ``task``, or else of the usual encoder tasks of
    its input column's modality (text, image or audio; columns detected as in extraction)."""
    if task is not None:
        return search_candidates(
            task=task, limit=limit, require_safetensors=require_safetensors, token=token
        )
    label = find_label_column(dataset, label_column)
    modality = find_inputs(
        dataset,
        None,
        text_column=text_column,
        text_pair_column=text_pair_column,
        image_column=image_column,
        audio_column=audio_column,
        exclude=(label,),
    ).modality
    logger.info("Searching the Hub for %s models (the dataset's input).", modality)
    return search_candidates(
        modality=modality, limit=limit, require_safetensors=require_safetensors, token=token
    )


#: How many candidates a Hub search returns when ``select_checkpoint`` gets no ``candidates``.
DEFAULT_SEARCH_LIMIT = 10


# --- select_checkpoint ----------------------------------------------------------------------------


def select_checkpoint(
    dataset: Any,
    candidates: Iterable[str | os.PathLike | Any] | str | os.PathLike | None = None,
    *,
    return_ranking: bool = False,
    task: str | Sequence[str] | None = None,
    limit: int | None = None,
    label_task: str = "auto",
    **options: Any,
) -> str | tuple[str, Ranking]:
    """The checkpoint that transfers best to ``dataset``, by LogME: the one to fine-tune.

    Ranks ``candidates`` with :func:`hf_logme.rank_models`; without candidates, first searches the
    Hub (:func:`search_for_dataset`) for ``limit`` popular checkpoints of ``task``,
    or of the dataset's input modality (text, image or audio) when no task is given.

    Args:
        dataset: a ``datasets.Dataset``, or a ``DatasetDict`` with ``split=``; rank on the data
            you will fine-tune on.
        candidates: Hub ids, local model folders or ``Candidate`` objects; None searches the Hub.
        return_ranking: also return the whole :class:`~hf_logme.Ranking` (scores, skipped rows).
        task: Hub pipeline tag(s) to search, e.g. ``"fill-mask"``; only without ``candidates``.
        limit: how many checkpoints the search returns (default 10); only without ``candidates``.
        label_task: ``rank_models``' ``task`` ("auto", "classification", "regression",
            "multilabel"), renamed here where ``task`` is the Hub pipeline tag.
        **options: any other keyword option of :func:`hf_logme.rank_models` (``split``,
            ``label_column``, ``max_samples``, ``methods``, ``layers``, ``token``...). Their
            names are checked against ``rank_models`` before anything else happens; ``split``,
            the column options, ``token`` and ``use_safetensors`` also steer the search.

    Returns:
        The best candidate's id (a Hub id, or a local path as given), ready for
        ``from_pretrained`` or :func:`make_model_init`; with ``return_ranking=True``, the tuple
        ``(best, ranking)``.

    Raises:
        NoCandidateError: no candidate could be scored (the message lists each one's reason), or
            the search found none.
        ValueError: ``task`` or ``limit`` given with ``candidates``; any option or dataset problem
            ``rank_models`` or the search reports.
        TypeError: an option ``rank_models`` does not have, or of the wrong type.

    Example:
        >>> best = select_checkpoint(train, ["sentence-transformers/all-MiniLM-L6-v2",
        ...                                  "BAAI/bge-small-en-v1.5"])  # doctest: +SKIP
        >>> trainer = Trainer(model_init=make_model_init(best, num_labels=2), ...)  # doctest: +SKIP
    """
    if not isinstance(return_ranking, bool):
        raise TypeError(f"return_ranking must be a bool; got {return_ranking!r}.")
    try:  # unknown option names fail now, not after a Hub search
        inspect.signature(rank_models).bind(candidates, dataset, task=label_task, **options)
    except TypeError as err:
        raise TypeError(
            f"select_checkpoint: {err} (options are those of hf_logme.rank_models)"
        ) from None
    check_choice("label_task", label_task, TASKS)
    if candidates is None:
        columns = {name: options.get(name) for name in _COLUMN_OPTIONS}
        candidates = _search(
            dataset,
            split=options.get("split"),
            columns=columns,
            label_column=options.get("label_column"),
            task=task,
            limit=DEFAULT_SEARCH_LIMIT if limit is None else limit,
            token=options.get("token"),
            use_safetensors=options.get("use_safetensors", True),
        )
    elif task is not None or limit is not None:
        raise ValueError(
            f"task={task!r} and limit={limit!r} choose what to search on the Hub, which happens "
            f"only when candidates is None; drop them, or drop candidates to search."
        )
    ranking = rank_models(candidates, dataset, task=label_task, **options)
    best = ranking.best
    if best is None:
        reasons = "\n".join(f"  {row.model}: {row.reason}" for row in ranking.skipped)
        raise NoCandidateError(
            f"none of the {len(ranking)} candidates could be scored on this dataset, so there is "
            f"no checkpoint to select:\n{reasons}",
            ranking=ranking,
        )
    logger.info("Selected %s (%s %.4f).", best, ranking.primary, ranking.scored[0].score)
    return (best, ranking) if return_ranking else best


_COLUMN_OPTIONS = ("text_column", "text_pair_column", "image_column", "audio_column")


def _search(
    dataset: Any,
    *,
    split: str | None,
    columns: dict[str, str | None],
    label_column: str | None,
    task: str | Sequence[str] | None,
    limit: int,
    token: str | bool | None,
    use_safetensors: bool,
) -> list[Any]:
    """Hub candidates for ``task``, or for the modality of the dataset's input column."""
    found = search_for_dataset(
        resolve_split(dataset, split),
        task=task,
        limit=limit,
        label_column=label_column,
        **columns,
        require_safetensors=use_safetensors,
        token=token,
    )
    if not found:
        raise NoCandidateError(
            f"the Hub search ({'task=' + repr(task) if task else 'by the dataset input modality'}) "
            f"found no loadable candidates; pass candidates= or another task=."
        )
    logger.info("Ranking %d Hub candidates: %s", len(found), [c.id for c in found])
    return found
