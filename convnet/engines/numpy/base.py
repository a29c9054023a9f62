"""What every layer of the NumPy engine has: parameters, their gradients, and buffers."""

from __future__ import annotations

import numpy as np

from . import memory


class Layer:
    """A layer: `forward` caches what `backward` needs; `backward` fills `grads` and returns dx.

    `params` and `grads` share names (PyTorch's: weight, bias); `buffers` hold state that is
    saved but not learned (batch norm's running statistics).
    """

    # Whether what `forward` caches for the backward includes its output: when it does not, the
    # next layer may overwrite that output in place (an in-place ReLU; see model.link).
    keeps_output = True

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.needs_input_grad = True  # False for the first layer: nobody wants d(loss)/d(image)
        self._workspace: dict[tuple[bool, str], np.ndarray] = {}

    def named(self, *kinds: str) -> dict[str, np.ndarray]:
        """{name: array} of its params, grads and/or buffers, the kinds in the order asked (as
        PyTorch's state_dict lists a module's parameters, then its buffers)."""
        return {name: array for kind in kinds for name, array in getattr(self, kind).items()}

    def workspace(self, shape: tuple[int, ...], dtype: np.dtype, training: bool, name: str = "",
                  zeroed: bool = False) -> np.ndarray:
        """A scratch array kept between steps: a fresh large array costs a page fault per 4 KiB
        on first touch, which for im2col's matrix is as slow as filling it. Training and
        inference keep separate ones, so an inference never overwrites what backward needs;
        a layer may keep several, by `name`. `zeroed`: made with zeros, for a caller that writes
        the same part of it every time (a padded map's inside) and relies on the rest staying
        zero."""
        buffer = self._workspace.get((training, name))
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = memory.zeros(shape, dtype) if zeroed else memory.empty(shape, dtype)
            self._workspace[training, name] = buffer
        return buffer

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def shown(self, x: np.ndarray) -> np.ndarray:
        """This layer's own output in evaluation mode, for looking inside (model.activations):
        what forward gives, but for a layer that leaves its work to a neighbour or does a
        neighbour's (see model.link), which shows only its own."""
        return self.forward(x, training=False)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dL/dx from dL/dy. `dy` is handed over: the caller never reads it again, so a layer
        may overwrite it instead of allocating (ReLU and max pooling do)."""
        raise NotImplementedError
