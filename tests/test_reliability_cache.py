"""The statistics cache under faults: unwritable, corrupt-but-loadable entries, changed folders."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid

import pytest
import torch
from hub_fixtures import build_text_model

import hf_logme
from hf_logme.cache import (
    StatisticsCache,
    check_entry,
    local_model_fingerprint,
    model_key,
    normalize_model_name,
)
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.ranking import rank_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "one": build_text_model(root / "one", seed=1),
        "two": build_text_model(root / "two", seed=2, hidden_size=32),
    }


def one_shot(model, dataset):
    out = hf_logme.extract_features(str(model), dataset, progress=False)
    return hf_logme.logme(out.features, out.labels, intercept=True, prior=RANKING_PRIOR)


def test_an_unwritable_cache_costs_a_warning_not_the_ranking(reviews, models, tmp_path, caplog):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "statistics").write_text("a file where the entries' folder should be")
    ranking = rank_models([str(models["one"])], reviews, cache_dir=cache_dir, progress=False)
    assert ranking.rows[0].status == "ok"
    assert ranking.rows[0].score == pytest.approx(one_shot(models["one"], reviews), rel=1e-9)
    assert "Could not write the statistics cache entry" in caplog.text


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_filesystem_costs_a_warning_not_the_ranking(reviews, models, tiny_tmpfs, caplog):
    # torch.save raises RuntimeError (not OSError) on ENOSPC. Fill the disk, leaving a few KiB.
    filler, size = tiny_tmpfs / "filler", 0
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                size += file.write(b"x" * 1024)
        except OSError:
            pass
    os.truncate(filler, max(0, size - 4096))
    names = [str(models["one"]), str(models["two"])]
    ranking = rank_models(names, reviews, cache_dir=tiny_tmpfs, progress=False)
    assert [row.status for row in ranking.rows] == ["ok", "ok"]
    assert "Could not write the statistics cache entry" in caplog.text
    assert not list(tiny_tmpfs.rglob("*.tmp"))  # the failed write left nothing behind


def _stored_entry(cache_dir):
    (path,) = (cache_dir / "statistics").glob("*.pt")
    return path, torch.load(path, weights_only=True)


@pytest.mark.parametrize(
    "corrupt, reason",
    [
        (lambda state: state["gram"].fill_(float("nan")), "non-finite gram"),
        (lambda state: state.update(gram=state["gram"][:-1]), "gram"),
        (lambda state: state.pop("cross"), "missing one of"),
        (lambda state: state.update(n=state["n"] + 5), "class counts add up to"),
        (lambda state: state.update(classes=state["classes"][:1]), "class rows but classes"),
    ],
)
def test_a_loadable_but_wrong_entry_is_recomputed_and_overwritten(
    reviews, models, tmp_path, caplog, corrupt, reason
):
    name = str(models["one"])
    first = rank_models([name], reviews, cache_dir=tmp_path, progress=False).rows[0]
    path, stored = _stored_entry(tmp_path)
    corrupt(stored["value"]["statistics"]["last"]["gram"])
    torch.save(stored, path)
    caplog.set_level(logging.WARNING)
    again = rank_models([name], reviews, cache_dir=tmp_path, progress=False).rows[0]
    assert "Ignoring invalid cache entry" in caplog.text and reason in caplog.text
    assert (again.status, again.cached) == ("ok", False)
    assert again.score == pytest.approx(first.score, rel=1e-12)
    third = rank_models([name], reviews, cache_dir=tmp_path, progress=False).rows[0]
    assert third.cached and third.score == pytest.approx(first.score, rel=1e-12)  # overwritten


def test_check_entry_accepts_what_a_ranking_writes(reviews, models, tmp_path):
    rank_models([str(models["two"])], reviews, cache_dir=tmp_path, progress=False)
    _, stored = _stored_entry(tmp_path)
    assert check_entry(stored["value"]) is None
    assert check_entry({"statistics": {}, "meta": {"num_samples": 1, "extract_s": 0.0}})
    assert check_entry(None) == "no statistics"


def test_replacing_a_local_folders_contents_invalidates_its_cache_entry(reviews, models, tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(models["one"], folder)
    first = rank_models([str(folder)], reviews, cache_dir=tmp_path / "c", progress=False).rows[0]
    shutil.rmtree(folder)
    shutil.copytree(models["two"], folder)  # same path, another model
    second = rank_models([str(folder)], reviews, cache_dir=tmp_path / "c", progress=False).rows[0]
    assert second.cached is False and second.dim == 32 and first.dim == 16
    assert second.score == pytest.approx(one_shot(models["two"], reviews), rel=1e-9)
    moved = tmp_path / "moved"
    folder.rename(moved)  # the same content elsewhere is the same model
    third = rank_models([str(moved)], reviews, cache_dir=tmp_path / "c", progress=False).rows[0]
    assert third.cached and third.score == second.score


def test_the_fingerprint_follows_content(models, tmp_path, monkeypatch):
    folder = tmp_path / "m"
    shutil.copytree(models["one"], folder)
    base = local_model_fingerprint(folder)
    config = folder / "config.json"
    config.write_text(config.read_text().replace("{", '{"note": 1, ', 1))
    edited = local_model_fingerprint(folder)
    assert edited != base
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of a small weights file: hashed whole
    weights.write_bytes(bytes(data))
    assert local_model_fingerprint(folder) != edited
    (folder / ".cache").mkdir()
    (folder / ".cache" / uuid.uuid4().hex).write_text("hidden")  # hidden files do not count
    assert local_model_fingerprint(folder) == local_model_fingerprint(folder.rename(tmp_path / "n"))
    # Large files (weights) count by size and modification time, not by their bytes.
    monkeypatch.setattr("hf_logme.cache._HASH_WHOLE_BYTES", 0)
    before = local_model_fingerprint(tmp_path / "n")
    weights = tmp_path / "n" / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert local_model_fingerprint(tmp_path / "n") != before
    assert model_key("org/name", local=False) == "org/name"
    assert model_key(tmp_path / "n", local=True).startswith("local:")


def test_one_folder_named_two_ways_is_one_candidate(models, reviews, monkeypatch):
    monkeypatch.chdir(models["one"].parent)
    assert normalize_model_name("one/") == normalize_model_name("./one") == "one"
    assert normalize_model_name("org/model/") == "org/model/"  # not a folder: left as given
    with pytest.raises(ValueError, match=r"models lists 'one' twice \(as 'one' and 'one/'\)"):
        rank_models(["one", "one/"], reviews, progress=False)
    with pytest.raises(ValueError, match=r"twice \(as './one' and '/.*/one'\); drop one"):
        rank_models(["./one", str(models["one"])], reviews, progress=False)


def test_a_cache_without_validation_trusts_entries(tmp_path):
    cache = StatisticsCache(tmp_path, validate=None)
    cache.put({"k": 1}, {"anything": 1})
    assert cache.get({"k": 1}) == {"anything": 1}
    assert StatisticsCache(tmp_path).get({"k": 1}) is None  # the default validates
