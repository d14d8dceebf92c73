"""Fixtures for tests that talk to the local Hub (``tests/hub_server.py``), loaded by conftest.

How it is wired (see conftest.py): ``SERVER`` below binds 127.0.0.1 on a free port when this module
is imported, and conftest exports that address as ``HF_ENDPOINT`` before anything imports
huggingface_hub, transformers or datasets, which read it once at import. Every test runs offline
(``HF_HUB_OFFLINE=1``) and a socket guard refuses connections to anything but loopback. A test
that takes the ``hub`` fixture is online, for itself only, against the local Hub.

Fixtures:
    hub_server (session): the running ``HubServer``, holding the catalogue below.
    hub: the same server for one test: online mode, an empty Hub cache of its own, request log and
        failure switches reset, repos added or changed by the test removed afterwards, and a
        failure if the server itself raised.
    hub_env: environment for a subprocess (``python -m hf_logme.cli ...``) that talks to ``hub``.
    hub_token: a token the server accepts (writes, and gated repos that granted its user).

Example:
    def test_a_failed_download_leaves_nothing(hub):
        hub.fail("/broken/flaky/resolve/*/model.safetensors", status=500)
        with pytest.raises(HfHubHTTPError):
            huggingface_hub.snapshot_download("broken/flaky")
        # files served (GET 200/206)
        assert "model.safetensors" not in hub.downloads("broken/flaky")
        assert hub.count("/broken/flaky/resolve/*/model.safetensors", method="GET") == 1

    def test_cli(hub_env):
        result = subprocess.run([sys.executable, "-m", "hf_logme.cli", "search", "--json"],
                                env=hub_env, capture_output=True, text=True)
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_server import HubServer

SERVER = HubServer()
HUB_TOKEN = "hf_test_token"  # one of SERVER.tokens, user "tester"

# --- no test reaches the network --------------------------------------------------------------
_REFUSED: list[str] = []


def install_network_guard() -> None:
    """Make sockets refuse (loudly, and on record) connections to anything but loopback."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            try:
                local = ipaddress.ip_address(host.split("%")[0]).is_loopback
            except ValueError:
                local = host == "localhost"
            if not local:
                _REFUSED.append(f"{host}:{address[1]}")
                raise RuntimeError(
                    f"Tests must not use the network; refused a connection to {host}:{address[1]}."
                )
        return original(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_network_attempts() -> Iterator[None]:
    """Fail a test that tried to reach the network, even if the error was swallowed."""
    before = len(_REFUSED)
    yield
    assert _REFUSED[before:] == [], f"the test tried to reach the network: {_REFUSED[before:]}"


# --- tiny checkpoints ---------------------------------------------------------------------------
#: A character-level WordPiece vocabulary: any lowercase English text tokenises without [UNK].
TEXT_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list(string.ascii_lowercase + string.digits)
    + list(string.punctuation)
    + [f"##{c}" for c in string.ascii_lowercase + string.digits]
)


def build_text_model(
    folder: Path,
    *,
    hidden_size: int = 16,
    num_layers: int = 1,
    seed: int = 0,
    head: str | None = None,
    tokenizer: bool = True,
    **save_options: Any,
) -> Path:
    """Save a tiny random BERT (``head="sequence-classification"`` for a classifier) and its
    tokenizer to ``folder`` with ``save_pretrained``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(TEXT_VOCAB),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    model_class = BertForSequenceClassification if head == "sequence-classification" else BertModel
    model_class(config).save_pretrained(folder, **save_options)
    if tokenizer:
        BertTokenizer(vocab={token: i for i, token in enumerate(TEXT_VOCAB)}).save_pretrained(
            folder
        )
    return folder


def build_vision_model(folder: Path, *, hidden_size: int = 16, seed: int = 0) -> Path:
    """Save a tiny random ViT (16x16 images, 8x8 patches) and a ViT preprocessor config."""
    import torch
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(seed)
    ViTModel(
        ViTConfig(
            image_size=16,
            patch_size=8,
            hidden_size=hidden_size,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=2 * hidden_size,
        )
    ).save_pretrained(folder)
    preprocessor = {
        "image_processor_type": "ViTImageProcessor",
        "do_resize": True,
        "size": {"height": 16, "width": 16},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    return folder


def build_audio_model(folder: Path, *, hidden_size: int = 16, seed: int = 0) -> Path:
    """Save a tiny random wav2vec2 encoder and its feature extractor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    Wav2Vec2Model(
        Wav2Vec2Config(
            hidden_size=hidden_size,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=2 * hidden_size,
            conv_dim=(8, 8),
            conv_stride=(5, 4),
            conv_kernel=(10, 8),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            vocab_size=8,
        )
    ).save_pretrained(folder)
    Wav2Vec2FeatureExtractor().save_pretrained(folder)
    return folder


