"""Figures as PNG files (matplotlib, no display needed), each written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_file


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    try:
        with atomic_file(Path(path)) as temporary:
            figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    finally:
        _pyplot().close(figure)
    return Path(path)


def training_curve(rows: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    left.plot(epochs, [r["val_loss"] for r in rows], "s-", label="validation")
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    left.legend()
    right.plot(epochs, [100 * r["train_accuracy"] for r in rows], "o-", label="train")
    right.plot(epochs, [100 * r["val_accuracy"] for r in rows], "s-", label="validation")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    right.legend()
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return save_figure(figure, path)


def confusion_matrix(matrix: np.ndarray, classes: list[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    k = len(classes)
    size = max(4.5, 0.5 * k + 2)
    figure, axis = plt.subplots(figsize=(size, size * 0.9))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(k), classes, rotation=45, ha="right")
    axis.set_yticks(range(k), classes)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    top = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            axis.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                      color="white" if matrix[i, j] > top / 2 else "black")
    figure.colorbar(image, ax=axis, fraction=0.046)
    return save_figure(figure, path)
