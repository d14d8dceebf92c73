"""extract_features on tiny checkpoints of every common architecture, saved and loaded back.

The reference for each model is computed here independently: one row at a time (batch size 1, so
no padding at all), through the model's own processor and forward, pooled by hand the way that
architecture's classification head pools. extract_features must reproduce it with length-sorted,
dynamically padded batches, in dataset order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import build, digits, food_reviews, tones

import hf_logme

TEXT_KINDS = {  # kind -> (expected auto pooling, reference pooling of the single-row outputs)
    "bert": ("pooler", lambda out, n: out.pooler_output[0]),
    "distilbert": ("cls", lambda out, n: out.last_hidden_state[0, 0]),
    "roberta": ("cls", lambda out, n: out.last_hidden_state[0, 0]),
    "gpt2": ("last", lambda out, n: out.last_hidden_state[0, n - 1]),
    "gpt2-left": ("last", lambda out, n: out.last_hidden_state[0, n - 1]),
    "t5": ("mean", lambda out, n: out.last_hidden_state[0].mean(0)),
}
IMAGE_KINDS = {
    "vit": ("cls", lambda out: out.last_hidden_state[0, 0]),
    "convnext": ("pooler", lambda out: out.pooler_output[0].flatten()),
    "resnet": ("pooler", lambda out: out.pooler_output[0].flatten()),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    kinds = [*TEXT_KINDS, *IMAGE_KINDS, "wav2vec2"]
    return {kind: build(kind, root) for kind in kinds}


@pytest.fixture(scope="module")
def reviews():
    return food_reviews(23)


def _reference_text(folder, texts, pool, max_length):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    if model.config.is_encoder_decoder:
        model = model.get_encoder()
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(pool(model(**encoded), encoded["input_ids"].shape[1]))
    return torch.stack(rows)


@pytest.mark.parametrize("kind", list(TEXT_KINDS))
def test_text_models_match_one_row_at_a_time(checkpoints, reviews, kind):
    expected_pooling, pool = TEXT_KINDS[kind]
    out = hf_logme.extract_features(
        str(checkpoints[kind]), reviews, batch_size=5, max_length=48, progress=False
    )
    assert out.pooling == expected_pooling
    assert out.features.shape == (23, 32) and out.dim == 32
    assert torch.isfinite(out.features).all()
    assert out.columns == ("review",) and out.label_column == "score"
    assert list(out.labels) == reviews["score"]
    reference = _reference_text(checkpoints[kind], reviews["review"], pool, 48)
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_texts_of_different_lengths_were_batched_together(checkpoints, reviews):
    """The equality above is only meaningful if batches really mixed lengths (padding happened)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoints["bert"])
    lengths = [
        len(tokenizer(t, truncation=True, max_length=48)["input_ids"]) for t in reviews["review"]
    ]
    ordered = sorted(lengths, reverse=True)
    assert any(len(set(ordered[i : i + 5])) > 1 for i in range(0, 23, 5))