# --- the catalogue every Hub test sees --------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
    """A catalogue repo: how to build its files and the metadata the Hub reports for it."""

    repo_id: str
    build: str  # "text", "classifier", "vision", "audio", "pickle", "remote-code", "unknown-arch",
    #             "every-format", "sharded", "timm", "reviews" (a dataset)
    metadata: dict[str, Any]
    hidden_size: int = 16
    num_layers: int = 1
    repo_type: str = "model"


def _text(
    pipeline: str,
    downloads: int,
    likes: int,
    license: str = "apache-2.0",
    language: str = "en",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "pipeline_tag": pipeline,
        "downloads": downloads,
        "likes": likes,
        "license": license,
        "languages": (language,),
        **extra,
    }


CATALOG: tuple[Entry, ...] = (
    # Loadable text encoders, by downloads: acme/bert-tiny, acme/bert-small, zeta/sentence-tiny, ...
    Entry("acme/bert-tiny", "text", _text("fill-mask", 5000, 50)),
    Entry(
        "acme/bert-small",
        "text",
        _text("feature-extraction", 3000, 80, "mit"),
        hidden_size=32,
        num_layers=2,
    ),
    Entry("zeta/sentence-tiny", "text", _text("sentence-similarity", 2500, 20), hidden_size=24),
    Entry("zeta/minibert-fr", "text", _text("fill-mask", 1000, 5, "mit", "fr")),
    Entry("acme/bert-sst2-tiny", "classifier", _text("text-classification", 800, 3)),
    Entry("acme/bert-every-format", "every-format", _text("fill-mask", 300, 2)),
    Entry("acme/bert-sharded", "sharded", _text("fill-mask", 250, 2), hidden_size=32),
    Entry("acme/bert-medium", "text", _text("fill-mask", 200, 1), hidden_size=64, num_layers=2),
    # Text repos a ranking must skip, each for its own reason (listed high on downloads).
    Entry("broken/gated", "text", _text("fill-mask", 6000, 60, gated="manual")),
    Entry("broken/remote-code", "remote-code", _text("fill-mask", 4500, 40)),
    Entry("broken/pickle-only", "pickle", _text("fill-mask", 4000, 30)),
    Entry("broken/unknown-arch", "unknown-arch", _text("fill-mask", 3500, 10)),
    Entry("broken/flaky", "text", _text("fill-mask", 100, 0)),  # tests arm failures on it
    # Vision and audio.
    Entry(
        "acme/vit-tiny",
        "vision",
        {
            "pipeline_tag": "image-classification",
            "downloads": 900,
            "likes": 9,
            "license": "apache-2.0",
        },
    ),
    Entry(
        "zeta/vit-features",
        "vision",
        {
            "pipeline_tag": "image-feature-extraction",
            "downloads": 700,
            "likes": 7,
            "license": "mit",
        },
        hidden_size=24,
    ),
    Entry(
        "other/timm-net",
        "timm",
        {
            "pipeline_tag": "image-classification",
            "downloads": 8000,
            "likes": 90,
            "library_name": "timm",
            "license": "apache-2.0",
        },
    ),
    Entry(
        "acme/wav2vec2-tiny",
        "audio",
        {
            "pipeline_tag": "audio-classification",
            "downloads": 600,
            "likes": 6,
            "license": "apache-2.0",
        },
    ),
    # A dataset for `load_dataset("acme/tiny-reviews")`: train/test CSV splits, columns text, label.
    Entry(
        "acme/tiny-reviews",
        "reviews",
        {"downloads": 50, "likes": 1, "license": "cc0-1.0"},
        repo_type="dataset",
    ),
)

#: Rows of acme/tiny-reviews: (text, label), label 1 for positive.
REVIEWS = [
    (f"{adjective} {dish}, {verdict}", int(adjective in ("great", "tasty", "lovely")))
    for adjective in ("great", "tasty", "lovely", "bland", "cold", "awful")
    for dish, verdict in (
        ("pasta", "would come back"),
        ("soup", "says it all"),
        ("pie", "no more to say"),
        ("salad", "see for yourself"),
    )
]


def reviews_dataset():
    """``REVIEWS`` as an in-memory ``datasets.Dataset``: columns text, label (1 for positive)."""
    import datasets

    return datasets.Dataset.from_dict(
        {"text": [t for t, _ in REVIEWS], "label": [y for _, y in REVIEWS]}
    )


