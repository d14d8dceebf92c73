"""The ranking app for real: ``hf-logme app`` serving on 127.0.0.1, driven by gradio_client and,
in the ``browser`` test, by headless Chromium (fill the form, click Rank, take a screenshot)."""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hub_fixtures import REVIEWS, build_text_model

import hf_logme
from hf_logme.app import find_models, parse_models
from hf_logme.cli import main

ROOT = Path(__file__).resolve().parent.parent
INTERCEPT = "LogME (with intercept, small-sample prior 2)"  # the ranking defaults


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``hf-logme app`` in a subprocess, two tiny local models and a CSV of reviews."""
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_client")
    root = tmp_path_factory.mktemp("app")
    models = [
        build_text_model(root / "tiny-a", seed=0),
        build_text_model(root / "tiny-b", seed=1, hidden_size=8),
    ]
    data = root / "reviews.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(
            [("review", "score"), *((t, "great" if y else "other") for t, y in REVIEWS)]
        )
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HOME": str(root / "hf_home"),
    }
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)  # the bars are what the page's progress follows
    log = (root / "app.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_logme.cli", "app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"hf-logme app did not start:\n{(root / 'app.log').read_text()}")
            time.sleep(0.5)
    yield {"url": url, "models": [str(m) for m in models], "data": data, "root": root}
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _expected_scores(data: Path, models: list[str]) -> dict[str, float]:
    """LogME (with intercept, prior=2.0) of each model's last-layer features, straight from the
    library functions the app does not call (extract_features, logme)."""
    from hf_logme.data import load_dataset_source

    dataset = load_dataset_source(str(data), split="train")
    scores = {}
    for model in models:
        out = hf_logme.extract_features(model, dataset, label_column="score", progress=False)
        scores[model] = hf_logme.logme(out.features, out.labels, intercept=True, prior=2.0)
    return scores


def test_rank_through_the_gradio_client(served):
    from gradio_client import Client, handle_file

    client = Client(served["url"], verbose=False)
    assert set(client.view_api(return_format="dict")["named_endpoints"]) == {"/rank", "/search"}
    models = served["models"]
    summary, table, plot, layer_plot, json_path = client.predict(
        dataset_id="",
        upload=handle_file(str(served["data"])),
        config="",
        split="train",
        text_column="",
        label_column="score",
        models="\n".join(reversed(models)),
        max_samples=1000,
        layers="last",
        intercept=True,
        api_name="/rank",
    )
    expected = _expected_scores(served["data"], models)
    order = sorted(models, key=expected.get, reverse=True)
    header, rows = table["headers"], table["data"]
    assert header[:3] == ["rank", "model", INTERCEPT]
    assert [row[1] for row in rows] == order and [row[0] for row in rows] == ["1", "2"]
    assert [float(row[2]) for row in rows] == pytest.approx([expected[m] for m in order], abs=5e-5)
    ranking = json.loads(Path(json_path).read_text())
    assert (
        ranking["method_labels"] == {"logme": INTERCEPT}
        and ranking["methods"]["logme"]["intercept"] is True
    )
    assert {row["model"]: row["score"] for row in ranking["rows"]} == pytest.approx(
        expected, rel=1e-6
    )
    assert ranking["dataset"]["num_rows"] == len(REVIEWS)
    assert INTERCEPT in summary and f"`{order[0]}`" in summary
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/")
    assert layer_plot is None  # layers="last": no per-layer scores


def test_progress_is_live(served):
    from gradio_client import Client

    client = Client(served["url"], verbose=False)
    job = client.submit(
        str(served["data"]),
        None,
        "",
        "train",
        "",
        "score",
        "\n".join(served["models"]),
        20,
        "last",
        False,
        api_name="/rank",  # 20 samples: statistics no other test cached
    )
    seen = set()
    while not job.done():
        seen |= {(p.desc, p.length) for p in job.status().progress_data or []}
        time.sleep(0.02)
    job.result()
    assert ("candidates", 2) in seen, seen  # rank_models' bar over the candidates, on the page


def test_errors_reach_the_user(served):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(served["url"], verbose=False)
    with pytest.raises(AppError, match="Candidates is empty"):
        client.predict("", None, "", "train", "", "", "  ", 100, "last", True, api_name="/rank")
    with pytest.raises(AppError, match="Dataset is empty"):
        client.predict(
            "", None, "", "train", "", "", served["models"][0], 100, "last", True, api_name="/rank"
        )


def test_parse_models():
    assert parse_models("a/b\nc/d, a/b", max_candidates=3, allow_local_paths=False) == [
        "a/b",
        "c/d",
    ]
    with pytest.raises(ValueError, match="3 candidates given; this app ranks at most 2"):
        parse_models("a b c", max_candidates=2, allow_local_paths=True)
    with pytest.raises(ValueError, match=r"must be Hub ids here; got local paths \['/models/x'\]"):
        parse_models("/models/x a/b", max_candidates=5, allow_local_paths=False)


def test_search_fills_the_candidates(hub):
    found = find_models("bert", "text", 3).splitlines()
    listed = [c.id for c in hf_logme.search_candidates(search="bert", modality="text", limit=3)]
    assert found == listed and len(found) == 3 and all("bert" in m for m in found)


def test_app_without_gradio_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert main(["app"]) == 2
    assert "pip install 'hf-logme[app]'" in capsys.readouterr().err


# --- the page in a browser ----------------------------------------------------------------------


class _DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, messages
    ending in NUL): no extra package needed."""

    def __init__(self, profile: Path) -> None:
        to_browser, self._send = os.pipe()
        self._receive, from_browser = os.pipe()
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        command = " ".join([shutil.which("chromium"), *flags])
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command} 3<&{to_browser} 4>&{from_browser}"],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._next_id, self._buffer = 0, b""
        (target,) = [
            t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"
        ]
        self.session = self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )["sessionId"]

    def call(self, method: str, session: bool = False, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._receive, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str):
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression}")
            time.sleep(0.5)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        os.close(self._send)
        os.close(self._receive)


