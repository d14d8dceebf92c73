"""The statistics cache: keys, atomic writes, unreadable entries, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hf_logme import LogME
from hf_logme.cache import StatisticsCache, default_cache_dir

KEY = {"model": "org/m", "revision": "abc", "dataset": "f00", "layers": "last", "max_samples": None}


def entry(value: float) -> dict:
    """A ranking entry whose Gram matrix is ``2 * value**2`` everywhere (two rows of ``value``)."""
    rows = torch.full((2, 4), value, dtype=torch.float64)
    state = LogME().update(rows, [0, 1]).statistics.state_dict()
    return {"statistics": {"last": state}, "meta": {"num_samples": 2, "extract_s": 0.1}}


def test_round_trip_and_keys(tmp_path):
    cache = StatisticsCache(tmp_path)
    assert cache.get(KEY) is None
    cache.put(KEY, entry(1.0))
    assert torch.equal(
        cache.get(KEY)["statistics"]["last"]["gram"], torch.full((4, 4), 2.0, dtype=torch.float64)
    )
    assert cache.get({**KEY, "revision": "abd"}) is None  # any part changes the key
    assert cache.get(dict(reversed(list(KEY.items())))) is not None  # order does not
    assert StatisticsCache(tmp_path, enabled=False).get(KEY) is None
    assert StatisticsCache(tmp_path, enabled=False).put(KEY, entry(2.0)) is None
    assert torch.equal(
        cache.get(KEY)["statistics"]["last"]["gram"], torch.full((4, 4), 2.0, dtype=torch.float64)
    )


def test_default_folder_follows_the_environment_at_call_time(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_LOGME_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "hf_logme"
    monkeypatch.setenv("HF_LOGME_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize(
    "hf_home", ["~/hf-home", "$HF_LOGME_TEST_ROOT/hf-home", None], ids=["tilde", "var", "xdg"]
)
def test_default_folder_sits_in_the_hf_home_huggingface_hub_resolves(
    tmp_path, monkeypatch, hf_home
):
    # The oracle: huggingface_hub's own HF_HOME, computed at import in a fresh interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_LOGME_CACHE")}
    env.update(HOME=str(tmp_path / "user"), HF_LOGME_TEST_ROOT=str(tmp_path / "root"))
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    if hf_home is not None:
        env["HF_HOME"] = hf_home
    hub_home = subprocess.run(
        [sys.executable, "-c", "from huggingface_hub import constants; print(constants.HF_HOME)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    for name in ("HF_HOME", "HF_LOGME_CACHE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HOME", "HF_LOGME_TEST_ROOT", "XDG_CACHE_HOME", "HF_HOME"):
        if name in env:
            monkeypatch.setenv(name, env[name])
    assert default_cache_dir() == Path(hub_home) / "hf_logme"
    assert str(tmp_path) in hub_home and "~" not in hub_home and "$" not in hub_home


def test_the_hf_logme_cache_variable_is_expanded_too(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_LOGME_CACHE", "~/stats")
    assert default_cache_dir() == tmp_path / "stats"


def test_an_unreadable_entry_is_a_miss_with_a_warning(tmp_path, caplog):
    cache = StatisticsCache(tmp_path)
    path = cache.put(KEY, entry(1.0))
    path.write_bytes(b"not a torch file")
    assert cache.get(KEY) is None
    assert "Ignoring unreadable cache entry" in caplog.text
    cache.put(KEY, entry(2.0))  # and is replaced by the next write
    assert cache.get(KEY)["statistics"]["last"]["gram"][0, 0] == 8.0


def _writer(root, value, rounds):
    cache = StatisticsCache(root)
    for _ in range(rounds):
        cache.put(KEY, entry(value))
        assert cache.get(KEY) is not None  # never a half-written file


def test_concurrent_writers_never_leave_a_broken_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(tmp_path, float(v), 25)) for v in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
    assert [process.exitcode for process in writers] == [0, 0, 0, 0]
    gram = StatisticsCache(tmp_path).get(KEY)["statistics"]["last"]["gram"]
    assert gram.unique().numel() == 1 and float(gram[0, 0]) in {0.0, 2.0, 8.0, 18.0}
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(
    "error",
    [
        OSError(28, "No space left on device"),
        RuntimeError("unexpected pos 576 vs 534"),
        ValueError(),
    ],
)
def test_a_failed_write_is_a_warning_and_leaves_no_temporary_file(
    tmp_path, monkeypatch, caplog, error
):
    cache = StatisticsCache(tmp_path)

    def broken_save(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "save", broken_save)
    assert cache.put(KEY, entry(1.0)) is None
    assert "Could not write the statistics cache entry" in caplog.text
    assert type(error).__name__ in caplog.text
    assert not list(tmp_path.rglob("*.tmp")) and cache.get(KEY) is None


def test_an_interrupted_write_leaves_no_temporary_file_and_is_not_swallowed(tmp_path, monkeypatch):
    def interrupted_save(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        StatisticsCache(tmp_path).put(KEY, entry(1.0))
    assert not list(tmp_path.rglob("*.tmp"))
