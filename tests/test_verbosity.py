"""quiet_libraries: the HF libraries' own logs and bars off in a block, every setting restored."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hub_fixtures import build_text_model

from hf_logme.verbosity import quiet_libraries

ROOT = Path(__file__).resolve().parent.parent


def _state() -> dict:
    from datasets.utils import logging as ds_logging
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as tf_logging

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")
    ds_tqdm = importlib.import_module("datasets.utils.tqdm")
    return {
        "hub verbosity": hub_logging.get_verbosity(),
        "hub bars": dict(hub_tqdm.progress_bar_states),
        "hub download bars off": hub_tqdm.are_progress_bars_disabled("huggingface_hub.http_get"),
        "hf-logme bars off": hub_tqdm.are_progress_bars_disabled(),
        "transformers verbosity": tf_logging.get_verbosity(),
        "transformers bars": tf_logging.is_progress_bar_enabled(),
        "datasets verbosity": ds_logging.get_verbosity(),
        "datasets bars off": ds_tqdm.are_progress_bars_disabled(),
    }


@pytest.fixture
def loud(monkeypatch):
    """Every library at WARNING with its bars on (the session turns hub bars off by env)."""
    from datasets.utils import logging as ds_logging
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as tf_logging

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")
    ds_tqdm = importlib.import_module("datasets.utils.tqdm")
    monkeypatch.setattr(hub_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", None)
    monkeypatch.setattr(hub_tqdm, "progress_bar_states", {})
    monkeypatch.setattr(ds_tqdm, "HF_DATASETS_DISABLE_PROGRESS_BARS", None)
    monkeypatch.setattr(ds_tqdm, "_hf_datasets_progress_bars_disabled", False)
    before = _state()
    for module in (hub_logging, tf_logging, ds_logging):
        module.set_verbosity(logging.WARNING)
    tf_logging.enable_progress_bar()
    yield
    hub_logging.set_verbosity(before["hub verbosity"])
    tf_logging.set_verbosity(before["transformers verbosity"])
    ds_logging.set_verbosity(before["datasets verbosity"])
    (
        tf_logging.enable_progress_bar
        if before["transformers bars"]
        else tf_logging.disable_progress_bar
    )()


def test_silences_inside_and_restores_after(loud):
    before = _state()
    assert not before["hub download bars off"] and before["transformers bars"]
    with quiet_libraries(enabled=True):
        inside = _state()
    assert inside == {
        "hub verbosity": logging.ERROR,
        "hub bars": {**before["hub bars"], "huggingface_hub": False},
        "hub download bars off": True,
        "hf-logme bars off": False,  # hf-logme's own bars (no group name) still show
        "transformers verbosity": logging.ERROR,
        "transformers bars": False,
        "datasets verbosity": logging.ERROR,
        "datasets bars off": True,
    }
    assert _state() == before


def test_restores_after_an_exception_and_when_nested(loud):
    before = _state()
    with (
        pytest.raises(RuntimeError, match="boom"),
        quiet_libraries(enabled=True),
        quiet_libraries(enabled=True),  # nested: the inner one finds the quiet state
    ):
        raise RuntimeError("boom")
    assert _state() == before


def test_leaves_stricter_settings_alone(loud):
    from transformers.utils import logging as tf_logging

    tf_logging.set_verbosity(logging.CRITICAL)
    with quiet_libraries(enabled=True):
        assert tf_logging.get_verbosity() == logging.CRITICAL
    assert tf_logging.get_verbosity() == logging.CRITICAL


def test_default_follows_the_hf_logme_logger(loud, monkeypatch):
    from transformers.utils import logging as tf_logging

    package = logging.getLogger("hf_logme")
    monkeypatch.setattr(package, "level", logging.WARNING)
    with quiet_libraries():
        assert tf_logging.get_verbosity() == logging.ERROR
    monkeypatch.setattr(package, "level", logging.INFO)  # hf-logme -v: the libraries speak too
    with quiet_libraries():
        assert tf_logging.get_verbosity() == logging.WARNING
    with quiet_libraries(enabled=False):
        assert tf_logging.get_verbosity() == logging.WARNING


def test_enabled_must_be_a_bool():
    with (
        pytest.raises(TypeError, match="enabled must be True, False or None; got 'yes'"),
        quiet_libraries(enabled="yes"),
    ):
        pass


def test_loading_a_model_prints_no_bar_and_no_load_report(tmp_path):
    """In a fresh interpreter (transformers keeps the stderr it first saw): loading a checkpoint
    whose classifier head is new prints the "Loading weights" bar and the LOAD REPORT, except
    inside quiet_libraries."""
    model = build_text_model(tmp_path / "tiny-bert")
    script = f"""
        import sys
        from transformers import BertForSequenceClassification
        from transformers.utils import logging as tf_logging
        from hf_logme.verbosity import quiet_libraries

        tf_logging.enable_progress_bar()
        BertForSequenceClassification.from_pretrained({str(model)!r})
        print("=== quiet ===", file=sys.stderr, flush=True)
        with quiet_libraries():
            BertForSequenceClassification.from_pretrained({str(model)!r})
        print("=== after ===", file=sys.stderr, flush=True)
        BertForSequenceClassification.from_pretrained({str(model)!r})
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    loud_, rest = result.stderr.split("=== quiet ===")
    quiet, after = rest.split("=== after ===")
    for text in (loud_, after):
        assert "Loading weights" in text and "LOAD REPORT" in text and "classifier" in text
    assert "Loading weights" not in quiet and "LOAD REPORT" not in quiet
    assert quiet.strip() == ""


def test_a_ranking_silences_transformers_and_restores_it(reviews, tmp_path, capsys):
    """rank_models runs its candidates inside quiet_libraries: no transformers warnings or
    bars of its own while it loads models, and the caller's verbosity is back afterwards."""
    import transformers
    from hub_fixtures import build_text_model

    from hf_logme import rank_models

    transformers.logging.set_verbosity_info()
    try:
        model = build_text_model(tmp_path / "tiny")
        ranking = rank_models([model], reviews, cache=False, progress=False)
        assert ranking.rows[0].status == "ok"
        assert transformers.logging.get_verbosity() == transformers.logging.INFO
        assert "Loading weights" not in capsys.readouterr().err
    finally:
        transformers.logging.set_verbosity_warning()