FILL = """
(() => {
  const box = (label, value) => {
    const span = [...document.querySelectorAll('label span')]
      .find(s => s.textContent.trim() === label);
    const input = span.closest('label').querySelector('textarea, input');
    input.value = value;
    input.dispatchEvent(new Event('input', {bubbles: true}));
  };
  box('Hub dataset id', %(data)s);
  box('Label column', 'score');
  box('Model ids, one a line', %(models)s);
  document.querySelector('input[type=radio][value=best]').click();
  [...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Rank').click();
  return true;
})()
"""


@pytest.mark.browser
def test_the_page_ranks_and_shows_table_and_plots(served, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    browser = _DevTools(tmp_path / "profile")
    try:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=1280,
            height=1700,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.call("Page.navigate", session=True, url=served["url"])
        browser.wait_for(
            "[...document.querySelectorAll('button')].some(b => b.textContent.trim() === 'Rank')",
            120,
        )
        models = "\n".join(served["models"])
        browser.evaluate(
            FILL % {"data": json.dumps(str(served["data"])), "models": json.dumps(models)}
        )
        cells_js = (
            "[...document.querySelectorAll('[role=gridcell]')].map(c => c.textContent.trim())"
        )
        every_model = f"{json.dumps(served['models'])}.every(m => {cells_js}.includes(m))"
        browser.wait_for(every_model, 240)  # the ranking's rows are on the page
        browser.wait_for("document.querySelectorAll('img[src^=\"data:image\"]').length >= 2", 60)
        headers = browser.evaluate("[...document.querySelectorAll('th')].map(th => th.innerText)")
        cells = browser.evaluate(cells_js)
        shot = base64.b64decode(
            browser.call("Page.captureScreenshot", session=True, format="png")["data"]
        )
    finally:
        browser.close()
    path = tmp_path / "app.png"
    path.write_bytes(shot)
    print(f"screenshot: {path}")
    headers = [header.replace("⋮", "").strip() for header in headers]  # each has a column menu
    assert headers[:3] == ["rank", "model", INTERCEPT] and "layer" in headers  # layers=best
    rows = [cells[i : i + len(headers)] for i in range(0, len(cells), len(headers))]
    assert sorted(row[1] for row in rows) == sorted(served["models"])
    assert [row[0] for row in rows] == ["1", "2"] and all(row[-1].startswith("ok") for row in rows)
    from PIL import Image

    with Image.open(path) as image:
        assert image.size == (1280, 1700)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 100  # a drawn page, not a blank or an error text


def test_space_folder_is_a_gradio_space():
    import yaml

    space = ROOT / "space"
    _, front, card = (space / "README.md").read_text().split("---", 2)
    metadata = yaml.safe_load(front)
    assert metadata["sdk"] == "gradio" and (space / metadata["app_file"]).is_file()
    assert len(metadata["short_description"]) <= 60  # the Hub's limit
    assert "hf-logme[app" in (space / "requirements.txt").read_text()
    app = (space / metadata["app_file"]).read_text()
    assert "from hf_logme.app import build_app" in app and "allow_local_paths=False" in app
    assert "# Rank checkpoints" in card
