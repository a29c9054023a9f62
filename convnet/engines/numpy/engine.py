"""The NumPy engine behind `Network`: the model, its optimiser, the loss, the state."""

from __future__ import annotations

import numpy as np

from ...config import OptimizerConfig
from ...shapes import LayerShape
from ...spec import Spec
from ..allocator import keep_freed_memory
from . import parallel
from .init import initial_weights
from .loss import cross_entropy
from .model import NumpyModel
from .optim import make_optimizer


class NumpyEngine:
    name = "numpy"

    def __init__(self, spec: Spec, shapes: list[LayerShape], dtype: str, seed: int, init: str,
                 optimizer: OptimizerConfig) -> None:
        self.dtype = np.dtype(dtype)
        # every step allocates its activations afresh: kept freed memory saves their page
        # faults (fast91's step on one core: 105.7 → 90.8 ms; bench/profile_layers.py)
        keep_freed_memory()
        self.model = NumpyModel(shapes, self.dtype, seed)
        params = self.model.named("params")
        for name, weight in initial_weights(shapes, init, seed).items():
            params[name][...] = weight
        self.optimizer = make_optimizer(optimizer)

    # -- computing -------------------------------------------------------------------------
    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.model.forward(x, training=False)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0,
                       class_weights: np.ndarray | None = None
                       ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Loss, gradients, and the logits of the forward pass (N×classes)."""
        logits = self.model.forward(x, training=True)
        loss, d_logits = cross_entropy(logits, y, label_smoothing, class_weights)
        self.model.backward(d_logits)
        return loss, self.model.named("grads"), logits

    def apply(self, grads: dict[str, np.ndarray]) -> None:
        # on one BLAS thread like the batch (parallel.batch): Muon's small products woke
        # OpenBLAS's threads, whose spinning then took a core from the next batch
        with parallel.batch():
            self.optimizer.step(self.model.named("params"), grads)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return self.model.named("params", "buffers")

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = self.model.named("params", "buffers")
        for name, target in own.items():
            target[...] = np.asarray(state[name]).astype(target.dtype, copy=False)

    def optimizer_state(self) -> dict[str, np.ndarray]:
        return self.optimizer.state_dict()

    def load_optimizer_state(self, flat: dict[str, np.ndarray]) -> None:
        self.optimizer.load_state_dict(flat)

    def rng_state(self) -> dict:
        """The dropout generator's state, JSON-able (for an exact resume)."""
        return self.model.rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self.model.rng.bit_generator.state = state

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value
