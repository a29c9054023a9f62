"""Records → `torch.nn.Sequential`: the same network as PyTorch modules.

Module i of the Sequential is layer i of the description, and a residual block's layers are its
`inner` and `shortcut` Sequentials, so state names (`0.weight`, `7.inner.3.bias`) are the same in
both engines. The final softmax is left out: the loss and `predict` apply it to the logits, which
is the numerically stable way.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from ...layers import FC, Activation, BatchNorm, Conv, Dropout, Flatten, Pool, Softmax
from ...layers.dropout import Dropout2d
from ...layers.globalavgpool import GlobalAvgPool
from ...layers.residual import Residual
from ...shapes import LayerShape, infer
from ...spec import Spec

# PyTorch notes that pad=same with an even filter pads unevenly; the arithmetic already says so.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel",
                        category=UserWarning)


def _residual_block(inner: Any, shortcut: Any) -> Any:
    """y = inner(x) + shortcut(x); an empty shortcut Sequential is the identity."""
    import torch.nn as nn

    class ResidualBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.shortcut = inner, shortcut

        def forward(self, x):
            return self.inner(x) + self.shortcut(x)

    return ResidualBlock()


def _global_avg_pool() -> Any:
    """Each map's mean, N×C×H×W → N×C: AdaptiveAvgPool2d(1) and Flatten in one module, so that
    layer i stays module i."""
    import torch.nn as nn

    class GlobalAvgPool2d(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    return GlobalAvgPool2d()


def _conv(info: LayerShape) -> Any:
    import torch.nn as nn

    layer = info.layer
    top, _, left, _ = info.padding
    padding = "same" if layer.pad == "same" else (top, left)
    return nn.Conv2d(info.input[2], layer.filters, layer.kernel, stride=layer.stride,
                     padding=padding, bias=layer.bias)


def _pool(info: LayerShape) -> Any:
    import torch.nn as nn

    layer = info.layer
    cls = nn.MaxPool2d if layer.kind == "max" else nn.AvgPool2d
    return cls(layer.kernel, stride=layer.stride, padding=(info.padding[0], info.padding[2]))


def _residual(info: LayerShape) -> Any:
    paths = {name: _sequential(rows) for name, rows in info.paths}
    return _residual_block(paths["inner"], paths["shortcut"])


def _nn(name: str) -> Callable[..., Any]:
    def make(*args, **kwargs):
        import torch.nn as nn

        return getattr(nn, name)(*args, **kwargs)
    return make


# Each layer kind of convnet/layers/ → its PyTorch module, built for its input (None: no module).
MODULES: dict[type, Callable[[LayerShape], Any]] = {
    Conv: _conv,
    Pool: _pool,
    GlobalAvgPool: lambda info: _global_avg_pool(),
    Activation: lambda info: _nn({"relu": "ReLU", "sigmoid": "Sigmoid",
                                  "tanh": "Tanh"}[info.layer.name])(),
    Dropout: lambda info: _nn("Dropout")(info.layer.p),
    Dropout2d: lambda info: _nn("Dropout2d")(info.layer.p),
    BatchNorm: lambda info: _nn("BatchNorm2d" if len(info.input) == 3 else "BatchNorm1d")(
        info.input[-1], eps=info.layer.eps, momentum=info.layer.momentum),
    Flatten: lambda info: _nn("Flatten")(),
    FC: lambda info: _nn("Linear")(info.input[0], info.layer.units, bias=info.layer.bias),
    Softmax: lambda info: None,
    Residual: _residual,
}


def module_for(info: LayerShape) -> Any:
    try:
        make = MODULES[type(info.layer)]
    except KeyError:
        raise TypeError(f"the torch engine has no module for {type(info.layer).__name__}; add "
                        "it to MODULES in engines/torch/build.py") from None
    return make(info)


def _sequential(rows) -> Any:
    import torch.nn as nn

    modules = [module_for(info) for info in rows]
    return nn.Sequential(*[m for m in modules if m is not None])


def build_sequential(spec: Spec, input_shape: tuple[int, int, int]):
    """An `nn.Sequential` equal to the description on an H×W×C input (modules take N×C×H×W)."""
    rows = infer(spec, input_shape)
    for info in rows[:-1]:
        if isinstance(info.layer, Softmax):
            raise ValueError("softmax can only end a network")
    return _sequential(rows)
