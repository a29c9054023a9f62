"""A residual block: y = F(x) + S(x), with F the block's layers and S its shortcut (the identity
when it has none). Both paths read the same x; the gradient dy reaches x through both:

    dx = dF/dx · dy + dS/dx · dy        (dS/dx · dy = dy for the identity)

A path is a list of layers run in order (`run`, `run_back`). Its parameters are named
"inner.j.weight" and "shortcut.j.weight", as the PyTorch module's are.
"""

from __future__ import annotations

import numpy as np

from .base import Layer


def run(layers: list[Layer], x: np.ndarray, training: bool) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x, training)
    return x


def run_back(layers: list[Layer], d: np.ndarray) -> np.ndarray | None:
    for layer in reversed(layers):
        d = layer.backward(d)
        if d is None:
            return None
    return d


class Residual(Layer):
    keeps_output = False  # its output is a fresh sum that nothing keeps

    def __init__(self, inner: list[Layer], shortcut: list[Layer]) -> None:
        self.paths = {"inner": inner, "shortcut": shortcut}
        super().__init__()

    def named(self, *kinds: str) -> dict[str, np.ndarray]:
        """The layers' own arrays (not copies) under their names inside the block, layer by
        layer, as PyTorch's state_dict lists a module's submodules."""
        return {f"{path}.{j}.{name}": array for path, layers in self.paths.items()
                for j, layer in enumerate(layers)
                for name, array in layer.named(*kinds).items()}

    params = property(lambda self: self.named("params"), lambda self, value: None)
    grads = property(lambda self: self.named("grads"), lambda self, value: None)
    buffers = property(lambda self: self.named("buffers"), lambda self, value: None)

    @property
    def needs_input_grad(self) -> bool:
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        self._needs_input_grad = value
        for layers in self.paths.values():
            if layers:
                layers[0].needs_input_grad = value

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        made = run(self.paths["inner"], x, training)  # F(x)
        shortcut = self.paths["shortcut"]
        return made + (run(shortcut, x, training) if shortcut else x)  # + S(x), or + x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        # dy is this layer's own; a path may overwrite what it is given, so F gets a copy
        d_inner = run_back(self.paths["inner"], dy.copy())
        shortcut = self.paths["shortcut"]
        d_short = run_back(shortcut, dy) if shortcut else dy
        if not self.needs_input_grad:
            return None
        d_inner += d_short
        return d_inner
