"""Token classification (NER, POS, chunking): one feature vector and one label per word.

A token-classification dataset has a column of words (``tokens``: a list of strings per sentence)
and an aligned column of tags (a ``Sequence(ClassLabel)``, one tag per word), as conll2003 does.
A tagging head reads one vector per word, so that is what is scored: the row count is words, not
sentences. Sentences are tokenised once with ``is_split_into_words=True``; the fast tokenizer's
``word_ids()`` says which sub-tokens belong to which word, and each word's vector is its first
sub-token (what ``run_ner`` labels, the default) or the mean of its sub-tokens. Special tokens and
padding belong to no word and are never scored. Words cut off by ``max_length`` (even in part),
words the tokenizer maps to nothing, and tags below 0 (the ``-100`` convention) are left out and
counted.

Features stream batch by batch into ``on_batch(features, labels)``, as for sentence-level tasks,
so LogME's statistics stay O(D^2) however many words the corpus has.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from huggingface_hub.utils import tqdm

from ..errors import NonFiniteFeaturesError, UnsupportedModelError
from .columns import check_column, describe, resolve_split
from .extract import ExtractedFeatures
from .forward import is_out_of_memory
from .loading import LoadedModel, inspect_checkpoint, load_model
from .options import check_choice, check_positive_int, resolve_device, resolve_dtype
from .sampling import subsample

logger = logging.getLogger(__name__)

TOKEN_TASK = "token-classification"
WORD_POOLINGS = ("first", "mean")
_WORDS_NAMES = ("tokens", "words")
_AUTO_BATCH = {"cpu": 32, "accelerator": 256}  # sentences per forward pass
_TOKENIZE_CHUNK = 2048


def token_columns(dataset: Any, label_column: str, tokens_column: str | None = None) -> str | None:
    """The words column a tags column is aligned with, or None if ``label_column`` holds no tags.

    A tags column is a list feature (of ``ClassLabel``, ints or strings) whose length equals, in
    every row, that of a column of string lists. Among several such columns, ``tokens`` or
    ``words`` is chosen.

    Args:
        dataset: a ``datasets.Dataset``.
        label_column: the label column (already found).
        tokens_column: the words column, if the caller named it (then it must be aligned).

    Raises:
        ValueError: ``tokens_column`` is not a column, not a list of strings, or not aligned with
            the tags; or several columns qualify and none is called tokens/words.
    """
    check_column(dataset, "tokens_column", tokens_column)
    if _list_inner(dataset.features[label_column]) is None:
        if tokens_column is not None:
            raise ValueError(
                f"tokens_column={tokens_column!r} was given, but the label column "
                f"{label_column!r} holds {dataset.features[label_column]}, not one tag per word; "
                f"pass the tags column as label_column=."
            )
        return None
    names = [tokens_column] if tokens_column is not None else list(dataset.column_names)
    aligned = [
        name
        for name in names
        if name != label_column
        and _is_string_list(dataset.features[name])
        and _same_lengths(dataset, name, label_column)
    ]
    if tokens_column is not None and not aligned:
        raise ValueError(
            f"tokens_column={tokens_column!r} must be a list of strings with one entry per tag "
            f"of {label_column!r} in every row; columns: {describe(dataset)}."
        )
    if len(aligned) > 1:
        named = [name for name in aligned if name.lower() in _WORDS_NAMES]
        if len(named) != 1:
            raise ValueError(
                f"several word columns are aligned with the tags {label_column!r}: {aligned}; "
                f"pass tokens_column= (text_column= in rank_models)."
            )
        aligned = named
    if aligned:
        logger.info("Token classification: words %r, tags %r.", aligned[0], label_column)
    return aligned[0] if aligned else None


def is_token_task(
    dataset: Any, label_column: str, task: str, tokens_column: str | None = None
) -> bool:
    """Whether ``task`` is, or ``task="auto"`` resolves to, token classification.

    Auto-detection needs a tags column aligned with a words column (:func:`token_columns`); a
    ``tokens_column`` that is not a list of strings (the text column of a multi-label dataset)
    means the task is not token classification.
    """
    if task == TOKEN_TASK:
        return True
    if task != "auto" or _list_inner(dataset.features[label_column]) is None:
        return False
    if tokens_column is not None and not (
        tokens_column in dataset.column_names and _is_string_list(dataset.features[tokens_column])
    ):
        return False
    return token_columns(dataset, label_column, tokens_column) is not None


def _list_inner(feature: Any) -> Any:
    import datasets

    if isinstance(feature, (datasets.List, datasets.LargeList)):
        return feature.feature
    return None


def _is_string_list(feature: Any) -> bool:
    inner = _list_inner(feature)
    return getattr(inner, "dtype", None) in ("string", "large_string")


def _same_lengths(dataset: Any, first: str, second: str) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = dataset.select_columns([first, second]).with_format("arrow")[:]
    lengths = []
    for name in (first, second):
        array = table[name]
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        lengths.append(pc.list_value_length(array).fill_null(-1).to_numpy(zero_copy_only=False))
    return bool(np.array_equal(lengths[0], lengths[1]))


class WordSource:
    """Sentences tokenised once, with the word each sub-token feeds; padded per batch.

    Attributes:
        lengths: (S,) sub-tokens per sentence (special tokens included), for length sorting.
        word_counts: (S,) words scored per sentence.
        labels: (W,) the tag of every scored word, sentence after sentence, in word order.
        word_rows: (S + 1,) offsets of each sentence's words in ``labels``.
        dropped: words left out (truncated, without sub-tokens, or with a negative tag).
    """

    def __init__(
        self,
        words: list[list[str]],
        tags: list[list[Any]],
        tokenizer: Any,
        *,
        word_pooling: str,
        max_length: int | None,
        forward_args: frozenset[str],
    ) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"token classification needs a fast tokenizer (for word_ids()); "
                f"{type(tokenizer).__name__} is not one."
            )
        self._pad_id = next(
            (v for v in (tokenizer.pad_token_id, tokenizer.eos_token_id) if isinstance(v, int)),
            0,
        )
        flat: dict[str, list[np.ndarray]] = {}
        slots, lengths, counts, labels = [], [], [], []
        self.dropped = 0
        for start in range(0, len(words), _TOKENIZE_CHUNK):
            chunk = words[start : start + _TOKENIZE_CHUNK]
            encoded = _encode(tokenizer, chunk, max_length)
            for i, ids in enumerate(encoded["input_ids"]):
                word_ids = np.array(
                    [-1 if w is None else w for w in encoded.word_ids(i)], dtype=np.int64
                )
                sentence_tags = tags[start + i]
                scored = np.zeros(len(sentence_tags) + 1, dtype=bool)  # last: "no word"
                scored[np.unique(word_ids[word_ids >= 0])] = True
                if max_length is not None and len(ids) >= max_length:
                    scored[:-1] &= _complete(tokenizer, chunk[i], word_ids)
                scored[:-1] &= np.array([_labelled(t) for t in sentence_tags], dtype=bool)
                self.dropped += len(sentence_tags) - int(scored[:-1].sum())
                slot_of_word = np.cumsum(scored) - 1  # the word's rank among scored words
                slot = np.where(scored[word_ids], slot_of_word[word_ids], -1)
                if word_pooling == "first":  # only the sub-token that starts a word
                    starts = np.ones(len(word_ids), dtype=bool)
                    starts[1:] = word_ids[1:] != word_ids[:-1]
                    slot = np.where(starts, slot, -1)
                slots.append(slot.astype(np.int32))
                lengths.append(len(ids))
                counts.append(int(scored[:-1].sum()))
                labels.extend(t for t, keep in zip(sentence_tags, scored[:-1]) if keep)
            for key, values in encoded.items():
                if key != "attention_mask" and (not forward_args or key in forward_args):
                    flat.setdefault(key, []).append(
                        np.fromiter(itertools.chain.from_iterable(values), np.int32)
                    )
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.word_counts = np.asarray(counts, dtype=np.int64)
        self.labels = np.asarray(labels)
        self.word_rows = np.concatenate([[0], np.cumsum(self.word_counts)]).astype(np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self._flat = {key: np.concatenate(parts) for key, parts in flat.items()}
        self._slots = np.concatenate(slots) if slots else np.zeros(0, np.int32)
        self._with_mask = not forward_args or "attention_mask" in forward_args

    def batch(self, positions: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor, int]:
        """Model inputs for these sentences, the (B, T) word slot of every position (-1: none,
        else the word's row among this batch's words, in sentence then word order), and the
        number of words in the batch."""
        lengths = self.lengths[positions]
        width = int(lengths.max())
        inputs: dict[str, torch.Tensor] = {}
        for key, flat in self._flat.items():
            array = np.full((len(positions), width), self._pad_id if key == "input_ids" else 0)
            for row, (pos, length) in enumerate(zip(positions, lengths)):
                array[row, :length] = flat[self._offsets[pos] : self._offsets[pos] + length]
            inputs[key] = torch.from_numpy(array.astype(np.int64))
        if self._with_mask:
            mask = np.arange(width)[None, :] < lengths[:, None]
            inputs["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
        slots = np.full((len(positions), width), -1, dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(self.word_counts[positions])])
        for row, (pos, length) in enumerate(zip(positions, lengths)):
            local = self._slots[self._offsets[pos] : self._offsets[pos] + length]
            slots[row, :length] = np.where(local >= 0, local + first[row], -1)
        return inputs, torch.from_numpy(slots), int(first[-1])

    def rows_of(self, positions: np.ndarray) -> np.ndarray:
        """The rows (in ``labels``) of the words of these sentences, in batch order."""
        if len(positions) == 0:
            return np.zeros(0, np.int64)
        return np.concatenate(
            [np.arange(self.word_rows[p], self.word_rows[p + 1]) for p in positions]
        )


def _encode(tokenizer: Any, words: list[list[str]], max_length: int | None) -> Any:
    try:
        return tokenizer(
            words,
            is_split_into_words=True,
            truncation=max_length is not None,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
        )
    except Exception as err:  # byte-level BPE needs add_prefix_space=True for split words
        if "add_prefix_space" not in str(err):
            raise
        raise ValueError(
            f"{type(tokenizer).__name__} cannot encode pre-split words as loaded: {err} Load it "
            f"with add_prefix_space=True and pass it as processor=."
        ) from err


def _complete(tokenizer: Any, words: list[str], word_ids: np.ndarray) -> np.ndarray:
    """Which words kept all their sub-tokens under truncation (a cut word is left out)."""
    full = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    full_ids = np.array([w for w in full.word_ids() if w is not None], dtype=np.int64)
    size = len(words)
    return np.bincount(full_ids, minlength=size) == np.bincount(
        word_ids[word_ids >= 0], minlength=size
    )


def _labelled(tag: Any) -> bool:
    if tag is None:
        return False
    if isinstance(tag, (int, np.integer)) and not isinstance(tag, bool):
        return tag >= 0
    return not (isinstance(tag, float) and (np.isnan(tag) or tag < 0))


def pool_words(hidden: torch.Tensor, slots: torch.Tensor, num_words: int) -> torch.Tensor:
    """(B, T, D) states -> (num_words, D) float32: the mean of the positions of each slot.

    Args:
        hidden: token states of one layer.
        slots: (B, T) the word row each position feeds, -1 for none (special tokens, padding,
            and with first-sub-token pooling every later sub-token).
        num_words: how many words the batch holds (every row 0..num_words-1 has a position).
    """
    slots = slots.to(hidden.device).reshape(-1)
    keep = slots >= 0
    states = hidden.reshape(-1, hidden.shape[-1])[keep].float()
    index = slots[keep]
    sums = torch.zeros(num_words, hidden.shape[-1], device=hidden.device).index_add_(
        0, index, states
    )
    counts = torch.bincount(index, minlength=num_words).clamp(min=1)
    return sums / counts.unsqueeze(1).to(sums.dtype)


def extract_token_features(
    model: Any,
    dataset: Any,
    *,
    split: str | None = None,
    tokens_column: str | None = None,
    label_column: str | None = None,
    word_pooling: str = "first",
    pooling: str = "auto",
    layers: str = "last",
    batch_size: int | str = "auto",
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    max_length: int | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    revision: str | None = None,
    token: str | bool | None = None,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
    processor: Any = None,
    on_batch: Callable[[Any, np.ndarray], Any] | None = None,
    return_features: bool = True,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
) -> ExtractedFeatures:
    """Per-word features and tags of a token-classification dataset.

    Args:
        model: a Hub id or local folder of a transformers text model with a fast tokenizer, a
            ``PreTrainedModel`` (with ``processor``), or a ``LoadedModel``.
        dataset: a ``datasets.Dataset``, or a ``DatasetDict`` with ``split``.
        tokens_column: the words (a list of strings per row); detected (see
            :func:`token_columns`).
        label_column: the tags (one per word); detected when it is the only list of
            ``ClassLabel``.
        word_pooling: "first" (the word's first sub-token) or "mean" (its sub-tokens' mean).
        pooling: must stay "auto": sentence pooling does not apply to words.
        layers: "last", or "all" for every hidden state from the same forward pass.
        batch_size: sentences per forward pass, or "auto" (32 on CPU, 256 on accelerators),
            halved whenever the device runs out of memory.
        max_samples: score a seeded random subset of this many sentences (all their words).
        device, dtype, max_length, seed, revision, token, trust_remote_code, use_safetensors,
            processor, shard, progress: as in :func:`hf_logme.extract_features` (``shard``
            splits the batches of sentences).
        on_batch: called as ``on_batch(features, labels)`` after each batch: (W_b, D) float32
            word features on the model's device (a dict per layer with ``layers="all"``) and the
            (W_b,) tags of those words, ready for ``LogME.update``.
        return_features: keep all word features (W x D on the CPU).

    Returns:
        An :class:`ExtractedFeatures` with task "token-classification": ``features`` (W, D) in
        dataset order (sentence after sentence, words in order), ``labels`` (W,) the tags,
        ``indices`` (W,) the dataset row of each word, ``num_samples`` the number of words,
        ``pooling`` "first" or "mean".

    Raises:
        ValueError: a bad option, no tags column aligned with a words column, a slow tokenizer.
        UnsupportedModelError: a model that does not read text, or a custom module.
    """
    check_choice("word_pooling", word_pooling, WORD_POOLINGS)
    if pooling != "auto":
        raise ValueError(
            f"pooling={pooling!r} pools a sentence; token classification pools each word: leave "
            f"pooling='auto' and pass word_pooling='first' or 'mean'."
        )
    check_choice("layers", layers, ("last", "all"))
    check_positive_int("batch_size", batch_size, allow=("auto",))
    for name, value in (("max_length", max_length), ("max_samples", max_samples)):
        if value is not None:
            check_positive_int(name, value)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {seed!r}.")
    for name, flag in (("return_features", return_features), ("progress", progress)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool; got {flag!r}.")
    if on_batch is not None and not callable(on_batch):
        raise TypeError(
            f"on_batch must be callable as on_batch(features, labels); got {on_batch!r}."
        )
    if not return_features and on_batch is None:
        raise ValueError("return_features=False and no on_batch: nothing would be produced.")
    if shard is not None and not (
        isinstance(shard, tuple)
        and len(shard) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
        and 0 <= shard[0] < shard[1]
    ):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count; got {shard!r}.")
    resolve_dtype(dtype, resolve_device(device))

    data = resolve_split(dataset, split)
    from .targets import find_label_column

    label_column = find_label_column(data, label_column)
    tokens_column = token_columns(data, label_column, tokens_column)
    if tokens_column is None:
        raise ValueError(
            f"task='token-classification' needs a tags column with one tag per word of a words "
            f"column (list of strings); label column {label_column!r} holds "
            f"{data.features[label_column]}. Columns: {describe(data)}."
        )
    sentences = subsample(len(data), max_samples, seed=seed)
    view = data.select_columns([tokens_column, label_column])
    if len(sentences) < len(data):
        view = view.select(sentences)
    names = getattr(_list_inner(data.features[label_column]), "names", None)

    load_start = time.perf_counter()
    if isinstance(model, (str, os.PathLike)):
        model = inspect_checkpoint(
            model, revision=revision, token=token, trust_remote_code=trust_remote_code
        )
    if getattr(model, "modality", "text") not in ("text", None):
        raise UnsupportedModelError(
            f"{model.model_id}: a {model.modality} model cannot tag words.", model_id=model.model_id
        )
    loaded = load_model(
        model,
        processor=processor,
        revision=revision,
        token=token,
        trust_remote_code=trust_remote_code,
        use_safetensors=use_safetensors,
        device=device,
        dtype=dtype,
    )
    if not loaded.is_transformers or loaded.modality != "text":
        raise UnsupportedModelError(
            f"{loaded.model_id}: token classification needs a transformers text model with a fast "
            f"tokenizer (custom modules have no word alignment).",
            model_id=loaded.model_id,
        )
    load_s = 0.0 if isinstance(model, LoadedModel) else time.perf_counter() - load_start

    extract_start = time.perf_counter()
    columns = view[:]
    source = WordSource(
        columns[tokens_column],
        columns[label_column],
        loaded.processor,
        word_pooling=word_pooling,
        max_length=max_length or loaded.max_length,
        forward_args=loaded.forward_args,
    )
    if source.dropped:
        logger.warning(
            "%d words are left out (past max_length, without sub-tokens, or untagged).",
            source.dropped,
        )
    if not len(source.labels):
        raise ValueError(f"no word of {tokens_column!r} has a tag to score.")
    prepare_s = time.perf_counter() - extract_start

    accelerator = "cpu" if loaded.device.type == "cpu" else "accelerator"
    size = _AUTO_BATCH[accelerator] if batch_size == "auto" else batch_size
    order = np.argsort(-source.lengths, kind="stable")  # longest first: OOM shows early
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    if shard is not None:
        batches = batches[shard[0] :: shard[1]]
    loop = _WordLoop(loaded, source, layers, size, adaptive=batch_size == "auto")
    kept: list[np.ndarray] = []
    stored: dict[int, torch.Tensor] | torch.Tensor | None = None
    num_words = len(source.labels)
    was_training = loaded.model.training
    loaded.model.eval()
    try:
        with tqdm(
            total=sum(map(len, batches)),
            unit="sentence",
            desc=f"Word features {loaded.model_id}",
            disable=not progress,
        ) as bar:
            for positions in batches:
                features = loop(positions)
                rows = source.rows_of(positions)
                if on_batch is not None and len(rows):
                    on_batch(features, source.labels[rows])
                if return_features:
                    stored = _store(stored, rows, features, num_words)
                kept.append(rows)
                bar.update(len(positions))
    finally:
        loaded.model.train(was_training)
    extract_s = time.perf_counter() - extract_start

    word_rows = np.sort(np.concatenate(kept)) if kept else np.zeros(0, np.int64)
    sentence_of_word = np.repeat(sentences, source.word_counts)
    if stored is not None and shard is not None:
        index = torch.from_numpy(word_rows)
        stored = (
            {k: v[index] for k, v in stored.items()} if isinstance(stored, dict) else stored[index]
        )
    return ExtractedFeatures(
        features=stored,
        labels=source.labels[word_rows],
        task=TOKEN_TASK,
        model_id=loaded.model_id,
        revision=loaded.revision,
        pooling=word_pooling,
        layers=layers,
        num_samples=len(word_rows),
        dim=loop.dim,
        timings={
            "load_s": load_s,
            "extract_s": extract_s,
            "prepare_s": prepare_s,
            "wait_s": 0.0,
            "forward_s": loop.forward_s,
            "samples_per_s": len(word_rows) / extract_s,
        },
        indices=sentence_of_word[word_rows],
        label_names=list(names) if names is not None else None,
        pooling_reason=f"word_pooling={word_pooling!r}: "
        + ("each word's first sub-token" if word_pooling == "first" else "each word's sub-tokens"),
        columns=(tokens_column,),
        label_column=label_column,
        device=str(loaded.device),
        dtype=str(loaded.dtype).removeprefix("torch."),
        batch_size=loop.size,
    )


class _WordLoop:
    """One batch of sentences -> word features, in pieces, halving the size on out-of-memory."""

    def __init__(
        self, loaded: LoadedModel, source: WordSource, layers: str, size: int, *, adaptive: bool
    ) -> None:
        self.loaded, self.source, self.layers = loaded, source, layers
        self.size, self.adaptive = size, adaptive
        self.dim: int | dict[int, int] = 0
        self.forward_s = 0.0

    def __call__(self, positions: np.ndarray) -> torch.Tensor | dict[int, torch.Tensor]:
        began = time.perf_counter()
        while True:
            try:
                parts = [
                    self._forward(positions[i : i + self.size])
                    for i in range(0, len(positions), self.size)
                ]
                break
            except Exception as err:
                if not is_out_of_memory(err):
                    raise
                if not self.adaptive or self.size == 1:
                    raise type(err)(
                        f"{err}\nhf-logme: out of memory at batch_size={self.size}; pass a "
                        f"smaller batch_size, or batch_size='auto' to halve it automatically."
                    ) from err
            self.size //= 2
            logger.warning("Out of memory; retrying with batch_size=%d.", self.size)
            if self.loaded.device.type == "cuda":
                torch.cuda.empty_cache()
        if isinstance(parts[0], dict):
            features: Any = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        else:
            features = torch.cat(parts)
        self._check_finite(features)
        if not self.dim:
            tensors = features if isinstance(features, dict) else {0: features}
            widths = {k: v.shape[1] for k, v in tensors.items()}
            self.dim = widths if len(set(widths.values())) > 1 else next(iter(widths.values()))
        self.forward_s += time.perf_counter() - began
        return features

    def _forward(self, positions: np.ndarray) -> torch.Tensor | dict[int, torch.Tensor]:
        inputs, slots, num_words = self.source.batch(positions)
        device = self.loaded.device
        inputs = {k: v.to(device, non_blocking=device.type == "cuda") for k, v in inputs.items()}
        with torch.inference_mode():
            output = self.loaded.model(
                **inputs, output_hidden_states=self.layers == "all", return_dict=True
            )
            if self.layers == "all":
                return {
                    i: pool_words(h, slots, num_words) for i, h in enumerate(output.hidden_states)
                }
            return pool_words(output.last_hidden_state, slots, num_words)

    def _check_finite(self, features: torch.Tensor | dict[int, torch.Tensor]) -> None:
        tensors = features.values() if isinstance(features, dict) else (features,)
        if all(bool(torch.isfinite(t).all()) for t in tensors):
            return
        model_id = self.loaded.model_id
        raise NonFiniteFeaturesError(
            f"{model_id}: the model produced NaN or infinite word features (dtype="
            f"{str(self.loaded.dtype).removeprefix('torch.')}); pass dtype='float32'.",
            model_id=model_id,
        )


def _store(
    stored: Any, rows: np.ndarray, features: torch.Tensor | dict[int, torch.Tensor], total: int
) -> Any:
    index = torch.from_numpy(rows)
    if isinstance(features, dict):
        if stored is None:
            stored = {k: torch.empty(total, v.shape[1]) for k, v in features.items()}
        for k, v in features.items():
            stored[k][index] = v.cpu()
        return stored
    if stored is None:
        stored = torch.empty(total, features.shape[1])
    stored[index] = features.cpu()
    return stored
