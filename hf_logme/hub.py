"""Candidate checkpoints on the Hugging Face Hub: search, resolve one id, download what loading
needs.

A thin adapter over ``huggingface_hub.HfApi``: filters go to the Hub where it can apply them, the
few it cannot (can transformers' ``AutoModel`` load this without remote code?) are decided here
from the metadata the Hub already returns, without downloading weights. Each model becomes one
frozen ``Candidate``; nothing downstream reads raw ``ModelInfo``. Its ``sha`` pins the revision, so
caches keyed on it stay valid and downloads fetch exactly the commit that was resolved.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import heapq
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UnsafeWeightsError, UnsupportedModelError
from .estimators._validation import check_bool

if TYPE_CHECKING:
    from huggingface_hub import HfApi, ModelInfo

logger = logging.getLogger(__name__)

#: Pipeline tags searched for a dataset modality when no ``task`` is given: the encoders whose
#: features LogME scores (masked-LM and embedding models, classifiers' bodies).
MODALITY_TASKS: dict[str, tuple[str, ...]] = {
    "text": ("feature-extraction", "fill-mask", "sentence-similarity", "text-classification"),
    "image": ("image-feature-extraction", "image-classification"),
    "audio": ("audio-classification", "automatic-speech-recognition"),
}

#: ``sort`` values and the ``ModelInfo`` property each one needs, under its ``expand`` name.
SORT_KEYS: dict[str, str] = {
    "downloads": "downloads",
    "likes": "likes",
    "trending_score": "trendingScore",
    "created_at": "createdAt",
    "last_modified": "lastModified",
}

# Everything a Candidate is built from; the listing requests these and nothing else.
_EXPAND = [
    "sha",
    "pipeline_tag",
    "downloads",
    "likes",
    "safetensors",
    "gated",
    "library_name",
    "tags",
    "config",
]

# Files that `from_pretrained` reads from a repo's top level besides weights: configs, tokenizer
# and processor files (vocab.txt, merges.txt, sentencepiece models, tiktoken files).
_SUPPORT_SUFFIXES = (".json", ".txt", ".model", ".spm", ".codes", ".tokenizer", ".tiktoken")
_SAFE_WEIGHTS = ("model.safetensors", "model-*-of-*.safetensors")
_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*-of-*.bin")
# Weight formats we never download: pickle unless opted in, and TensorFlow / Flax / ONNX / raw
# checkpoints.
_UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".msgpack", ".onnx")
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One checkpoint on the Hub, as the search and ranking see it.

    Fields are ``None`` where the Hub did not report them.

    Attributes:
        id: Repo id, ``"owner/name"``.
        sha: Commit the metadata describes; pass it as ``revision`` to load exactly this version.
        pipeline_tag: The Hub's task tag, e.g. ``"fill-mask"``.
        downloads: Downloads over the last 30 days.
        likes: Likes.
        num_parameters: Parameters counted from the safetensors weights.
        license: The ``license:<id>`` tag, e.g. ``"apache-2.0"``.
        gated: Whether the repo requires accepting conditions before download.
        library: The Hub's library name, e.g. ``"transformers"``.
        model_type: ``model_type`` from the config, e.g. ``"bert"``.
        architectures: ``architectures`` from the config.
        has_safetensors: Whether the weights exist as safetensors.
        remote_code: Whether the config maps the model to code in the repo (``auto_map``, or the
            Hub's ``custom_code`` tag when the config is not listed).
        tags: All tags of the repo.

    Example:
        >>> c = Candidate("org/tiny-bert", sha="0" * 40, model_type="bert", has_safetensors=True)
        >>> c.loadable
        True
        >>> c.to_dict()["id"]
        'org/tiny-bert'
    """

    id: str
    sha: str | None = None
    pipeline_tag: str | None = None
    downloads: int | None = None
    likes: int | None = None
    num_parameters: int | None = None
    license: str | None = None
    gated: bool = False
    library: str | None = None
    model_type: str | None = None
    architectures: tuple[str, ...] = ()
    has_safetensors: bool = False
    remote_code: bool = False
    tags: tuple[str, ...] = ()

    @property
    def is_timm(self) -> bool:
        """Whether it is a timm checkpoint (library ``timm``, or the ``timm`` tag), loaded with
        ``timm.create_model`` (``pip install 'hf-logme[timm]'``) instead of transformers."""
        return self.model_type is None and (self.library == "timm" or "timm" in self.tags)

    @property
    def loadable(self) -> bool:
        """Whether ``AutoModel.from_pretrained(id)`` builds it from transformers' own code, or
        it is a timm checkpoint (timm runs no code from the repo)."""
        if self.is_timm:
            return True
        return (
            self.model_type is not None
            and not self.remote_code
            and _automodel_supports(self.model_type)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_model_info(cls, info: ModelInfo) -> Candidate:
        """Build from a ``huggingface_hub.ModelInfo`` (any subset of properties)."""
        config = info.config or {}
        auto_map = config.get("auto_map") or {}
        tags = tuple(info.tags or ())
        siblings = [s.rfilename for s in info.siblings or ()]
        return cls(
            id=info.id,
            sha=info.sha,
            pipeline_tag=info.pipeline_tag,
            downloads=info.downloads,
            likes=info.likes,
            num_parameters=info.safetensors.total if info.safetensors else None,
            license=next(
                (t.removeprefix("license:") for t in tags if t.startswith("license:")), None
            ),
            gated=bool(info.gated),
            library=info.library_name,
            model_type=config.get("model_type"),
            architectures=tuple(config.get("architectures") or ()),
            # The Hub counts parameters only when it could parse the weights; the tag and the
            # file list also show safetensors weights exist.
            has_safetensors=info.safetensors is not None
            or "safetensors" in tags
            or any(s.endswith(".safetensors") for s in siblings),
            # The Hub tags repos whose config has an auto_map "custom_code"; trust the config's
            # auto_map when it is there (a custom tokenizer alone does not change the model).
            remote_code=any(key == "AutoConfig" or key.startswith("AutoModel") for key in auto_map)
            if auto_map
            else "custom_code" in tags,
            tags=tags,
        )


def search_candidates(
    *,
    task: str | Sequence[str] | None = None,
    modality: str | None = None,
    search: str | None = None,
    author: str | None = None,
    library: str | None = "transformers",
    language: str | None = None,
    license: str | None = None,
    max_parameters: int | None = None,
    exclude_gated: bool = True,
    require_safetensors: bool = True,
    sort: str = "downloads",
    limit: int = 20,
    api: HfApi | None = None,
    token: str | bool | None = None,
) -> list[Candidate]:
    """Find checkpoints on the Hub worth ranking, most popular first.

    The Hub applies the filters it knows (task, text search, author, library, language, license,
    size, gating, safetensors); each model must then be loadable with ``AutoModel`` from
    transformers' own code, which is decided from the config the listing returns, without
    downloading anything, or be a timm checkpoint (``library="timm"``; ranked when timm is
    installed). Pages are fetched lazily and the search stops once ``limit`` models
    passed every filter.

    Args:
        task: Pipeline tag(s), e.g. ``"fill-mask"`` or ``("fill-mask", "feature-extraction")``.
        modality: ``"text"``, ``"image"`` or ``"audio"``: searches the tags in ``MODALITY_TASKS``.
            Pass either ``task`` or ``modality``; with neither, every task is searched.
        search: Substring of the model id.
        author: User or organisation that owns the model.
        library: Library tag the Hub assigns (default ``"transformers"``; ``"timm"`` for timm
            checkpoints); ``None`` for any.
        language: Language code tag, e.g. ``"en"``.
        license: License id, e.g. ``"apache-2.0"`` (matches the ``license:<id>`` tag).
        max_parameters: Largest parameter count (from the safetensors weights); models whose
            size the Hub does not know are excluded.
        exclude_gated: Leave out gated repos, which need accepted conditions and a token.
        require_safetensors: Leave out models without safetensors weights (loading pickle weights
            runs code from the file).
        sort: ``"downloads"``, ``"likes"``, ``"trending_score"``, ``"created_at"`` or
            ``"last_modified"``, descending.
        limit: Number of candidates to return at most.
        api: A ``huggingface_hub.HfApi`` to use (endpoint, token, headers); a default one otherwise.
        token: Hub token for this call, as ``HfApi`` methods take it.

    Returns:
        Up to ``limit`` candidates in ``sort`` order.

    Raises:
        ValueError: An option has a wrong value, or ``task`` and ``modality`` were both given.
        TypeError: An option has a wrong type.
        huggingface_hub.errors.HfHubHTTPError: The Hub answered with an error.

    Example:
        >>> candidates = search_candidates(
        ...     modality="text", language="en", limit=5)  # doctest: +SKIP
        >>> [c.id for c in candidates]  # doctest: +SKIP
    """
    tasks = _check_search_options(
        task=task,
        modality=modality,
        search=search,
        author=author,
        library=library,
        language=language,
        license=license,
        max_parameters=max_parameters,
        exclude_gated=exclude_gated,
        require_safetensors=require_safetensors,
        sort=sort,
        limit=limit,
    )
    api = api if api is not None else _default_api()
    tags = [tag for tag in (library, language, f"license:{license}" if license else None) if tag]
    if require_safetensors:
        tags.append("safetensors")
    query: dict[str, Any] = {
        "filter": tags or None,
        "search": search,
        "author": author,
        "gated": False if exclude_gated else None,
        "num_parameters": f"max:{_size_bound(max_parameters)}"
        if max_parameters is not None
        else None,
        "sort": sort,
        "expand": _EXPAND + ([SORT_KEYS[sort]] if SORT_KEYS[sort] not in _EXPAND else []),
        "token": token,
    }
    streams = (
        [api.list_models(pipeline_tag=tag, **query) for tag in tasks]
        if tasks
        else [api.list_models(**query)]
    )
    listing = (
        streams[0]
        if len(streams) == 1
        else heapq.merge(*streams, key=_sort_value(sort), reverse=True)
    )

    found: list[Candidate] = []
    seen: set[str] = set()
    for info in listing:
        if info.id in seen:
            continue
        seen.add(info.id)
        candidate = Candidate.from_model_info(info)
        reason = _exclusion_reason(
            candidate,
            exclude_gated=exclude_gated,
            require_safetensors=require_safetensors,
            max_parameters=max_parameters,
        )
        if reason is not None:
            logger.debug("Skipping %s: %s.", candidate.id, reason)
            continue
        found.append(candidate)
        if len(found) == limit:
            break
    logger.info("Found %d candidate(s) after examining %d listed model(s).", len(found), len(seen))
    return found


def resolve_candidate(
    model_id: str,
    *,
    revision: str | None = None,
    api: HfApi | None = None,
    token: str | bool | None = None,
) -> Candidate:
    """Metadata of one model at one revision: its commit sha, gating, weights format and size.

    Args:
        model_id: Repo id, ``"owner/name"``.
        revision: Branch, tag or commit; the default branch if ``None``.
        api: A ``huggingface_hub.HfApi`` to use; a default one otherwise.
        token: Hub token for this call.

    Returns:
        The ``Candidate``; its ``sha`` is the commit ``revision`` points to now.

    Raises:
        ValueError: ``model_id`` or ``revision`` is malformed (checked before any request).
        huggingface_hub.errors.RepositoryNotFoundError: No such repo (or it is private).
        huggingface_hub.errors.RevisionNotFoundError: No such revision.

    Example:
        >>> resolve_candidate("sentence-transformers/all-MiniLM-L6-v2").sha  # doctest: +SKIP
    """
    _check_model_id(model_id, revision)
    api = api if api is not None else _default_api()
    info = api.model_info(model_id, revision=revision, expand=[*_EXPAND, "siblings"], token=token)
    return Candidate.from_model_info(info)


def download_candidate(
    model_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    use_safetensors: bool = True,
    trust_remote_code: bool = False,
) -> Path:
    """Download the files ``from_pretrained`` needs, and only those, into the Hugging Face cache.

    That is the top-level configs, tokenizer and processor files, and the weights: safetensors
    (single file, or the index and its shards). Pickle weights (``pytorch_model*.bin``) are taken
    only with ``use_safetensors=False`` and only when the repo has no safetensors. TensorFlow,
    Flax, ONNX files, remote code and subfolders are never downloaded.

    ``config.json`` comes first and is checked as :func:`hf_logme.features.loading.check_hub_config`
    does: a repo whose architecture is its own code (without ``trust_remote_code=True``), or
    one this transformers does not know, is refused before any weights are fetched, and the
    config this call fetched is removed again.

    Args:
        model_id: Repo id, ``"owner/name"``.
        revision: Branch, tag or commit; the default branch if ``None``. The files all come from
            the one commit it resolves to.
        token: Hub token (needed for gated repos you were granted).
        cache_dir: Hub cache folder; ``HF_HUB_CACHE`` if ``None``.
        use_safetensors: Refuse pickle weights (the default: unpickling runs arbitrary code).
        trust_remote_code: Accept a repo whose architecture is code in the repo (the code is
            still not downloaded here; ``from_pretrained`` would fetch and run it).

    Returns:
        The local snapshot folder, to pass to ``AutoModel.from_pretrained``.

    Raises:
        ValueError: ``model_id`` or ``revision`` is malformed.
        TypeError: ``use_safetensors`` or ``trust_remote_code`` is not a bool.
        RemoteCodeRequiredError: The architecture is the repo's own code and
            ``trust_remote_code`` is False.
        UnsafeWeightsError: The repo has only pickle weights and ``use_safetensors=True``.
        UnsupportedModelError: The repo has no weights that transformers loads.
        huggingface_hub.errors.RepositoryNotFoundError: No such repo (``GatedRepoError`` if gated).
        huggingface_hub.errors.HfHubHTTPError: The Hub failed, e.g. during a download; no partial
            file is left in the cache.

    Example:
        >>> path = download_candidate("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> AutoModel.from_pretrained(path)  # doctest: +SKIP
    """
    _check_model_id(model_id, revision)
    if not isinstance(use_safetensors, bool):
        raise TypeError(f"use_safetensors must be a bool; got {use_safetensors!r}.")
    trust_remote_code = check_bool("trust_remote_code", trust_remote_code)
    from huggingface_hub import HfApi, snapshot_download

    from .features.loading import check_hub_config

    info = HfApi().model_info(model_id, revision=revision, expand=["sha", "siblings"], token=token)
    files = _files_to_download(
        model_id, [s.rfilename for s in info.siblings or ()], use_safetensors=use_safetensors
    )
    was_cached = snapshot_is_cached(model_id, revision=info.sha, cache_dir=cache_dir)
    try:
        check_hub_config(
            model_id,
            revision=info.sha,
            token=token,
            trust_remote_code=trust_remote_code,
            cache_dir=cache_dir,
        )
    except Exception:
        if not was_cached:  # leave the cache as it was: a refused repo costs nothing on disk
            delete_snapshot(model_id, revision=info.sha, cache_dir=cache_dir)
        raise
    logger.debug("Downloading %s@%s: %s", model_id, info.sha, files)
    folder = snapshot_download(
        model_id,
        revision=info.sha,
        allow_patterns=[glob.escape(f) for f in files],
        cache_dir=cache_dir,
        token=token,
    )
    return Path(folder)


def _files_to_download(
    model_id: str, repo_files: Iterable[str], *, use_safetensors: bool
) -> list[str]:
    """The top-level files ``from_pretrained`` reads, with one weights format."""
    top_level = [f for f in repo_files if "/" not in f]
    safe = [f for f in top_level if any(fnmatch.fnmatchcase(f, p) for p in _SAFE_WEIGHTS)]
    pickle = [f for f in top_level if any(fnmatch.fnmatchcase(f, p) for p in _PICKLE_WEIGHTS)]
    if not safe and not (pickle and not use_safetensors):
        unsafe = sorted(f for f in top_level if f.endswith(_UNSAFE_SUFFIXES))
        if pickle:
            raise UnsafeWeightsError(
                f"{model_id}: no safetensors weights, only pickle files {pickle}; loading those "
                f"can run arbitrary code. Pass use_safetensors=False to allow them if you trust "
                f"this repo.",
                model_id=model_id,
            )
        raise UnsupportedModelError(
            f"{model_id}: no weights transformers can load (model.safetensors or sharded "
            f"safetensors); found {unsafe or 'no weight files'}.",
            model_id=model_id,
        )
    weights = safe or pickle
    index = "model.safetensors.index.json" if safe else "pytorch_model.bin.index.json"
    support = [
        f for f in top_level if f.endswith(_SUPPORT_SUFFIXES) and not f.endswith(".index.json")
    ]
    return sorted({*support, *weights, *([index] if index in top_level else [])})


def _exclusion_reason(
    candidate: Candidate,
    *,
    exclude_gated: bool,
    require_safetensors: bool,
    max_parameters: int | None,
) -> str | None:
    """Why a listed model is not a candidate, or ``None`` if it is one."""
    if exclude_gated and candidate.gated:
        return "gated"
    if require_safetensors and not candidate.has_safetensors:
        return "no safetensors weights"
    if max_parameters is not None and (
        candidate.num_parameters is None or candidate.num_parameters > max_parameters
    ):
        return (
            f"{candidate.num_parameters or 'unknown'} parameters (max_parameters={max_parameters})"
        )
    if candidate.is_timm:
        return None
    if candidate.model_type is None:
        return "no model_type in its config"
    if candidate.remote_code:
        return "needs trust_remote_code (config auto_map)"
    if not candidate.loadable:
        return f"model_type {candidate.model_type!r} has no AutoModel class in transformers"
    return None


def _automodel_supports(model_type: str) -> bool:
    """Whether transformers' own ``AutoConfig`` and ``AutoModel`` know this ``model_type``."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return model_type in CONFIG_MAPPING_NAMES and model_type in MODEL_MAPPING_NAMES


def _sort_value(sort: str) -> Callable[[ModelInfo], Any]:
    """Key ordering ``ModelInfo`` objects like the Hub's ``sort`` (the names are its attributes)."""
    floor: Any = _EARLIEST if sort in ("created_at", "last_modified") else float("-inf")
    return lambda info: floor if getattr(info, sort) is None else getattr(info, sort)


def _size_bound(n: int) -> str:
    """``n`` rounded up to the Hub's size syntax (``124M``): the Hub filters loosely, we exactly."""
    for suffix, unit in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= unit:
            return f"{-(-n // unit)}{suffix}"
    return str(n)


def _default_api() -> HfApi:
    from huggingface_hub import HfApi

    return HfApi()


def _check_model_id(model_id: str, revision: str | None) -> None:
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(model_id, str):
        raise TypeError(f"model_id must be a str like 'owner/name'; got {type(model_id).__name__}.")
    try:
        validate_repo_id(model_id)
    except ValueError as err:
        raise ValueError(f"model_id {model_id!r} is not a Hub repo id: {err}") from err
    if revision is not None and (not isinstance(revision, str) or not revision):
        raise ValueError(
            f"revision must be a branch, tag or commit sha, or None; got {revision!r}."
        )


def _check_search_options(
    *,
    task: Any,
    modality: Any,
    limit: Any,
    max_parameters: Any,
    sort: Any,
    exclude_gated: Any,
    require_safetensors: Any,
    **strings: Any,
) -> tuple[str, ...]:
    """Validate ``search_candidates``' options; return the pipeline tags to search (maybe none)."""
    for name, value in strings.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{name} must be a non-empty str or None; got {value!r}.")
    for name, value in (
        ("exclude_gated", exclude_gated),
        ("require_safetensors", require_safetensors),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool; got {value!r}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1; got {limit!r}.")
    if max_parameters is not None and (
        isinstance(max_parameters, bool)
        or not isinstance(max_parameters, int)
        or max_parameters < 1
    ):
        raise ValueError(f"max_parameters must be an int >= 1 or None; got {max_parameters!r}.")
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {sorted(SORT_KEYS)}; got {sort!r}.")
    if task is not None and modality is not None:
        raise ValueError(
            f"Pass either task={task!r} or modality={modality!r}, not both: modality only chooses "
            f"the tasks to search when none is given."
        )
    if modality is not None:
        if modality not in MODALITY_TASKS:
            raise ValueError(f"modality must be one of {sorted(MODALITY_TASKS)}; got {modality!r}.")
        return MODALITY_TASKS[modality]
    tasks = (task,) if isinstance(task, str) else tuple(task) if task is not None else ()
    if task is not None and (not tasks or not all(isinstance(t, str) and t.strip() for t in tasks)):
        raise ValueError(
            f"task must be a pipeline tag or a sequence of them, e.g. 'fill-mask'; got {task!r}."
        )
    return tuple(dict.fromkeys(tasks))


def snapshot_is_cached(
    model_id: str, *, revision: str | None, cache_dir: str | Path | None = None
) -> bool:
    """Whether the Hugging Face cache holds a snapshot of ``model_id`` at commit ``revision``."""
    if revision is None:
        return False
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    root = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    return (
        root / repo_folder_name(repo_id=model_id, repo_type="model") / "snapshots" / revision
    ).is_dir()


def delete_snapshot(
    model_id: str, *, revision: str | None, cache_dir: str | Path | None = None
) -> None:
    """Delete one downloaded snapshot of ``model_id`` from the cache (``--delete-after``).

    Files shared with another cached revision stay; nothing happens if it is not cached.
    """
    from huggingface_hub import constants, scan_cache_dir

    if revision is None:
        return
    # scan_cache_dir's own default is the cache folder at import time; ask for today's.
    root = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    if not root.is_dir():
        return
    cache = scan_cache_dir(root)
    cached = any(
        rev.commit_hash == revision
        for repo in cache.repos
        if repo.repo_id == model_id and repo.repo_type == "model"
        for rev in repo.revisions
    )
    if cached:
        cache.delete_revisions(revision).execute()
        logger.info("Deleted %s@%s from the cache.", model_id, revision[:8])


def safetensors_parameter_count(folder: str | Path) -> int | None:
    """Parameters in a local checkpoint's safetensors weights, read from the file headers only.

    None when the folder has no safetensors weights (the count is informative, never required).

    Hand-written on purpose (the 8-byte length, then the JSON header): both library readers
    give the same count but were measurably slower in four runs of
    ``benchmarks/bench_library_helpers.py`` (best of 7-15 interleaved repeats, loaded 2-core
    machine): ``huggingface_hub.parse_local_safetensors_file_metadata`` 1.2-4.4x (e.g. 0.45 vs
    0.17 ms on all-MiniLM-L6-v2, 0.71 vs 0.40 ms on all-mpnet-base-v2), ``safetensors.safe_open``
    with ``get_slice(name).get_shape()`` 1.9-4.9x. The huggingface_hub reader is also absent from
    the oldest huggingface_hub we accept (0.23).
    """
    import json
    import struct

    folder = Path(folder)
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for size in entry["shape"]:
                    count *= size
                total += count
    return total


def hub_offline() -> bool:
    """Whether the Hub is off limits (``HF_HUB_OFFLINE=1``), as huggingface_hub decides it."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


def cached_snapshot(
    model_id: str, *, revision: str | None = None, cache_dir: str | Path | None = None
) -> tuple[str, Path]:
    """``(commit, snapshot folder)`` of ``model_id`` at ``revision``, from the local Hub cache
    only, as ``from_pretrained`` resolves it offline: a branch or tag through the cache's
    ``refs/``, a commit sha as it is (``huggingface_hub.resolve_revision`` and
    ``try_to_load_from_cache``). No request is made.

    Args:
        model_id: Repo id, ``"owner/name"``.
        revision: Branch, tag or commit sha; the default branch if ``None``.
        cache_dir: Hub cache folder; ``HF_HUB_CACHE`` if ``None``.

    Raises:
        ValueError: ``model_id`` or ``revision`` is malformed.
        HubUnreachableError: That revision is not in the cache, or its snapshot holds no weights
            (the message says to run once online).
    """
    import huggingface_hub
    from huggingface_hub.errors import RevisionResolutionError

    from .errors import HubUnreachableError

    _check_model_id(model_id, revision)
    at = f"{model_id}@{revision}" if revision else model_id
    fix = (
        f"Download it once online (e.g. run this ranking without HF_HUB_OFFLINE=1, or "
        f"`hf download {model_id}`), or unset HF_HUB_OFFLINE."
    )
    missing = HubUnreachableError(
        f"{at} is not in the Hugging Face cache, and the Hub is offline (HF_HUB_OFFLINE=1). {fix}",
        model_id=model_id,
    )
    try:
        commit = huggingface_hub.resolve_revision(
            model_id, revision=revision, cache_dir=cache_dir, local_files_only=True
        ).resolved
    except RevisionResolutionError as err:
        raise missing from err
    # Not snapshot_download(local_files_only=True): it calls a snapshot incomplete unless every
    # file of the repo is there, and a ranking downloads only what from_pretrained reads.
    config = huggingface_hub.try_to_load_from_cache(
        model_id, "config.json", revision=commit, cache_dir=cache_dir
    )
    if not isinstance(config, str):
        raise missing
    folder = Path(config).parent
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise HubUnreachableError(
            f"{at}: the cached snapshot {commit[:8]} has no weights (only "
            f"{sorted(p.name for p in folder.iterdir()) or 'nothing'}), and the Hub is offline "
            f"(HF_HUB_OFFLINE=1). {fix}",
            model_id=model_id,
        )
    return commit, folder
