"""Averages of a network's weights over training, on either engine (they work on state dicts):

    --ema D          an exponential moving average of the weights (and batch-norm statistics),
                     decay D per step, taken every EVERY steps; evaluation, checkpoints and the
                     final model use the average while training goes on with the weights
    --lookahead K    every K steps the weights move back to the slow weights' side: slow ←
                     slow + α(weights − slow), then weights ← slow (Zhang et al., 2019; α = 0.5)

Both are the tricks of the fastest CIFAR-10 recipes (airbench's lookahead, Polyak averaging);
what each is worth on Fashion-MNIST is measured in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from .errors import UserError

EVERY = 5  # steps between updates of the average: an update copies every weight once
LOOKAHEAD_ALPHA = 0.5


def _floats(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in state.items() if np.asarray(v).dtype.kind == "f"}


class WeightAverage:
    """The exponential moving average of a network's float state (weights and batch-norm
    statistics; integer counters are taken as they are)."""

    def __init__(self, net, decay: float, every: int = EVERY) -> None:
        if not 0 < decay < 1:
            raise UserError(f"--ema takes a decay between 0 and 1 (e.g. 0.99), got {decay:g}: "
                            "0 would follow the weights exactly, 1 would never move")
        self.decay, self.every = decay, every
        self.average = {k: np.array(v, dtype=np.float64) for k, v in
                        _floats(net.state_dict()).items()}

    def update(self, net) -> None:
        """After an optimiser step: every `every` steps, average in the weights as they are
        (the decay raised to `every`, so the horizon is the same as updating each step)."""
        if net.steps % self.every:
            return
        keep = self.decay ** self.every
        for name, value in _floats(net.engine.state_dict()).items():
            average = self.average[name]
            average *= keep
            average += (1 - keep) * np.asarray(value, dtype=np.float64)

    @contextlib.contextmanager
    def applied(self, net) -> Iterator[None]:
        """The average in the network for what runs inside (evaluation, saving), then the
        training weights back."""
        own = net.state_dict()
        net.load_state_dict({**own, **{k: v.astype(own[k].dtype) for k, v in
                                       self.average.items()}})
        try:
            yield
        finally:
            net.load_state_dict(own)

    def state(self) -> dict[str, np.ndarray]:
        return _prefixed("average.", self.average)

    def load(self, saved: dict[str, np.ndarray]) -> None:
        self.average = _unprefixed("average.", saved, self.average, "weight average")


class Lookahead:
    """Slow weights that the training weights are pulled back to every `every` steps."""

    def __init__(self, net, every: int, alpha: float = LOOKAHEAD_ALPHA) -> None:
        if every < 2:
            raise UserError(f"--lookahead takes how many steps between pulls (at least 2, e.g. "
                            f"5), got {every}")
        self.every, self.alpha = every, alpha
        self.slow = {k: np.array(v, dtype=np.float64) for k, v in
                     _floats(net.state_dict()).items() if ".running_" not in k}

    def update(self, net) -> None:
        if net.steps % self.every:
            return
        own = net.state_dict()
        for name, slow in self.slow.items():
            slow += self.alpha * (own[name].astype(np.float64) - slow)
            own[name] = slow.astype(own[name].dtype)
        net.load_state_dict(own)

    def state(self) -> dict[str, np.ndarray]:
        return _prefixed("slow.", self.slow)

    def load(self, saved: dict[str, np.ndarray]) -> None:
        self.slow = _unprefixed("slow.", saved, self.slow, "slow weights")


def _prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays named for a checkpoint's averages.safetensors, where both kinds share one file."""
    return {prefix + k: v for k, v in arrays.items()}


def _unprefixed(prefix: str, saved: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                what: str) -> dict[str, np.ndarray]:
    """This kind's arrays of a saved averages file, checked against the network's names."""
    found = {k.removeprefix(prefix): np.array(v, np.float64) for k, v in saved.items()
             if k.startswith(prefix)}
    if set(found) != set(expected):
        raise UserError(f"cannot resume: the run's saved {what} and this network do not match")
    return found


class Averages:
    """What a config asks for (--ema, --lookahead) for one network: updated after each step,
    the evaluated weights, and their state for a checkpoint."""

    def __init__(self, net, ema: float = 0.0, lookahead: int = 0) -> None:
        self.net = net
        self.average = WeightAverage(net, ema) if ema else None
        self.lookahead = Lookahead(net, lookahead) if lookahead else None

    def after_step(self) -> None:
        for averager in (self.lookahead, self.average):  # the average sees the pulled weights
            if averager is not None:
                averager.update(self.net)

    def evaluated(self):
        """The weights that are evaluated and kept: the average with --ema, else as trained."""
        return self.average.applied(self.net) if self.average is not None else \
            contextlib.nullcontext()

    def state(self) -> dict[str, np.ndarray]:
        return {**(self.average.state() if self.average else {}),
                **(self.lookahead.state() if self.lookahead else {})}

    def load(self, saved: dict[str, np.ndarray]) -> None:
        for averager in (self.average, self.lookahead):
            if averager is not None:
                averager.load(saved)
