"""The torch engine's optimisers: PyTorch's update rules for SGD, Adam and AdamW written out —
the same tensor operations in the same order as torch.optim's single-tensor code (what it runs
on the CPU), so the same numbers — without torch.optim, whose first step imports TorchDynamo:
1.5–1.8 s of every `convnet train` on 2 cores, more than a fifth of fast91's training.

SGD with momentum μ, weight decay λ:   g ← g + λp;  b ← μb + g (b = g at the first step);
                                       g ← g + μb if Nesterov else b;  p ← p − lr·g
Adam:  m ← m + (1 − β1)(g − m);  v ← β2·v + (1 − β2)·g²;
       p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
AdamW: as Adam without λp in g, and p ← p·(1 − lr·λ) first (decoupled weight decay).
Muon (conv kernels; every other weight by SGD above), torch.optim.Muon's rule on the kernel seen
as a matrix G of filters × (channels·kh·kw), lr here the Muon rate (muon_lr, scheduled as lr):
       b ← b + (1 − μ)(g − b);  u ← g + μ(b − g) if Nesterov else b;
       u ← NS(u): X ← u/‖u‖, then 5 times  A ← XXᵀ;  X ← aX + (bA + cA²)X  (in the weights'
       float type; torch.optim.Muon rounds to bf16)
       (a, b, c = 3.4445, −4.775, 2.0315: X's singular values pushed towards 1);
       p ← p·(1 − lr·λ);  p ← p − lr·√max(1, rows/columns)·u

The NumPy engine's optimisers (engines/numpy/optim.py) follow the same rules on arrays.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...config import NS_COEFFICIENTS, OptimizerConfig


class Optimizer:
    """Parameter groups (each with its own learning rate: batch norm's may be scaled), one
    state per parameter, by name, and the count of steps taken."""

    def __init__(self, groups: list[dict[str, Any]], config: OptimizerConfig) -> None:
        # each group: {"params": [tensor], "names": [name], "lr": float, "scale": float}
        self.config = config
        self.param_groups = groups
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.steps = 0

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for group in self.param_groups:
            for name, p in zip(group["names"], group["params"]):
                if p.grad is not None:  # as torch.optim: a weight without a gradient stays
                    self.update(self.state.setdefault(name, {}), p, p.grad, group["lr"])

    def update(self, state: dict[str, torch.Tensor], p: torch.Tensor, grad: torch.Tensor,
               lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        """{"<param>.<slot>": tensor} — the checkpoint's optimizer.safetensors names."""
        return {f"{name}.{slot}": value for name, slots in self.state.items()
                for slot, value in slots.items()}

    def load_state_dict(self, flat: dict[str, torch.Tensor], steps: int) -> None:
        self.steps = steps
        self.state = {}
        for key, value in flat.items():
            name, slot = key.rsplit(".", 1)
            self.state.setdefault(name, {})[slot] = value


class SGD(Optimizer):
    def update(self, state, p, grad, lr):
        c = self.config
        if c.weight_decay != 0:
            grad = grad.add(p, alpha=c.weight_decay)
        if c.momentum != 0:
            buf = state.get("momentum")
            if buf is None:
                buf = state["momentum"] = torch.clone(grad).detach()
            else:
                buf.mul_(c.momentum).add_(grad, alpha=1.0)  # no dampening
            grad = grad.add(buf, alpha=c.momentum) if c.nesterov else buf
        p.add_(grad, alpha=-lr)


class Adam(Optimizer):
    decoupled = False

    def update(self, state, p, grad, lr):
        c = self.config
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        step = self.steps  # every weight has a gradient at every step in convnet's networks
        if c.weight_decay != 0:
            if self.decoupled:
                p.mul_(1 - lr * c.weight_decay)
            else:
                grad = grad.add(p, alpha=c.weight_decay)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - c.beta1)
        exp_avg_sq.mul_(c.beta2).addcmul_(grad, grad, value=1 - c.beta2)
        bias_correction1 = 1 - c.beta1 ** float(step)
        bias_correction2 = 1 - c.beta2 ** float(step)
        step_size = lr / bias_correction1
        denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(c.eps)
        p.addcdiv_(exp_avg, denom, value=-step_size)


class AdamW(Adam):
    decoupled = True


def orthogonalise(update: torch.Tensor, steps: int, eps: float = 1e-7) -> torch.Tensor:
    """Newton–Schulz: a matrix with update's singular vectors and singular values near 1 —
    torch.optim.Muon's iteration, the same operations (bit for bit on a bfloat16 matrix), here
    in the weights' own float type: torch.optim.Muon rounds to bfloat16, a GPU's fast type, but
    on a CPU these small products run faster in float32 (a 64 × 576 kernel: 0.78 ms against
    1.23 with AMX bf16 units, 2.33 without; bench/optimizer_step.py has the whole step)."""
    a, b, c = NS_COEFFICIENTS
    wide = update.size(0) <= update.size(1)
    x = update if wide else update.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x if wide else x.T


class Muon(SGD):
    """Conv kernels (four axes) by Muon, everything else (biases, batch norm's, the dense
    layers) by SGD with the same momentum, Nesterov and weight decay."""

    def update(self, state, p, grad, lr):
        if p.ndim != 4:
            return super().update(state, p, grad, lr)
        c = self.config
        lr = lr * (c.muon_lr / c.lr)  # the schedule's factor, at Muon's own rate
        buf = state.get("muon_momentum")
        if buf is None:
            buf = state["muon_momentum"] = torch.zeros_like(grad)
        buf.lerp_(grad, 1 - c.momentum)
        update = grad.lerp(buf, c.momentum) if c.nesterov else buf
        matrix = update.reshape(len(update), -1)
        rows, columns = matrix.shape
        ortho = orthogonalise(matrix, c.ns_steps).reshape(p.shape)
        p.mul_(1 - lr * c.weight_decay)
        p.add_(ortho, alpha=-(lr * math.sqrt(max(1.0, rows / columns))))


def make_optimizer(groups: list[dict[str, Any]], config: OptimizerConfig) -> Optimizer:
    return {"sgd": SGD, "adam": Adam, "adamw": AdamW, "muon": Muon}[config.name](groups, config)
