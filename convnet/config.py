"""Plain configuration records, with commented defaults, shared by both engines."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw", "muon")
# Muon's Newton–Schulz quintic x ↦ ax + bx³ + cx⁵ on a kernel's singular values (torch.optim.Muon's,
# Keller Jordan's): both engines' iteration
NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)
MUON_LR = 0.02  # Muon's rate where none is given (small colour sets: train.muon_rate)


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "sgd"  # sgd | adam | adamw (AdamW: decoupled weight decay) | muon (conv
    # kernels by Muon, the other weights by SGD: engines/*/optim.py)
    lr: float = 0.01  # learning rate (the step size)
    momentum: float = 0.9  # SGD: fraction of the previous step kept (0 = plain SGD)
    nesterov: bool = False  # SGD: look-ahead momentum
    weight_decay: float = 0.0  # L2 penalty (SGD, Adam) or decoupled decay (AdamW)
    beta1: float = 0.9  # Adam: decay of the gradient's running mean
    beta2: float = 0.999  # Adam: decay of the squared gradient's running mean
    eps: float = 1e-8  # Adam: keeps the division finite
    bn_lr_scale: float = 1.0  # batch norm's scale and shift learn this many times faster
    muon_lr: float = MUON_LR  # Muon: the conv kernels' learning rate (follows the schedule)
    ns_steps: int = 5  # Muon: Newton–Schulz iterations that orthogonalise a kernel's update

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.name!r}; choose one of "
                            f"{', '.join(OPTIMIZERS)}")
        checks = [
            (self.lr > 0, f"the learning rate must be positive, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"weight decay must be ≥ 0, got {self.weight_decay}"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
             f"Adam's betas must be in [0, 1), got {self.beta1}, {self.beta2}"),
            (self.eps > 0, f"eps must be positive, got {self.eps}"),
            (not self.nesterov or self.momentum > 0, "nesterov needs momentum > 0"),
            (self.bn_lr_scale > 0, f"bn_lr_scale must be positive, got {self.bn_lr_scale}"),
            (self.muon_lr > 0, f"the Muon learning rate must be positive, got {self.muon_lr}"),
            (1 <= self.ns_steps <= 20, f"ns_steps is 1 to 20, got {self.ns_steps}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OptimizerConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise UserError(f"unknown optimizer settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class SpeedOptions:
    """The torch engine's fast path; each is off unless asked for (recipes turn them on)."""

    channels_last: bool = False  # N×H×W×C memory for convolutions (oneDNN's fast layout)
    bf16: bool = False  # matrix work in bfloat16 (autocast) where the hardware has bf16 units
    compile: bool = False  # torch.compile the model (pays only for long runs: it compiles first)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
