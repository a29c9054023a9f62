"""Figures as image files (matplotlib, no display needed), each written atomically in the
format its name asks for: .png, .jpg, .svg or .pdf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .files import atomic_file, existing_folder

FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".svg": "svg", ".pdf": "pdf"}


def check_target(path: Path) -> str:
    """The format a figure's file name asks for; a name without one of FORMATS' endings, or in
    a folder that does not exist, is refused before anything is drawn."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"cannot write a figure to {path}: give a name ending in "
                        f"{', '.join(FORMATS)}")
    existing_folder(path)
    return kind


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    try:
        kind = check_target(path)
        with atomic_file(Path(path)) as temporary:
            figure.savefig(temporary, dpi=110, bbox_inches="tight", format=kind)
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


def tile(maps: np.ndarray, columns: int) -> np.ndarray:
    """H×W×C activation maps (or filters) side by side in one 2-D array, NaN between them."""
    h, w, c = maps.shape
    rows = -(-c // columns)
    mosaic = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan)
    for k in range(c):
        r, q = divmod(k, columns)
        mosaic[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = maps[:, :, k]
    return mosaic


def _show(axis, image: np.ndarray, title: str, cmap: str = "viridis", colorbar=True):
    plt = _pyplot()
    colours = plt.get_cmap(cmap).with_extremes(bad="white")  # NaN gaps between maps: white
    shown = axis.imshow(image, cmap=colours, interpolation="nearest")
    axis.set_title(title, fontsize=8, loc="left")
    axis.set_xticks([])
    axis.set_yticks([])
    if colorbar:
        axis.figure.colorbar(shown, ax=axis, fraction=0.025, pad=0.01)


def inside_figure(image: np.ndarray, views: list, filters: np.ndarray | None, classes: list[str],
                  path: Path, max_maps: int = 32) -> Path:
    """One image: the input, each chosen layer's activation maps, the first layer's filters,
    and the class probabilities, as one labelled PNG."""
    plt = _pyplot()
    panels = [("input", None)] + [(v.title, v) for v in views] + \
        ([("filters", None)] if filters is not None else []) + [("probabilities", None)]
    heights = []
    for title, view in panels:
        if view is not None and view.values.ndim == 3:
            c = min(view.values.shape[2], max_maps)
            rows = -(-c // 16)
            heights.append(max(1.2, rows * view.values.shape[0] / 16 * 0.9 + 0.6))
        elif title == "probabilities":
            heights.append(0.25 * len(classes) + 0.6)
        else:
            heights.append(1.4 if title in ("input", "filters") else 0.8)
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, sum(heights)),
                                gridspec_kw={"height_ratios": heights})
    for axis, (title, view) in zip(np.atleast_1d(axes), panels):
        if title == "input":
            shown = image[:, :, 0] if image.shape[2] == 1 else image
            axis.imshow(shown, cmap="gray" if image.shape[2] == 1 else None)
            axis.set_title(f"input {'x'.join(map(str, image.shape))}", fontsize=8, loc="left")
            axis.set_xticks([])
            axis.set_yticks([])
        elif title == "filters":
            k, c, kh, kw = filters.shape
            maps = filters.mean(axis=1).transpose(1, 2, 0)  # kh×kw×K (averaged over depth)
            _show(axis, tile(maps, min(k, 16)), f"first layer's {k} filters, {kh}x{kw}x{c} "
                  "(mean over depth)", cmap="RdBu_r")
        elif title == "probabilities":
            probs = views[-1].values
            order = np.arange(len(classes))
            axis.barh(order, probs, color="tab:blue")
            axis.set_yticks(order, classes, fontsize=7)
            axis.invert_yaxis()
            axis.set_xlim(0, 1)
            best = int(np.argmax(probs))
            axis.set_title(f"softmax: {classes[best]} {probs[best]:.1%}", fontsize=8, loc="left")
        elif view.values.ndim == 3:
            c = view.values.shape[2]
            maps = view.values[:, :, :max_maps]
            note = f" (first {max_maps} of {c} maps)" if c > max_maps else ""
            _show(axis, tile(maps, min(16, maps.shape[2])), view.title + note)
        else:
            _show(axis, view.values[None, :], view.title)
    figure.tight_layout()
    return save_figure(figure, path)


def filters_figure(layers: list[tuple[str, np.ndarray]], path: Path) -> Path:
    """Each conv layer's filters: K rows of C kernels (kh×kw), one colour scale per layer."""
    plt = _pyplot()
    figure, axes = plt.subplots(len(layers), 1, figsize=(9, sum(
        max(1.2, 0.18 * min(w.shape[0], 32) + 0.6) for _, w in layers)), squeeze=False)
    for axis, (title, weight) in zip(axes[:, 0], layers):
        k, c, kh, kw = weight.shape
        shown = weight[:32, :16]  # K×C×kh×kw, at most 32 filters of 16 channels
        rows = [tile(f.transpose(1, 2, 0), f.shape[0]) for f in shown]
        mosaic = np.full((len(rows) * (kh + 1) - 1, rows[0].shape[1]), np.nan)
        for r, row in enumerate(rows):
            mosaic[r * (kh + 1):r * (kh + 1) + kh] = row
        limit = float(np.nanmax(np.abs(mosaic))) or 1.0
        note = "" if (k, c) == shown.shape[:2] else f" (first {shown.shape[0]}×{shown.shape[1]})"
        colours = plt.get_cmap("RdBu_r").with_extremes(bad="white")
        image = axis.imshow(mosaic, cmap=colours, vmin=-limit, vmax=limit,
                            interpolation="nearest")
        axis.set_title(f"{title}: {k} filters of {kh}x{kw}x{c}, a row per filter{note}",
                       fontsize=8, loc="left")
        axis.set_xticks([])
        axis.set_yticks([])
        figure.colorbar(image, ax=axis, fraction=0.025, pad=0.01)
    figure.tight_layout()
    return save_figure(figure, path)


def gallery(images: np.ndarray, true: list[str], predicted: list[str],
            confidence: np.ndarray, path: Path, title: str) -> Path:
    """Images with their true and predicted class: the most confident mistakes."""
    plt = _pyplot()
    n = len(images)
    columns = min(8, max(n, 1))
    rows = max(1, -(-n // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.6 * rows + 0.4),
                                squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, t, p, conf in zip(axes.ravel(), images, true, predicted, confidence):
        axis.imshow(image[:, :, 0] if image.shape[2] == 1 else image,
                    cmap="gray" if image.shape[2] == 1 else None)
        axis.set_title(f"{p} {conf:.0%}\n(is {t})", fontsize=6)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)
