"""Learning-rate schedules: functions from the step number to the learning rate.

    constant   lr throughout
    cosine     linear warm-up to lr, then half a cosine down to 0 (Loshchilov & Hutter)
    onecycle   linear up to lr over the first 30 %, then linear down to 0 (Smith's one-cycle)
    step       lr, multiplied by 0.1 at 50 % and 75 % of training
"""

from __future__ import annotations

import math
from typing import Callable

from .errors import UserError

SCHEDULES = ("constant", "cosine", "onecycle", "step")


def make_schedule(name: str, lr: float, total_steps: int, warmup_steps: int = 0
                  ) -> Callable[[int], float]:
    if name not in SCHEDULES:
        raise UserError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    total = max(1, total_steps)
    warm = rising_steps("cosine", total, warmup_steps)

    def constant(step: int) -> float:
        return lr

    def cosine(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def onecycle(step: int) -> float:
        peak = rising_steps("onecycle", total)
        if step < peak:
            return lr * (0.1 + 0.9 * step / peak)
        return lr * max(0.0, (total - step) / max(1, total - peak))

    def step_decay(step: int) -> float:
        return lr * (0.1 ** (int(step >= 0.5 * total) + int(step >= 0.75 * total)))

    chosen = {"constant": constant, "cosine": cosine, "onecycle": onecycle,
              "step": step_decay}[name]
    # A learning rate of exactly 0 at the very end is refused by Network.lr; keep it positive.
    return lambda step: max(chosen(step), lr * 1e-6)


def rising_steps(name: str, total_steps: int, warmup_steps: int = 0) -> int:
    """How many of the first steps the learning rate still rises in: the cosine schedule's
    warm-up, the one-cycle's first 30 %, none for constant and step (the patience of
    `convnet train` does not count them; train.epochs_waited)."""
    total = max(1, total_steps)
    if name == "cosine":
        return min(max(0, warmup_steps), total - 1)
    if name == "onecycle":
        return max(1, int(0.3 * total))
    return 0
