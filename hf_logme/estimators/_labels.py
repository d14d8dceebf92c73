"""Map class labels of any hashable kind to 0..K-1, growing as new classes appear later."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


class ClassEncoder:
    """Assigns each distinct label an index in order of first appearance.

    Indices are stable once given, so per-class statistics accumulated earlier stay valid when a
    later batch brings a new class. ``sorted_order()`` gives a presentation order independent of
    batch order.
    """

    def __init__(self, classes: Sequence[Hashable] = ()) -> None:
        self.classes: list[Hashable] = []
        self._index: dict[Hashable, int] = {}
        for label in classes:
            self.add(label)

    def __len__(self) -> int:
        return len(self.classes)

    def add(self, label: Hashable) -> int:
        """The index of ``label``, registering it as a new class if unseen."""
        index = self._index.get(label)
        if index is None:
            index = self._index[label] = len(self.classes)
            self.classes.append(label)
        return index

    def encode(self, labels: np.ndarray) -> np.ndarray:
        """Return int64 indices for a 1-D array of labels, registering unseen classes."""
        try:
            uniques, inverse = np.unique(labels, return_inverse=True)
        except TypeError:  # mixed, unorderable objects: fall back to a dict lookup per row
            return np.fromiter((self.add(_native(v)) for v in labels), np.int64, len(labels))
        mapping = np.array([self.add(_native(v)) for v in uniques.tolist()], dtype=np.int64)
        return mapping[inverse.reshape(-1)]

    def index(self, label: Hashable) -> int:
        """The index of a registered label (KeyError if unseen)."""
        return self._index[label]

    def sorted_order(self) -> list[int]:
        """Indices of the classes in sorted label order (first-seen order if labels don't sort)."""
        try:
            return sorted(range(len(self.classes)), key=lambda i: self.classes[i])
        except TypeError:
            return list(range(len(self.classes)))


def _native(value: Hashable) -> Hashable:
    """numpy scalars to Python scalars, so labels compare, hash and serialise as users expect."""
    return value.item() if isinstance(value, np.generic) else value
