"""On-disk cache of per-candidate feature statistics, keyed by everything that determines them.

A ranking run stores, for each finished candidate, the float64 sufficient statistics of its
features (``GramStatistics``, a few MB) rather than the features: every Gram-based estimator and
both settings of LogME's ``intercept`` can be computed from them. A rerun - after a crash, a
``Ctrl-C`` or with other scoring options - skips every candidate already done.

Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a killed run never
leaves a half-written entry and two runs sharing a cache at worst both compute the same entry.
A cache is an optimisation: one that cannot be written (full disk, read-only folder) costs a
warning, never the run, and an entry that loads but is not a sound ranking entry is a miss, so it
is recomputed and overwritten. Local model folders are keyed by their content, not their path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$HF_LOGME_CACHE``, else ``$HF_HOME/hf_logme``, else ``~/.cache/huggingface/hf_logme``.

    Read at call time, so tests and users can change the environment after import. ``HF_HOME``
    is resolved as huggingface_hub resolves it (``~`` and ``$VARS`` expanded, else
    ``$XDG_CACHE_HOME/huggingface``), so the folder sits next to the Hub cache it uses.

    Not ``huggingface_hub.constants.HF_HOME``: it is computed once, when huggingface_hub is first
    imported, so a later change of ``HF_HOME`` would be missed (huggingface_hub has no call-time
    resolver). Not ``huggingface_hub.cached_assets_path``: it is another folder
    (``$HF_HOME/assets/hf_logme/default/...``, which would orphan existing caches), fixed at
    import as well, and it creates folders when merely asked for the path.
    """
    if os.environ.get("HF_LOGME_CACHE"):
        return Path(_expand(os.environ["HF_LOGME_CACHE"]))
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(_expand(hf_home)) / "hf_logme"


def _expand(path: str) -> str:
    """``~`` and ``$VARS`` expanded, as huggingface_hub.constants does for its folders."""
    return os.path.expandvars(os.path.expanduser(path))


def cache_key(parts: dict[str, Any]) -> str:
    """A stable hex digest of the key parts (JSON with sorted keys; values must be JSON-able)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _plain(parts: dict[str, Any]) -> dict[str, Any]:
    """The key parts as JSON would return them (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(parts, sort_keys=True, default=str))


# Files up to this size are hashed whole when a local model folder is keyed (configs, tokenizer
# files); larger ones (weights) by size and modification time, which a rewrite changes.
_HASH_WHOLE_BYTES = 4 * 2**20


def local_model_fingerprint(folder: str | os.PathLike) -> str:
    """A digest of a local model folder's content: what the cache keys a local candidate by.

    Every file below ``folder`` (hidden files and folders excepted) contributes its relative
    path, and either its bytes (up to 4 MiB: config, tokenizer and processor files) or its size
    and modification time (weights). Replacing the folder's files changes the digest; moving or
    renaming the folder does not. Cost: one ``stat`` per file and reading the small ones.
    """
    root = Path(folder).expanduser()
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        stat = path.stat()
        digest.update(f"{relative.as_posix()}\0{stat.st_size}\0".encode())
        if stat.st_size <= _HASH_WHOLE_BYTES:
            digest.update(path.read_bytes())
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return digest.hexdigest()[:40]


def model_key(name: str | os.PathLike, *, local: bool) -> str:
    """The ``"model"`` part of a cache key: the Hub id, or ``local:<content digest>``."""
    return f"local:{local_model_fingerprint(name)}" if local else os.fspath(name)


def normalize_model_name(name: str | os.PathLike) -> str:
    """The name a ranking shows and deduplicates a candidate by.

    A local folder is written in normal form (``"tiny/"``, ``"./tiny"`` -> ``"tiny"``;
    ``~`` expanded), so one folder named two ways is one candidate. Hub ids are returned as given.
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    return os.path.normpath(path) if path.is_dir() else text


def check_entry(entry: Any) -> str | None:
    """Why ``entry`` is not a sound ranking cache entry, or None if it is.

    A ranking entry holds ``"statistics"`` (per layer, the states of the statistics gathered for
    it, nested by group in newer layouts), optionally ``"shared"`` states (per candidate, such
    as source predictions), and ``"meta"`` with ``num_samples`` and ``extract_s``. Every
    statistics state (a dict with a ``"kind"``, or a bare Gram state of the first layout) is
    checked: it loads, its tensors are finite, and Gram states have consistent shapes and
    class counts that add up to ``n``. O(size of the entry), no solve.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("statistics"), dict):
        return "no statistics"
    meta = entry.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("num_samples"), int):
        return "no meta.num_samples"
    if not isinstance(meta.get("extract_s"), (int, float)):
        return "no meta.extract_s"
    if not entry["statistics"]:
        return "no layers"
    for part in ("statistics", "shared", "row_groups"):
        for where, state in _states(entry.get(part) or {}, part):
            problem = _check_state(state) if "kind" not in state else _check_kind(state)
            if problem:
                return f"{where}: {problem}"
    return None