def test_gpt2_padding_side_does_not_matter(checkpoints, reviews):
    right = hf_logme.extract_features(
        str(checkpoints["gpt2"]), reviews, batch_size=7, progress=False
    )
    left = hf_logme.extract_features(
        str(checkpoints["gpt2-left"]), reviews, batch_size=7, progress=False
    )
    torch.testing.assert_close(left.features, right.features, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", list(IMAGE_KINDS))
def test_image_models_match_one_image_at_a_time(checkpoints, kind):
    from transformers import AutoImageProcessor, AutoModel

    expected_pooling, pool = IMAGE_KINDS[kind]
    data = digits(20)
    out = hf_logme.extract_features(str(checkpoints[kind]), data, batch_size=6, progress=False)
    assert out.pooling == expected_pooling
    assert out.features.shape[0] == 20 and torch.isfinite(out.features).all()
    assert out.labels.tolist() == data["label"] and out.label_names == ["zero", "one", "two"]

    processor = AutoImageProcessor.from_pretrained(checkpoints[kind])
    model = AutoModel.from_pretrained(checkpoints[kind]).eval()
    with torch.no_grad():
        reference = torch.stack(
            [
                pool(model(**processor(image.convert("RGB"), return_tensors="pt")))
                for image in data["image"]
            ]
        )
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_image_arrays_give_the_same_features_as_pil_images(checkpoints):
    import datasets

    data = digits(12)
    arrays = datasets.Dataset.from_dict(
        {
            "pixels": [np.asarray(image) for image in data["image"]],
            "label": data["label"],
        }
    )
    from_pil = hf_logme.extract_features(str(checkpoints["vit"]), data, progress=False)
    from_arrays = hf_logme.extract_features(str(checkpoints["vit"]), arrays, progress=False)
    assert from_arrays.columns == ("pixels",)
    torch.testing.assert_close(from_arrays.features, from_pil.features)
    undecoded = data.cast_column("image", datasets.Image(decode=False))
    from_bytes = hf_logme.extract_features(str(checkpoints["vit"]), undecoded, progress=False)
    torch.testing.assert_close(from_bytes.features, from_pil.features)


def test_audio_model_matches_one_clip_at_a_time(checkpoints):
    from transformers import AutoFeatureExtractor, AutoModel

    data = tones(n=9, rate=16000)
    out = hf_logme.extract_features(
        str(checkpoints["wav2vec2"]), data, batch_size=4, progress=False
    )
    assert out.pooling == "mean" and out.features.shape == (9, 32)

    extractor = AutoFeatureExtractor.from_pretrained(checkpoints["wav2vec2"])
    model = AutoModel.from_pretrained(checkpoints["wav2vec2"]).eval()
    with torch.no_grad():
        reference = torch.stack(
            [
                model(**extractor(row["array"], sampling_rate=16000, return_tensors="pt"))
                .last_hidden_state[0]
                .mean(0)
                for row in data["audio"]
            ]
        )
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_audio_is_resampled_to_the_extractors_rate(checkpoints):
    """8 kHz clips give the features of the same tones synthesised at 16 kHz."""
    low = hf_logme.extract_features(
        str(checkpoints["wav2vec2"]), tones(n=6, rate=8000), progress=False
    )
    high = hf_logme.extract_features(
        str(checkpoints["wav2vec2"]), tones(n=6, rate=16000), progress=False
    )
    # Noise differs between the two syntheses; the tones dominate, so the features nearly agree.
    cosine = torch.nn.functional.cosine_similarity(low.features, high.features)
    assert cosine.min() > 0.99


def test_layers_all_returns_every_hidden_state_from_one_pass(checkpoints, reviews):
    from transformers import AutoModel, AutoTokenizer

    out = hf_logme.extract_features(str(checkpoints["bert"]), reviews, layers="all", progress=False)
    assert sorted(out.features) == [0, 1, 2]  # embeddings + 2 layers
    assert out.pooling == "cls"  # no per-layer pooler: the token it projects
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["bert"])
    model = AutoModel.from_pretrained(checkpoints["bert"]).eval()
    with torch.no_grad():
        states = model(
            **tokenizer(reviews["review"][0], return_tensors="pt"), output_hidden_states=True
        ).hidden_states
    for layer in range(3):
        torch.testing.assert_close(
            out.features[layer][0], states[layer][0, 0], rtol=1e-4, atol=1e-5
        )


def test_layers_all_on_a_cnn_reports_each_stage_width(checkpoints):
    out = hf_logme.extract_features(
        str(checkpoints["resnet"]), digits(8), layers="all", progress=False
    )
    assert out.pooling == "mean"
    assert out.dim == {i: t.shape[1] for i, t in out.features.items()}
    assert len(set(out.dim.values())) > 1


