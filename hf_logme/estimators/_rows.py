"""A capped, seeded sample of feature rows (kind ``"rows"``) and of source predictions.

Which rows are kept depends only on their content and the seed: each row gets a 62-bit key, a
seeded universal hash of its feature bytes (exact integer arithmetic, identical on every device),
ties between identical feature rows broken by a hash of the label, and the sample is the
``max_rows`` rows of smallest (key, tie) pair. Keeping, after every batch or merge, the
``max_rows`` smallest pairs seen so far and dropping any later row above the first pair cut gives
exactly that set whatever the batching, order or sharding; rows are returned in pair order (which
labels do not affect, except among identical feature rows). Rows with equal pairs are identical
rows with identical labels, so which of them the cut keeps does not matter. Memory is
O(max_rows D).
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ._labels import ClassEncoder
from ._protocol import Statistics, check_regression, register_statistics, validated_batch
from ._validation import check_int

_PRIME = 2**31 - 1  # hash modulus: products of a 32-bit word and a multiplier fit in int64
_HASH_ROWS = 4096  # rows hashed at a time (bounds the int64 temporaries)
DEFAULT_MAX_ROWS = 10_000


def row_keys(features: torch.Tensor, seed: int) -> torch.Tensor:
    """int64 keys in [0, 2^62) from the bytes of each row of ``features`` (any float dtype).

    Two independent hashes ``sum_j (w_j m_j mod p) mod p`` over the row's 16- or 32-bit words w_j,
    with multipliers m_j drawn from ``seed``, combined as ``h1 p + h2``.
    """
    rows = features.contiguous()
    if rows.element_size() == 2:
        words, mask = rows.view(torch.int16), 0xFFFF
    else:  # 4- and 8-byte values are hashed as 32-bit words
        words, mask = rows.view(torch.int32), 0xFFFFFFFF
    generator = torch.Generator().manual_seed(seed)
    mult = torch.randint(1, _PRIME, (2, words.shape[1]), generator=generator, dtype=torch.int64)
    mult = mult.to(words.device)
    keys = []
    for start in range(0, words.shape[0], _HASH_ROWS):  # int64 copies of one block at a time
        block = words[start : start + _HASH_ROWS].to(torch.int64) & mask
        h1 = ((block * mult[0]) % _PRIME).sum(1) % _PRIME
        h2 = ((block * mult[1]) % _PRIME).sum(1) % _PRIME
        keys.append(h1 * _PRIME + h2)
    return torch.cat(keys)


def label_key(label: Any) -> int:
    """A 62-bit key of a class label that does not depend on the process (unlike ``hash``)."""
    text = f"{type(label).__qualname__}:{label!r}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") % 2**62


@register_statistics
class RowSample(Statistics):
    """At most ``max_rows`` feature rows with their labels, chosen by a seeded content hash.

    Args:
        regression: False for class labels, True for float targets (n,) or (n, n_targets).
        max_rows: the cap (an int >= 2, default 10000); ``n`` still counts every row seen.
        seed: selects the sample (an int >= 0, default 0).

    Rows are stored on the device of the first batch, in float64 if the features came in
    float64 and in float32 otherwise.
    """

    kind = "rows"

    def __init__(
        self, *, regression: bool = False, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
    ) -> None:
        self.regression = check_regression(regression)
        self.max_rows = check_int("max_rows", max_rows, minimum=2)
        self.seed = check_int("seed", seed, minimum=0)
        self.n = 0
        self.features: torch.Tensor | None = None  # (m, D)
        self.targets: torch.Tensor | None = None  # (m,) class indices, or (m, T) float64
        self.keys: torch.Tensor | None = None  # (m,) int64 feature hashes, ascending
        self.ties: torch.Tensor | None = None  # (m,) int64 label hashes, ascending within a key
        self.bound: tuple[int, int] | None = None  # rows above this (key, tie) pair are dropped
        self.encoder = ClassEncoder()

    def options(self) -> dict[str, Any]:
        return {"max_rows": self.max_rows, "seed": self.seed}

    @property
    def dim(self) -> int | None:
        return None if self.features is None else self.features.shape[1]

    @property
    def num_rows(self) -> int:
        """Rows held (at most ``max_rows``)."""
        return 0 if self.keys is None else int(self.keys.shape[0])

    def _validated(self, features: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        num_targets = None if self.targets is None or not self.regression else self.targets.shape[1]
        tensor, labels = validated_batch(
            features, labels, regression=self.regression, dim=self.dim, num_targets=num_targets
        )
        if self.regression:
            return tensor, labels
        return tensor, torch.from_numpy(self.encoder.encode(labels))

    def _keys(
        self, features: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(feature hash, label hash) per row: equal pairs mean equal rows with equal labels."""
        if self.regression:
            ties = row_keys(targets, self.seed)
        else:
            per_class = torch.tensor(
                [label_key(c) for c in self.encoder.classes], dtype=torch.int64
            )
            ties = per_class[targets.cpu()]
        return row_keys(features, self.seed), ties

    def update(self, features: Any, labels: Any) -> RowSample:
        tensor, targets = self._validated(features, labels)
        self._add(tensor, targets, *self._keys(tensor, targets))
        self.n += tensor.shape[0]
        return self

    def _add(
        self, features: torch.Tensor, targets: torch.Tensor, keys: torch.Tensor, ties: torch.Tensor
    ) -> None:
        """Fold rows with their (key, tie) pairs into the sample and cut it back to ``max_rows``."""
        if self.features is None:
            dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
            device = features.device
        else:
            dtype, device = self.features.dtype, self.features.device
        features, targets = features.to(device, dtype), targets.to(device)
        keys, ties = keys.to(device), ties.to(device)
        if self.bound is not None:
            key, tie = self.bound
            keep = (keys < key) | ((keys == key) & (ties <= tie))
            features, targets, keys, ties = features[keep], targets[keep], keys[keep], ties[keep]
        if self.features is not None:
            features = torch.cat([self.features, features])
            targets = torch.cat([self.targets, targets])
            keys, ties = torch.cat([self.keys, keys]), torch.cat([self.ties, ties])
        _, order = torch.sort(ties, stable=True)  # lexicographic: by tie, then stably by key
        _, by_key = torch.sort(keys[order], stable=True)
        order = order[by_key]
        features, targets, keys, ties = features[order], targets[order], keys[order], ties[order]
        if keys.shape[0] > self.max_rows:
            cut = self.max_rows
            self.bound = (int(keys[cut]), int(ties[cut]))
            features, targets = features[:cut], targets[:cut]
            keys, ties = keys[:cut], ties[:cut]
        self.features, self.targets, self.keys, self.ties = features, targets, keys, ties

    def merge(self, other: RowSample) -> RowSample:
        self._check_mergeable(other)
        if other.features is None:
            return self
        if self.dim is not None and self.dim != other.dim:
            raise ValueError(
                f"Cannot merge rows of {other.dim}-dimensional features into "
                f"{self.dim}-dimensional ones; both must come from the same model and layer."
            )
        if other.bound is not None:
            self.bound = other.bound if self.bound is None else min(self.bound, other.bound)
        targets = other.targets
        if not self.regression:
            mapping = torch.tensor(
                [self.encoder.add(label) for label in other.encoder.classes], dtype=torch.long
            )
            targets = mapping.to(targets.device)[targets]
        self._add(other.features, targets, other.keys, other.ties)
        self.n += other.n
        return self

    def labels(self) -> tuple[list[Any], torch.Tensor]:
        """Classification: (classes in sorted order, (m,) int64 codes into them) for the sample.

        Only classes present in the sample are listed.
        """
        present = sorted(set(self.targets.cpu().tolist()))
        sorted_codes = [i for i in self.encoder.sorted_order() if i in set(present)]
        remap = torch.full((len(self.encoder),), -1, dtype=torch.long)
        remap[torch.tensor(sorted_codes, dtype=torch.long)] = torch.arange(len(sorted_codes))
        classes = [self.encoder.classes[i] for i in sorted_codes]
        return classes, remap.to(self.targets.device)[self.targets]

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "kind": self.kind,
            "regression": self.regression,
            "n": self.n,
            **self.options(),
            "bound": self.bound,
        }
        if self.features is not None:
            state.update(
                features=self.features.cpu(),
                targets=self.targets.cpu(),
                keys=self.keys.cpu(),
                ties=self.ties.cpu(),
            )
            if not self.regression:
                state["classes"] = list(self.encoder.classes)
        return state

    @classmethod
    def from_state_dict(
        cls, state: dict[str, Any], device: str | torch.device = "cpu"
    ) -> RowSample:
        stats = cls(
            regression=bool(state["regression"]), max_rows=state["max_rows"], seed=state["seed"]
        )
        stats._load(state, device)
        return stats

    def _load(self, state: dict[str, Any], device: str | torch.device) -> None:
        self.n = int(state["n"])
        self.bound = None if state["bound"] is None else tuple(int(v) for v in state["bound"])
        if "features" in state:
            self.features = torch.as_tensor(state["features"]).to(device)
            self.targets = torch.as_tensor(state["targets"]).to(device)
            self.keys = torch.as_tensor(state["keys"], dtype=torch.int64).to(device)
            self.ties = torch.as_tensor(state["ties"], dtype=torch.int64).to(device)
            if not self.regression:
                self.encoder = ClassEncoder(state["classes"])


