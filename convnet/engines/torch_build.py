"""Records → `torch.nn.Sequential`: the same network as PyTorch modules.

Module i of the Sequential is layer i of the description, so state names (`0.weight`, `7.bias`)
are the same in both engines. The final softmax is left out: the loss and `predict` apply it to
the logits, which is the numerically stable way.
"""

from __future__ import annotations

import warnings

from ..shapes import conv_padding, infer
from ..spec import FC, Activation, BatchNorm, Conv, Dropout, Flatten, Pool, Softmax, Spec


# PyTorch notes that pad=same with an even filter pads unevenly; the arithmetic already says so.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel",
                        category=UserWarning)


def build_sequential(spec: Spec, input_shape: tuple[int, int, int]):
    """An `nn.Sequential` equal to the description on an H×W×C input (modules take N×C×H×W)."""
    import torch.nn as nn

    modules: list[nn.Module] = []
    for info in infer(spec, input_shape):
        layer = info.layer
        if isinstance(layer, Conv):
            top, bottom, left, right = conv_padding(layer)
            padding = "same" if layer.pad == "same" else (top, left)
            modules.append(nn.Conv2d(info.input[2], layer.filters, layer.kernel,
                                     stride=layer.stride, padding=padding, bias=layer.bias))
        elif isinstance(layer, Pool):
            cls = nn.MaxPool2d if layer.kind == "max" else nn.AvgPool2d
            modules.append(cls(layer.kernel, stride=layer.stride))
        elif isinstance(layer, Activation):
            modules.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[layer.name]())
        elif isinstance(layer, Dropout):
            modules.append(nn.Dropout(layer.p))
        elif isinstance(layer, BatchNorm):
            cls = nn.BatchNorm2d if len(info.input) == 3 else nn.BatchNorm1d
            modules.append(cls(info.input[-1], eps=layer.eps, momentum=layer.momentum))
        elif isinstance(layer, Flatten):
            modules.append(nn.Flatten())
        elif isinstance(layer, FC):
            modules.append(nn.Linear(info.input[0], layer.units, bias=layer.bias))
        elif isinstance(layer, Softmax):
            if info.index != len(spec.layers) - 1:
                raise ValueError("softmax can only end a network")
        else:
            raise TypeError(f"not a layer record: {layer!r}")
    return nn.Sequential(*modules)
