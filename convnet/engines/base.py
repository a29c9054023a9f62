"""What an engine offers `Network`, written down once: both engines satisfy this Protocol (a
type checker sees a missing method; tests/test_network.py checks both at run time).

Arrays in and out are NumPy: images N×H×W×C (already scaled and normalised by Network),
labels N, logits N×classes; state by PyTorch's names and layouts.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Engine(Protocol):
    name: str  # "numpy" or "torch"
    model: Any  # the engine's own model (NumpyModel, nn.Sequential)

    # -- computing ---------------------------------------------------------------------------
    def logits(self, x: np.ndarray) -> np.ndarray:
        """Class scores, evaluation mode."""

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0,
                       class_weights: np.ndarray | None = None
                       ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Mean cross-entropy (class-weighted as PyTorch's weight=), the gradient of every
        parameter, and the logits (training mode)."""

    def apply(self, grads: dict[str, np.ndarray]) -> None:
        """One optimiser step with these gradients."""

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]: ...

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...

    def optimizer_state(self) -> dict[str, np.ndarray]: ...

    def load_optimizer_state(self, flat: dict[str, np.ndarray]) -> None: ...

    def rng_state(self) -> dict: ...

    def set_rng_state(self, state: dict) -> None: ...

    @property
    def lr(self) -> float: ...

    @lr.setter
    def lr(self, value: float) -> None: ...
