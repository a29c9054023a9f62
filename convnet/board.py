"""TensorBoard logging for `convnet train --tensorboard DIR` (rank 0 only).

Per epoch: scalars (loss, accuracy, learning rate, images per second), histograms of every
weight and of its gradient at the epoch's last step, the first conv layer's filters and its
activation maps for a fixed validation image, as images; once, the network graph (torch engine).
Watch with `tensorboard --logdir DIR`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .figures import tile
from .inside import activations, conv_filters
from .network import Network


def _unit(image: np.ndarray) -> np.ndarray:
    """Scale to 0–1 for an image summary; NaN gaps between tiles become white (1)."""
    low, high = np.nanmin(image), np.nanmax(image)
    scaled = (image - low) / ((high - low) or 1.0)
    return np.nan_to_num(scaled, nan=1.0)


class Board:
    def __init__(self, directory: Path, net: Network, sample: np.ndarray) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--tensorboard needs PyTorch and TensorBoard: "
                            "pip install torch tensorboard") from None

        self.writer = SummaryWriter(str(directory))
        self.sample = sample  # one H×W×C uint8 image whose activation maps are logged
        if net.engine.name == "torch":
            import torch
            h, w, c = net.input_shape
            model = net.engine.model
            example = torch.zeros(1, c, h, w, dtype=next(model.parameters()).dtype)
            with warnings.catch_warnings():  # TensorBoard's add_graph still traces with the JIT
                warnings.simplefilter("ignore", DeprecationWarning)
                self.writer.add_graph(model, example)

    def epoch(self, epoch: int, row: dict[str, Any], net: Network) -> None:
        w = self.writer
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
                    "images_per_second"):
            if row.get(key) is not None and np.isfinite(row[key]):
                group = key.split("_")[0] if key.startswith(("train", "val")) else "training"
                w.add_scalar(f"{group}/{key}", row[key], epoch)
        for name, value in net.state_dict().items():
            if value.dtype.kind == "f":
                w.add_histogram(f"weights/{name}", value, epoch)
        for name, value in (net.last_grads or {}).items():
            w.add_histogram(f"gradients/{name}", value, epoch)
        filters = conv_filters(net)
        if filters:
            info, weight = filters[0]
            maps = weight.mean(axis=1).transpose(1, 2, 0)  # kh×kw×K, averaged over depth
            w.add_image(f"filters/{info.index}", _unit(tile(maps, min(16, maps.shape[2]))),
                        epoch, dataformats="HW")
            first = activations(net, self.sample)[info.index].values  # H×W×K
            w.add_image(f"activations/{info.index}",
                        _unit(tile(first, min(16, first.shape[2]))), epoch, dataformats="HW")
        w.flush()

    def close(self) -> None:
        self.writer.close()