@pytest.mark.parametrize("pooling", ["cls", "mean", "max", "last", "pooler"])
def test_explicit_pooling_is_what_it_says(checkpoints, reviews, pooling):
    from transformers import AutoModel, AutoTokenizer

    out = hf_logme.extract_features(
        str(checkpoints["bert"]), reviews, pooling=pooling, batch_size=4, progress=False
    )
    assert out.pooling == pooling and out.pooling_reason == "requested"
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["bert"])
    model = AutoModel.from_pretrained(checkpoints["bert"]).eval()
    text = reviews["review"][3]
    with torch.no_grad():
        output = model(**tokenizer(text, truncation=True, max_length=128, return_tensors="pt"))
    tokens = output.last_hidden_state[0]
    expected = {
        "cls": tokens[0],
        "mean": tokens.mean(0),
        "max": tokens.max(0).values,
        "last": tokens[-1],
        "pooler": output.pooler_output[0],
    }[pooling]
    torch.testing.assert_close(out.features[3], expected, rtol=1e-4, atol=1e-5)


def test_loaded_model_is_reused_without_reloading(checkpoints, reviews):
    from hf_logme.features import load_model

    loaded = load_model(str(checkpoints["distilbert"]))
    first = hf_logme.extract_features(loaded, reviews, progress=False)
    second = hf_logme.extract_features(loaded, reviews.select(range(5)), progress=False)
    assert first.timings["load_s"] == 0.0
    torch.testing.assert_close(second.features, first.features[:5])


def test_sentence_pairs_are_encoded_together(checkpoints, reviews):
    """NLI-style pairs: both texts in one input, with the tokenizer's segment ids."""
    import datasets
    from transformers import AutoModel, AutoTokenizer

    texts = reviews["review"][:]
    pairs = datasets.Dataset.from_dict(
        {
            "premise": texts[:10],
            "hypothesis": texts[10:20],
            "label": [0, 1] * 5,
        }
    )
    out = hf_logme.extract_features(
        str(checkpoints["bert"]), pairs, batch_size=3, max_length=40, progress=False
    )
    assert out.columns == ("premise", "hypothesis")
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["bert"])
    model = AutoModel.from_pretrained(checkpoints["bert"]).eval()
    with torch.no_grad():
        reference = torch.stack(
            [
                model(
                    **tokenizer(a, b, truncation=True, max_length=40, return_tensors="pt")
                ).pooler_output[0]
                for a, b in zip(texts[:10], texts[10:20])
            ]
        )
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_audio_feature_columns_and_bare_arrays_give_the_same_features(checkpoints):
    """WAV files in a datasets Audio column (decoded here when torchcodec is absent), and bare
    arrays with sampling_rate=, both reproduce the {'array', 'sampling_rate'} features."""
    import io
    import wave

    import datasets

    data = tones(n=6, rate=16000)
    reference = hf_logme.extract_features(str(checkpoints["wav2vec2"]), data, progress=False)

    def wav_bytes(array):
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(16000)
            writer.writeframes((np.asarray(array) * 32767).astype("<i2").tobytes())
        return buffer.getvalue()

    files = datasets.Dataset.from_dict(
        {
            "audio": [{"bytes": wav_bytes(row["array"]), "path": None} for row in data["audio"]],
            "label": data["label"],
        }
    ).cast_column("audio", datasets.Audio())
    from_files = hf_logme.extract_features(str(checkpoints["wav2vec2"]), files, progress=False)
    torch.testing.assert_close(from_files.features, reference.features, rtol=1e-3, atol=1e-3)

    bare = datasets.Dataset.from_dict(
        {
            "wave": [row["array"] for row in data["audio"]],
            "label": data["label"],
        }
    )
    from_arrays = hf_logme.extract_features(
        str(checkpoints["wav2vec2"]), bare, sampling_rate=16000, progress=False
    )
    torch.testing.assert_close(from_arrays.features, reference.features)
    with pytest.raises(ValueError, match="bare arrays: pass sampling_rate="):
        hf_logme.extract_features(str(checkpoints["wav2vec2"]), bare, progress=False)