@register_statistics
class SourcePredictions(RowSample):
    """The source model's logits over its Z own classes (kind ``"source_predictions"``).

    ``update(logits, labels)`` takes (n, Z) logits and target class labels. Keeps a row sample of
    the logits (as :class:`RowSample`, capped at ``max_rows``) and, over every row, the joint
    counts of target label and source prediction: ``soft_joint[k, z] = sum_i [y_i = k]
    softmax(logits_i)_z`` (LEEP) and ``hard_joint[k, z] = #{i: y_i = k, argmax logits_i = z}``
    (NCE). Memory O(max_rows Z + K Z). Classification only.
    """

    kind = "source_predictions"

    def __init__(
        self, *, regression: bool = False, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
    ) -> None:
        if check_regression(regression):
            raise ValueError(
                "source predictions are scored against class labels; regression=True is not "
                "supported (LEEP and NCE are defined for classification)."
            )
        super().__init__(regression=False, max_rows=max_rows, seed=seed)
        self.soft_joint: torch.Tensor | None = None  # (K, Z) float64
        self.hard_joint: torch.Tensor | None = None  # (K, Z) float64

    def update(self, features: Any, labels: Any) -> SourcePredictions:
        logits, targets = self._validated(features, labels)
        probs = torch.softmax(logits.to(torch.float64), dim=1)
        rows = targets.to(probs.device)
        num, classes = len(self.encoder), probs.shape[1]
        soft = probs.new_zeros(num, classes).index_add_(0, rows, probs)
        hard = probs.new_zeros(num, classes).index_put_(
            (rows, probs.argmax(1)), torch.ones_like(rows, dtype=torch.float64), accumulate=True
        )
        self._add_joint(soft, hard)
        self._add(logits, targets, *self._keys(logits, targets))
        self.n += logits.shape[0]
        return self

    def _add_joint(self, soft: torch.Tensor, hard: torch.Tensor) -> None:
        if self.soft_joint is None:
            self.soft_joint, self.hard_joint = soft, hard
            return
        soft, hard = soft.to(self.soft_joint.device), hard.to(self.soft_joint.device)
        extra = soft.shape[0] - self.soft_joint.shape[0]
        if extra > 0:
            pad = self.soft_joint.new_zeros(extra, self.soft_joint.shape[1])
            self.soft_joint = torch.cat([self.soft_joint, pad])
            self.hard_joint = torch.cat([self.hard_joint, pad.clone()])
        self.soft_joint += soft
        self.hard_joint += hard

    def merge(self, other: SourcePredictions) -> SourcePredictions:
        self._check_mergeable(other)
        if other.soft_joint is not None:
            if self.dim is not None and self.dim != other.dim:
                raise ValueError(
                    f"Cannot merge predictions over {other.dim} source classes into {self.dim}; "
                    f"both must come from the same model."
                )
            positions = [self.encoder.add(label) for label in other.encoder.classes]
            num = len(self.encoder)
            soft = other.soft_joint.new_zeros(num, other.dim)
            hard = other.hard_joint.new_zeros(num, other.dim)
            soft[positions], hard[positions] = other.soft_joint, other.hard_joint
            self._add_joint(soft, hard)
        return super().merge(other)

    def joints(self) -> tuple[list[Any], torch.Tensor, torch.Tensor]:
        """(classes in sorted order, soft_joint, hard_joint) with rows in that order."""
        order = self.encoder.sorted_order()
        idx = torch.tensor(order, device=self.soft_joint.device)
        return [self.encoder.classes[i] for i in order], self.soft_joint[idx], self.hard_joint[idx]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.soft_joint is not None:
            state.update(soft_joint=self.soft_joint.cpu(), hard_joint=self.hard_joint.cpu())
        return state

    def _load(self, state: dict[str, Any], device: str | torch.device) -> None:
        super()._load(state, device)
        if "soft_joint" in state:
            self.soft_joint = torch.as_tensor(state["soft_joint"], dtype=torch.float64).to(device)
            self.hard_joint = torch.as_tensor(state["hard_joint"], dtype=torch.float64).to(device)
