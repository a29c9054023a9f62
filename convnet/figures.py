"""Figures as image files (matplotlib, no display needed), each written atomically in the
format its name asks for: .png, .jpg, .svg or .pdf."""

from __future__ import annotations

import math
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
    """Loss and accuracy per epoch, train beside validation; whole epochs on the x axis."""
    return save_figure(curve_figure(rows), path)


def curve_figure(rows: list[dict[str, Any]]):
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    epochs = [r["epoch"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    marker = "o-" if len(rows) <= 40 else "-"
    # a run without validation images (the recipes hold none out) draws no validation line
    validated = any(math.isfinite(r["val_accuracy"]) for r in rows)
    left.plot(epochs, [r["train_loss"] for r in rows], marker, label="train", markersize=3)
    if validated:
        left.plot(epochs, [r["val_loss"] for r in rows], marker, label="validation",
                  markersize=3)
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    right.plot(epochs, [100 * r["train_accuracy"] for r in rows], marker, label="train",
               markersize=3)
    if validated:
        right.plot(epochs, [100 * r["val_accuracy"] for r in rows], marker, label="validation",
                   markersize=3)
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    right.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(frameon=False)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axis.spines[["top", "right"]].set_visible(False)
        if len(epochs) == 1:
            axis.set_xlim(epochs[0] - 1, epochs[0] + 1)
    figure.tight_layout()
    return figure


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


WIDTH = 9.0  # inches: every figure a slide's width
PER_ROW = 16  # maps (or filters) side by side
GAP = 0.4  # inches between panels, for the next one's title


def _colours(values: np.ndarray) -> tuple[str, float | None, float | None]:
    """A signed layer on a diverging map centred on 0 (blue < 0 < red); else viridis."""
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() < 0:
        bound = float(np.abs(finite).max()) or 1.0
        return "RdBu_r", -bound, bound
    return "viridis", None, None


def _plain(axis) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def _show(axis, image: np.ndarray, title: str, values: np.ndarray | None = None) -> None:
    plt = _pyplot()
    cmap, low, high = _colours(image if values is None else values)
    colours = plt.get_cmap(cmap).with_extremes(bad="white")  # NaN gaps between maps: white
    shown = axis.imshow(image, cmap=colours, vmin=low, vmax=high, interpolation="nearest",
                        aspect="equal")
    axis.set_title(title, fontsize=9, loc="left")
    _plain(axis)
    bar = axis.figure.colorbar(shown, ax=axis, orientation="vertical", fraction=0.02, pad=0.01,
                               aspect=12)
    bar.ax.tick_params(labelsize=7)


def _maps_height(h: int, w: int, count: int) -> float:
    rows = -(-count // PER_ROW)
    columns = min(count, PER_ROW)
    return 0.45 + rows * (WIDTH * 0.9 / columns) * h / w


def _vector(axis, values: np.ndarray, title: str, labels: list[str] | None) -> None:
    """A vector as a strip of cells a viewer can see (not one pixel high); with one value per
    class, the class names under it and each value written in its cell."""
    plt = _pyplot()
    cmap, low, high = _colours(values)
    shown = axis.imshow(values[None, :], cmap=plt.get_cmap(cmap), vmin=low, vmax=high,
                        interpolation="nearest", aspect="auto")
    axis.set_title(title, fontsize=9, loc="left")
    _plain(axis)
    if labels is not None:
        long = max(len(n) for n in labels) > 3
        axis.set_xticks(range(len(labels)), labels, fontsize=7, rotation=30 if long else 0,
                        ha="right" if long else "center")
        lo, hi = (low, high) if low is not None else (values.min(), values.max())
        for i, v in enumerate(values):
            level = (v - lo) / ((hi - lo) or 1.0)
            dark = level < 0.5 if cmap == "viridis" else abs(level - 0.5) > 0.35
            axis.text(i, 0, f"{v:.2f}", ha="center", va="center", fontsize=6.5,
                      color="white" if dark else "black")
    bar = axis.figure.colorbar(shown, ax=axis, fraction=0.02, pad=0.01, aspect=4)
    bar.ax.tick_params(labelsize=7)


def _probabilities(axis, probs: np.ndarray, classes: list[str]) -> None:
    """The answer: the most probable classes (at most ten), largest first, with percentages."""
    order = np.argsort(-probs, kind="stable")[:10]
    names = [classes[i] for i in order]
    bars = axis.barh(range(len(order)), probs[order], color="#2f5fb3", height=0.7)
    bars[0].set_color("#c8553d")
    axis.set_yticks(range(len(order)), names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 1.12)
    axis.set_xticks([])
    for spine in ("top", "right", "bottom"):
        axis.spines[spine].set_visible(False)
    for i, p in enumerate(probs[order]):
        axis.text(p + 0.01, i, f"{p:.1%}", va="center", fontsize=8)
    more = f" (top {len(order)} of {len(classes)})" if len(classes) > len(order) else ""
    axis.set_title(f"softmax: {classes[order[0]]} {probs[order[0]]:.1%}{more}", fontsize=9,
                   loc="left")


MOSAIC_UNITS = 96  # filters per row: as many as fit in about this many pixels across


def filter_mosaic(weight: np.ndarray) -> tuple[np.ndarray, bool, str]:
    """K×C×kh×kw filters as one picture: a 3-channel filter in colour (each scaled to 0–1 over
    the layer), any other filter's channels side by side; as many filters to a row as fit in
    MOSAIC_UNITS pixels, a gap between. At most 32 filters (16 with more than 3 channels) and 4
    channels. Returns the mosaic (H×W, or H×W×3 in colour), whether it is colour, and a note of
    what was left out."""
    k, c, kh, kw = weight.shape
    colour = c == 3
    max_channels = 4
    shown = weight[:32 if c <= 3 else 16]
    if colour:
        low, high = float(shown.min()), float(shown.max())
        cells = [(f.transpose(1, 2, 0) - low) / ((high - low) or 1.0) for f in shown]
        width = kw
    else:
        cells = [tile(f[:max_channels].transpose(1, 2, 0), min(c, max_channels)) for f in shown]
        width = cells[0].shape[1]
    gap = 2 if max(kh, width) >= 8 or (not colour and c > 1) else 1  # wider than between channels
    columns = max(1, min(len(cells), PER_ROW, MOSAIC_UNITS // (width + gap)))
    rows = -(-len(cells) // columns)
    shape = (rows * (kh + gap) - gap, columns * (width + gap) - gap) + ((3,) if colour else ())
    mosaic = np.full(shape, 1.0 if colour else np.nan)
    for i, cell in enumerate(cells):
        r, q = divmod(i, columns)
        mosaic[r * (kh + gap):r * (kh + gap) + kh, q * (width + gap):q * (width + gap) + width] = \
            cell
    left_out = []
    if k > len(cells):
        left_out.append(f"first {len(cells)} of {k} filters")
    if not colour and c > max_channels:
        left_out.append(f"first {max_channels} of {c} channels")
    return mosaic, colour, (" (" + ", ".join(left_out) + ")") if left_out else ""


def _filters(axis, weight: np.ndarray, title: str) -> None:
    plt = _pyplot()
    k, c, kh, kw = weight.shape
    mosaic, colour, note = filter_mosaic(weight)
    if colour:
        axis.imshow(mosaic, interpolation="nearest")
        how = "in colour (R, G, B)"
    else:
        limit = float(np.nanmax(np.abs(mosaic))) or 1.0
        shown = axis.imshow(mosaic, cmap=plt.get_cmap("RdBu_r").with_extremes(bad="white"),
                            vmin=-limit, vmax=limit, interpolation="nearest")
        bar = axis.figure.colorbar(shown, ax=axis, fraction=0.02, pad=0.01, aspect=12)
        bar.ax.tick_params(labelsize=7)
        how = "its channels side by side" if c > 1 else ""
    axis.set_title(f"{title}: {k} filters of {kh}x{kw}x{c}{', ' + how if how else ''}{note}",
                   fontsize=9, loc="left")
    _plain(axis)


def _filters_height(weight: np.ndarray) -> float:
    mosaic, _, _ = filter_mosaic(weight)
    h, w = mosaic.shape[:2]
    return 0.3 + min(5.0, max(0.5, 0.85 * WIDTH * h / w))


def inside_figure(image: np.ndarray, views: list, filters: np.ndarray | None, classes: list[str],
                  path: Path, max_maps: int = 32, probabilities: np.ndarray | None = None
                  ) -> Path:
    """inside_figure_of(...), saved to `path`."""
    return save_figure(inside_figure_of(image, views, filters, classes, max_maps,
                                        probabilities), path)


def inside_figure_of(image: np.ndarray, views: list, filters: np.ndarray | None,
                     classes: list[str], max_maps: int = 32,
                     probabilities: np.ndarray | None = None):
    """One image: the input and the answer (the most probable classes, with percentages), each
    of `views`' activation maps on one colour scale per layer (diverging about 0 when it has
    negative values), vectors as strips labelled with the classes where they have one value
    per class, and `filters` (the first conv layer's, K×C×kh×kw) when given."""
    plt = _pyplot()
    top = max(1.8, 0.2 * min(len(classes), 10) + 0.5) if probabilities is not None else 1.8
    panels: list[tuple[str, Any, float]] = [("top", None, top)]
    for view in views:
        if view.values.ndim == 3:
            h, w, c = view.values.shape
            panels.append(("maps", view, _maps_height(h, w, min(c, max_maps))))
        elif len(view.values) == len(classes):  # labelled: room under it for the names
            panels += [("vector", view, 0.95), ("space", None, 0.04 * max(
                len(name) for name in classes[:64]) if any(len(n) > 3 for n in classes)
                else 0.1)]
        else:
            panels.append(("vector", view, 0.6))
    if filters is not None:
        panels.append(("filters", None, _filters_height(filters)))
    figure = plt.figure(figsize=(WIDTH, sum(height for _, _, height in panels) +
                                 GAP * len(panels)))
    heights = [h for _, _, h in panels]
    grid = figure.add_gridspec(len(panels), 1, height_ratios=heights,
                               hspace=GAP * len(heights) / sum(heights))
    for row, (kind, view, _) in enumerate(panels):
        if kind == "top":
            inner = grid[row].subgridspec(1, 2, width_ratios=[1, 2.2], wspace=0.3)
            axis = figure.add_subplot(inner[0])
            shown = image[:, :, 0] if image.shape[2] == 1 else image
            axis.imshow(shown, cmap="gray" if image.shape[2] == 1 else None, vmin=0, vmax=255,
                        interpolation="nearest")
            axis.set_title(f"input {'x'.join(map(str, image.shape))}", fontsize=9, loc="left")
            _plain(axis)
            if probabilities is not None:
                _probabilities(figure.add_subplot(inner[1]), probabilities, classes)
            continue
        if kind == "space":
            continue
        axis = figure.add_subplot(grid[row])
        if kind == "maps":
            c = view.values.shape[2]
            maps = view.values[:, :, :max_maps].astype(np.float64)
            note = f" (first {max_maps} of {c} maps)" if c > max_maps else ""
            _show(axis, tile(maps, min(PER_ROW, maps.shape[2])), view.title + note, maps)
        elif kind == "vector":
            labels = classes if len(view.values) == len(classes) else None
            _vector(axis, view.values.astype(np.float64), view.title, labels)
        else:
            _filters(axis, filters, "the first conv layer's filters")
    return figure


def filters_figure(layers: list[tuple[str, np.ndarray]], path: Path) -> Path:
    """Each conv layer's filters (at most 32, of at most 4 channels): a first layer on colour
    images in colour, the others channel by channel on one scale about 0 per layer."""
    return save_figure(filters_figure_of(layers), path)


def filters_figure_of(layers: list[tuple[str, np.ndarray]]):
    plt = _pyplot()
    heights = [_filters_height(w) for _, w in layers]
    figure = plt.figure(figsize=(WIDTH, sum(heights) + GAP * len(heights)))
    grid = figure.add_gridspec(len(layers), 1, height_ratios=heights,
                               hspace=GAP * len(heights) / sum(heights))
    for row, (title, weight) in enumerate(layers):
        _filters(figure.add_subplot(grid[row]), weight, title)
    return figure


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
