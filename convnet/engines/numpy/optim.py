"""Optimisers, with PyTorch's exact update rules (torch.optim.SGD, Adam, AdamW).

SGD with momentum μ, weight decay λ:   g ← g + λp;  b ← μb + g (b = g at the first step);
                                       g ← g + μb if Nesterov else b;  p ← p − lr·g
Adam:  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
       p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
AdamW: as Adam without λp in g, and p ← p·(1 − lr·λ) first (decoupled weight decay).
Muon: conv kernels (K×C×kh×kw) by torch.optim.Muon's rule on the K × C·kh·kw matrix (see
engines/torch/optim.py), the other weights by SGD; the Newton–Schulz iteration runs in the
network's own float type, as the torch engine's does (torch.optim.Muon's rounds to bfloat16).
"""

from __future__ import annotations

import math

import numpy as np

from ...config import NS_COEFFICIENTS, OptimizerConfig


class Optimizer:
    def __init__(self, config: OptimizerConfig) -> None:
        self.config = config
        self.lr = config.lr  # the schedule hook sets this before each step
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.steps = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.steps += 1
        for name, p in params.items():
            self.update(name, p, grads[name])

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat {"<param>.<slot>": array} plus the step count, for checkpoints."""
        flat = {f"{name}.{slot}": array for name, slots in self.state.items()
                for slot, array in slots.items()}
        flat["steps"] = np.array([self.steps], np.int64)
        return flat

    def load_state_dict(self, flat: dict[str, np.ndarray]) -> None:
        self.steps = int(np.asarray(flat.get("steps", 0)).reshape(-1)[0])
        self.state = {}
        for key, array in flat.items():
            if key == "steps":
                continue
            name, slot = key.rsplit(".", 1)
            self.state.setdefault(name, {})[slot] = np.array(array)


class SGD(Optimizer):
    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        c = self.config
        if c.weight_decay:
            g = g + c.weight_decay * p
        if c.momentum:
            slots = self.state.setdefault(name, {})
            if "momentum" not in slots:
                slots["momentum"] = g.copy()
            else:
                buf = slots["momentum"]
                buf *= c.momentum
                buf += g
            buf = slots["momentum"]
            g = g + c.momentum * buf if c.nesterov else buf
        p -= p.dtype.type(self.lr) * g


class Adam(Optimizer):
    decoupled = False

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        c = self.config
        if c.weight_decay and self.decoupled:
            p *= p.dtype.type(1 - self.lr * c.weight_decay)
        elif c.weight_decay:
            g = g + c.weight_decay * p
        slots = self.state.setdefault(name, {})
        if not slots:
            slots["exp_avg"] = np.zeros_like(p)
            slots["exp_avg_sq"] = np.zeros_like(p)
        m, v = slots["exp_avg"], slots["exp_avg_sq"]
        m *= c.beta1
        m += (1 - c.beta1) * g
        v *= c.beta2
        v += (1 - c.beta2) * g * g
        t = self.steps
        step_size = self.lr / (1 - c.beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - c.beta2 ** t) + c.eps
        p -= (step_size * m / denom).astype(p.dtype, copy=False)


class AdamW(Adam):
    decoupled = True


def orthogonalise(update: np.ndarray, steps: int, eps: float = 1e-7) -> np.ndarray:
    """Newton–Schulz: a matrix with update's singular vectors and singular values near 1."""
    a, b, c = NS_COEFFICIENTS
    wide = update.shape[0] <= update.shape[1]
    x = update if wide else update.T
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x if wide else x.T


class Muon(SGD):
    """Conv kernels by Muon, everything else by SGD (momentum, Nesterov, weight decay)."""

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if p.ndim != 4:
            return super().update(name, p, g)
        c = self.config
        lr = self.lr * (c.muon_lr / c.lr)
        slots = self.state.setdefault(name, {})
        if "muon_momentum" not in slots:
            slots["muon_momentum"] = np.zeros_like(p)
        buf = slots["muon_momentum"]
        buf += (1 - c.momentum) * (g - buf)
        update = g + c.momentum * (buf - g) if c.nesterov else buf
        matrix = update.reshape(len(update), -1)
        rows, columns = matrix.shape
        ortho = orthogonalise(matrix, c.ns_steps).reshape(p.shape)
        p *= p.dtype.type(1 - lr * c.weight_decay)
        p -= (lr * math.sqrt(max(1.0, rows / columns)) * ortho).astype(p.dtype, copy=False)


def make_optimizer(config: OptimizerConfig) -> Optimizer:
    return {"sgd": SGD, "adam": Adam, "adamw": AdamW, "muon": Muon}[config.name](config)