def _states(tree: dict[Any, Any] | list[Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    """The statistics states in a nested dict, with where they are (``statistics['last']``)."""
    found = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in items:
        here = f"{where}[{key!r}]"
        if isinstance(value, dict) and ("kind" in value or "regression" in value):
            found.append((here, value))
        elif isinstance(value, (dict, list)):  # groups of states, or a list of row groups
            found.extend(_states(value, here))
        else:
            return [(here, {})]  # neither a state nor a group of states
    return found


def _check_kind(state: dict[str, Any]) -> str | None:
    from .estimators import load_statistics

    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                return f"non-finite {name}"
    problem = _check_state(state) if state["kind"] == "gram" else None
    if problem:
        return problem
    try:
        load_statistics(state)
    except Exception as err:  # any way a state fails to load makes it unusable
        return f"a {state['kind']!r} state that does not load ({type(err).__name__}: {err})"
    return None


def _check_state(state: Any) -> str | None:
    if not isinstance(state, dict) or not isinstance(state.get("regression"), bool):
        return "not a statistics state"
    n = state.get("n")
    if not isinstance(n, int) or n < 1:
        return f"n={n!r}"
    tensors = ("gram", "cross", "target_sum") + (
        ("feature_sum", "target_sq") if state["regression"] else ()
    )
    if not all(isinstance(state.get(name), torch.Tensor) for name in tensors):
        return f"missing one of {tensors}"
    gram, cross, target_sum = state["gram"], state["cross"], state["target_sum"]
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or cross.ndim != 2:
        return f"gram {tuple(gram.shape)}, cross {tuple(cross.shape)}"
    dim, targets = gram.shape[0], cross.shape[0]
    expected = {"cross": (targets, dim), "target_sum": (targets,)}
    if state["regression"]:
        expected.update(feature_sum=(dim,), target_sq=(targets,))
    elif not isinstance(state.get("classes"), list) or len(state["classes"]) != targets:
        return f"{targets} class rows but classes {state.get('classes')!r}"
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            return f"{name} has shape {tuple(state[name].shape)}, expected {shape}"
    for name in tensors:
        if not bool(torch.isfinite(state[name]).all()):
            return f"non-finite {name}"
    if not state["regression"] and not math.isclose(float(target_sum.sum()), n):
        return f"class counts add up to {float(target_sum.sum())}, not n={n}"
    return None


class StatisticsCache:
    """Get and put cache entries (dicts of tensors, lists and plain values) by key parts.

    Args:
        root: folder for the entries; ``default_cache_dir()`` when None.
        enabled: False makes every ``get`` miss and every ``put`` a no-op (``--no-cache``).
        validate: ``entry -> reason or None``, run on every entry read; an entry with a reason is
            a miss (logged), so it is recomputed and overwritten. Default :func:`check_entry`
            (the ranking's layout); None trusts whatever loads.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        enabled: bool = True,
        validate: Any = check_entry,
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.validate = validate

    def path(self, parts: dict[str, Any]) -> Path:
        return self.root / "statistics" / f"{cache_key(parts)}.pt"

    def get(self, parts: dict[str, Any]) -> dict[str, Any] | None:
        """The stored entry for these key parts, or None (missing, disabled, or unreadable)."""
        if not self.enabled:
            return None
        parts = _plain(parts)
        path = self.path(parts)
        if not path.exists():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a corrupt or foreign file is a miss, not a failure
            logger.warning(
                "Ignoring unreadable cache entry %s (%s); it will be recomputed.", path, err
            )
            return None
        if not isinstance(entry, dict):
            return None
        if entry.get("version") != CACHE_VERSION or entry.get("key") != parts:
            return None
        problem = self.validate(entry.get("value")) if self.validate is not None else None
        if problem:
            logger.warning(
                "Ignoring invalid cache entry %s (%s); it will be recomputed.", path, problem
            )
            return None
        return entry["value"]

    def put(self, parts: dict[str, Any], value: dict[str, Any]) -> Path | None:
        """Store ``value`` atomically under these key parts; returns the path.

        Returns None, without raising, when the cache is disabled or the entry could not be
        written: any error while writing (``OSError``, or the ``RuntimeError`` that ``torch.save``
        raises on a full disk) is logged as a warning and leaves no partial file.
        """
        if not self.enabled:
            return None
        parts = _plain(parts)
        path = self.path(parts)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
            with os.fdopen(handle, "wb") as file:
                torch.save({"version": CACHE_VERSION, "key": parts, "value": value}, file)
            os.replace(tmp, path)
        except Exception as err:  # noqa: BLE001 - any failure to write is only a lost cache entry
            _remove(tmp)
            logger.warning(
                "Could not write the statistics cache entry %s (%s: %s); continuing without it "
                "(this result will be recomputed next time).",
                path,
                type(err).__name__,
                str(err).strip().splitlines()[0] if str(err).strip() else "",
            )
            return None
        except BaseException:  # Ctrl-C: no partial file, and the interrupt goes on
            _remove(tmp)
            raise
        return path


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass
