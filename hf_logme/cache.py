"""On-disk cache of per-candidate feature statistics, keyed by everything that determines them.

A ranking run stores, for each finished candidate, the float64 sufficient statistics of its
features (``GramStatistics``, a few MB) rather than the features: every Gram-based estimator and
both settings of LogME's ``intercept`` can be computed from them. A rerun - after a crash, a
``Ctrl-C`` or with other scoring options - skips every candidate already done.

Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a killed run never
leaves a half-written entry and two runs sharing a cache at worst both compute the same entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$HF_LOGME_CACHE``, else ``$HF_HOME/hf_logme``, else ``~/.cache/huggingface/hf_logme``.

    Read at call time, so tests and users can change the environment after import.
    """
    if os.environ.get("HF_LOGME_CACHE"):
        return Path(os.environ["HF_LOGME_CACHE"])
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(hf_home) / "hf_logme"


def cache_key(parts: dict[str, Any]) -> str:
    """A stable hex digest of the key parts (JSON with sorted keys; values must be JSON-able)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _plain(parts: dict[str, Any]) -> dict[str, Any]:
    """The key parts as JSON would return them (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(parts, sort_keys=True, default=str))


class StatisticsCache:
    """Get and put cache entries (dicts of tensors, lists and plain values) by key parts.

    Args:
        root: folder for the entries; ``default_cache_dir()`` when None.
        enabled: False makes every ``get`` miss and every ``put`` a no-op (``--no-cache``).
    """

    def __init__(self, root: str | os.PathLike | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

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
        except Exception as err:  # a corrupt or foreign file is a miss, not a failure
            logger.warning("Ignoring unreadable cache entry %s (%s); it will be recomputed.", path, err)
            return None
        if entry.get("version") != CACHE_VERSION or entry.get("key") != parts:
            return None
        return entry["value"]

    def put(self, parts: dict[str, Any], value: dict[str, Any]) -> Path | None:
        """Store ``value`` atomically under these key parts; returns the path (None if disabled)."""
        if not self.enabled:
            return None
        parts = _plain(parts)
        path = self.path(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save({"version": CACHE_VERSION, "key": parts, "value": value}, file)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