@pytest.fixture(scope="module")
def reviews():
    """``reviews_dataset()`` (modules may define their own ``reviews`` with other data)."""
    return reviews_dataset()


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    """``REVIEWS`` as a CSV file: columns review, score ("great" or "other")."""
    import csv

    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(
            [("review", "score"), *((t, "great" if y else "other") for t, y in REVIEWS)]
        )
    return path


def build_entry(entry: Entry, folder: Path) -> Path:
    """Write the files of a catalogue entry to ``folder``."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    seed = sum(map(ord, entry.repo_id))
    size = {"hidden_size": entry.hidden_size, "seed": seed}
    if entry.build in (
        "text",
        "classifier",
        "every-format",
        "remote-code",
        "unknown-arch",
        "pickle",
        "sharded",
    ):
        build_text_model(
            folder,
            num_layers=entry.num_layers,
            head="sequence-classification" if entry.build == "classifier" else None,
            **({"max_shard_size": "20KB"} if entry.build == "sharded" else {}),
            **size,
        )
    elif entry.build == "vision":
        build_vision_model(folder, **size)
    elif entry.build == "audio":
        build_audio_model(folder, **size)
    elif entry.build == "reviews":
        import csv

        (folder / "data").mkdir(exist_ok=True)
        for split, rows in (
            ("train", [r for i, r in enumerate(REVIEWS) if i % 4 != 3]),
            ("test", REVIEWS[3::4]),
        ):
            with open(folder / "data" / f"{split}.csv", "w", newline="") as f:
                csv.writer(f).writerows([("text", "label"), *rows])
    elif entry.build == "timm":  # a timm checkpoint: safetensors, no transformers config
        torch.manual_seed(seed)
        save_file({"fc.weight": torch.randn(4, 8)}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(
            json.dumps({"architecture": "resnet18", "num_classes": 4})
        )

    if entry.build == "pickle":  # the same weights, only as a pickle
        from safetensors.torch import load_file

        torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    elif entry.build in ("remote-code", "unknown-arch"):
        config = json.loads((folder / "config.json").read_text())
        config["model_type"] = (
            "fancy-bert" if entry.build == "remote-code" else "not-in-transformers"
        )
        config["architectures"] = ["FancyBertModel"]
        if entry.build == "remote-code":
            config["auto_map"] = {
                "AutoConfig": "configuration_fancy.FancyBertConfig",
                "AutoModel": "modeling_fancy.FancyBertModel",
            }
            (folder / "modeling_fancy.py").write_text(
                "raise RuntimeError('remote code must not run in tests')\n"
            )
            (folder / "configuration_fancy.py").write_text(
                "raise RuntimeError('remote code must not run')\n"
            )
        (folder / "config.json").write_text(json.dumps(config, indent=2))
    elif entry.build == "every-format":  # what a popular repo carries besides safetensors
        from safetensors.torch import load_file

        torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
        for name in ("tf_model.h5", "flax_model.msgpack", "onnx/model.onnx", "rust_model.ot"):
            (folder / name).parent.mkdir(exist_ok=True)
            (folder / name).write_bytes(b"not loaded by transformers " + name.encode())
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling/config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / "README.md").write_text(
        f"---\nlicense: {entry.metadata.get('license')}\n---\n# {entry.repo_id}\n"
    )
    return folder


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """The local Hub, serving ``CATALOG`` (built once per session)."""
    root = tmp_path_factory.mktemp("hub-catalog")
    for entry in CATALOG:
        SERVER.add_repo(
            entry.repo_id,
            build_entry(entry, root / entry.repo_id.replace("/", "--")),
            repo_type=entry.repo_type,
            **entry.metadata,
        )
    SERVER.start()
    yield SERVER
    SERVER.stop()


@pytest.fixture
def hub(
    hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubServer]:
    """The local Hub for one test, with online mode and a fresh Hub cache for that test."""
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "0")  # for anything imported or started from here on
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # what is_offline_mode() returns
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")
    saved = hub_server.snapshot()
    hub_server.reset()
    yield hub_server
    errors = list(hub_server.errors)
    hub_server.restore(saved)
    hub_server.reset()
    assert not errors, "the test Hub raised:\n" + "\n".join(errors)


@pytest.fixture
def hub_env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess talking to the local Hub, with its own HF_HOME."""
    env = dict(os.environ)
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_OFFLINE="0",
        TRANSFORMERS_OFFLINE="0",
        HF_DATASETS_OFFLINE="0",
    )
    for name in ("HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_TOKEN"):
        env.pop(name, None)
    return env


@pytest.fixture
def hub_token(hub: HubServer) -> str:
    """A token the local Hub accepts (user ``tester``)."""
    return HUB_TOKEN
