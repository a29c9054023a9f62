"""The in-memory form of a data set, shared by every loader."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # N×H×W×C uint8, 0–255
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
        return Split(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]

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
