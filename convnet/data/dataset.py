"""The form of a data set that every loader gives: N×H×W×C uint8 images, labels, class names.

The images are a NumPy array, or — for a folder's decode cache — `Rows`, a window onto chosen
rows of a memory-mapped array, read only when indexed: a folder larger than memory trains batch
by batch, and taking a validation split copies nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..errors import UserError


class Rows:
    """Chosen rows of an N×H×W×C array (usually a memory map), indexed like an array: an
    index, a slice or an index array gives a fresh in-memory ndarray of those rows."""

    def __init__(self, base: np.ndarray, rows: np.ndarray | None = None) -> None:
        self.base = base
        self.rows = np.arange(len(base)) if rows is None else np.asarray(rows, np.int64)
        self.dtype, self.ndim = base.dtype, base.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        chosen = self.rows[key]
        if np.ndim(chosen) == 0:
            return np.array(self.base[int(chosen)])
        order = np.argsort(chosen, kind="stable")  # read the file forwards
        out = np.empty((len(chosen), *self.base.shape[1:]), self.base.dtype)
        out[order] = self.base[chosen[order]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def take(self, index: np.ndarray) -> "Rows":
        return Rows(self.base, self.rows[index])


Images = Union[np.ndarray, Rows]


@dataclass(frozen=True)
class Split:
    images: Images  # N×H×W×C uint8, 0–255
    labels: np.ndarray  # N int64 class numbers

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be N×H×W×C uint8, got {self.images.shape} "
                             f"{self.images.dtype}")
        if self.labels.shape != (len(self.images),):
            raise ValueError("one label per image")

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "Split":
        if isinstance(self.images, Rows):
            return Split(self.images.take(index), self.labels[index])
        return Split(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what loading it did, for the user (input chosen, files skipped)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def check(self) -> "Dataset":
        """Labels in range for the class list, and the same image shape in both splits."""
        for split_name, split in (("train", self.train), ("test", self.test)):
            if len(split) and (split.labels.min() < 0 or split.labels.max() >= len(self.classes)):
                raise UserError(f"{self.name}: {split_name} labels go outside the "
                                f"{len(self.classes)} classes")
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            raise UserError(f"{self.name}: train and test images differ in shape")
        return self


def stratified_split(labels: np.ndarray, fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): `fraction` of every class held out, chosen with `seed`."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        count = int(round(len(members) * fraction))
        if fraction > 0 and len(members) > 1:
            count = min(max(count, 1), len(members) - 1)  # keep one on each side
        held.append(members[:count])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept, held_out
