"""`Network`: one API for a ConvNet, whatever the engine.

    net = Network("conv(6,5) relu pool(2) fc(10)", input="32x32x3", engine="numpy", seed=0)
    probs = net.predict(x)             # x: N×H×W×C, uint8 0–255 or float → N×classes
    loss, grads = net.loss_and_grads(x, y)
    loss = net.train_step(x, y)        # one optimiser step
    state = net.state_dict()           # {"0.weight": array, ...}, PyTorch's names and layouts
    net.load_state_dict(state)

Every check of what the caller passes in lives here, so both engines get clean arrays.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from . import shapes as shape_arithmetic
from .config import OptimizerConfig, SpeedOptions
from .engines.base import Engine
from .errors import UserError
from .resources import check_fits, out_of_memory
from .spec import Spec, load, parse_input_shape

ENGINES = ("numpy", "torch", "auto")
# Bytes of activations one evaluation batch may take, by the estimate in Network.eval_batch:
# twice every layer's output per image, and the image once for every copy made of it. Until
# 12-04 64 MB with the image counted twice, which cut best's network to batches of 77, where the
# NumPy engine's products are narrow: 232.6 ms per 1,000 images against 164.8 in batches of 500,
# fast93's 134.4 against 107.1, the ensemble's 410 against 367 (PyTorch's 353 against 299; AMD
# EPYC Zen 4, 2 cores). Now 256 MB: those networks evaluate about 300, 400 and 190 at a time.
# On 28×28 images the estimate is 1.7–5.5× what an evaluation holds at once (the peak RSS rise
# of 1,000 images in one batch: LeNet, the 28x28 CNN, fast91's, best's and the ensemble's
# networks, both engines); on large images the input's copies weigh most (the images as floats,
# the engine's layout, the first layer's padded input: EVAL_INPUT_COPIES), which a training
# process held to 400 MB of address space showed with 224×224×3 images (tests/test_folders.py).
EVAL_MEMORY = 256 << 20
EVAL_INPUT_COPIES = 4
DTYPES = ("float32", "float64")


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the step is not applied and training must stop."""


class Network:
    def __init__(self, description: str | Spec, input: str | tuple[int, int, int] | None = None,
                 *, engine: str = "numpy", seed: int = 0, dtype: str = "float32",
                 optimizer: str | OptimizerConfig = "sgd", lr: float | None = None,
                 init: str = "auto", floor: bool = False,
                 normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
                 label_smoothing: float = 0.0,
                 schedule: Callable[[int], float] | None = None,
                 device: str | None = None, speed: SpeedOptions = SpeedOptions(),
                 tta: bool = False, class_weights: np.ndarray | None = None,
                 tta_shift: int = 0) -> None:
        self.spec = description if isinstance(description, Spec) else load(description, floor)
        given = parse_input_shape(input) if isinstance(input, str) else input
        if given is not None and self.spec.input is not None and tuple(given) != self.spec.input:
            raise UserError(f"the description starts with input "
                            f"{shape_arithmetic.format_shape(self.spec.input)} but input is "
                            f"{shape_arithmetic.format_shape(tuple(given))}")
        self.spec = self.spec.with_input(tuple(given) if given is not None else None)
        self.shapes = shape_arithmetic.infer(self.spec)
        self.input_shape: tuple[int, int, int] = self.spec.input  # type: ignore[assignment]
        out = self.shapes[-1].output
        self.num_classes = out[0]
        # the class names and model.json of a trained model (set by convnet.load), else None
        self.classes: tuple[str, ...] | None = None
        self.meta: dict[str, Any] | None = None
        if engine not in ENGINES:
            raise UserError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.engine_name = engine
        if dtype not in DTYPES:
            raise UserError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        check_fits(memory_need(self.shapes, dtype), f"the network {self.spec.without_input()} "
                   f"({sum(s.params for s in self.shapes):,} weights)")
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f"label smoothing must be in [0, 1), got {label_smoothing}")
        if isinstance(optimizer, str):
            optimizer = OptimizerConfig(name=optimizer) if lr is None else \
                OptimizerConfig(name=optimizer, lr=lr)
        elif lr is not None:
            optimizer = OptimizerConfig(**{**optimizer.to_json(), "lr": lr})
        self.optimizer_config = optimizer
        self.seed, self.dtype, self.init = seed, dtype, init
        self.label_smoothing = label_smoothing
        self.schedule = schedule  # step → learning rate, called before each train_step
        self.normalization = _check_normalization(normalization, self.input_shape[2])
        self.tta = tta  # test-time augmentation: each image and its mirror vote
        if not 0 <= int(tta_shift) <= min(4, min(self.input_shape[:2]) - 1):
            raise UserError(f"tta_shift is 0 to 4 pixels (less than the image), got {tta_shift}")
        self.tta_shift = int(tta_shift)  # ... and the image moved this far in four directions
        self.class_weights = _check_class_weights(class_weights, self.num_classes)
        self._outputs = sum(math.prod(x.output) for s in self.shapes for x in s.walk())
        self._eval_cap = 1000  # lowered where an evaluation batch found the memory short
        self.steps = 0
        self.last_accuracy = float("nan")
        self.last_grads: dict[str, np.ndarray] | None = None  # of the last step (TensorBoard)

        self.engine: Engine
        if engine == "auto":  # PyTorch where it is installed (faster), else the NumPy engine
            engine = "torch" if _torch_available() else "numpy"
        if engine == "torch":
            if not _torch_available():
                raise UserError("the torch engine needs PyTorch: pip install torch "
                                "(or use --engine numpy)")
            from .engines.torch.engine import TorchEngine
            self.engine = TorchEngine(self.spec, self.shapes, dtype, seed, init, optimizer,
                                      device, speed)
        else:
            if device not in (None, "cpu"):
                raise UserError(f"the numpy engine runs on the CPU only; device {device!r} "
                                "needs --engine torch")
            if speed != SpeedOptions():
                asked = ", ".join(k.replace("_", "-") for k, v in speed.to_json().items() if v)
                raise UserError(f"{asked}: the torch engine's fast path; use --engine torch")
            from .engines.numpy.engine import NumpyEngine
            self.engine = NumpyEngine(self.spec, self.shapes, dtype, seed, init, optimizer)

    # -- what the caller passes in ---------------------------------------------------------
    def prepare_images(self, x: np.ndarray) -> np.ndarray:
        """Check a batch of images and turn it into the engine's floats (uint8 → /255)."""
        h, w, c = self.input_shape
        x = np.asarray(x)
        if x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
            x = x[..., None]  # N×H×W grey images
        if x.ndim != 4 or x.shape[1:] != (h, w, c):
            raise UserError(f"images must be an N×{h}×{w}×{c} array (N×H×W×C), got shape "
                            f"{'×'.join(map(str, x.shape)) or 'scalar'}")
        if x.shape[0] == 0:
            raise UserError("the batch of images is empty")
        return self.scale_images(x)

    def scale_images(self, x: np.ndarray) -> np.ndarray:
        """Values of images (or of pieces of them: any shape ending in the channels) as the
        engine's floats, normalised per channel: uint8 → /255, then (x − mean) / std."""
        given = x
        if x.dtype == np.uint8:
            x = np.multiply(x, np.dtype(self.dtype).type(1 / 255), dtype=self.dtype)
        elif x.dtype.kind == "f":
            if not _all_finite(x):
                raise UserError("the images contain NaN or infinity")
            x = x.astype(self.dtype, copy=False)
        else:
            raise UserError(f"images must be uint8 (0–255) or floating point, got {x.dtype}")
        if self.normalization is not None:
            mean, std = self.normalization
            if x is given:  # the caller's own floats are not changed
                x = x.copy()
            x -= np.asarray(mean, self.dtype)  # in place: one float copy of the batch at most
            x /= np.asarray(std, self.dtype)
        return x

    def prepare_labels(self, y: np.ndarray, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise UserError(f"labels must be a 1-D array of {n} class numbers, got shape "
                            f"{'×'.join(map(str, y.shape)) or 'scalar'}")
        if y.dtype.kind not in "iu":
            raise UserError(f"labels must be whole numbers (class indices), got {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.num_classes):
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise UserError(f"label {bad} is out of range: this network has {self.num_classes} "
                            f"classes, numbered 0 to {self.num_classes - 1}")
        return y.astype(np.int64, copy=False)

    # -- using the network -----------------------------------------------------------------
    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities, N×classes (softmax of the logits); evaluation mode."""
        return softmax(self.logits(x, batch_size)).astype(self.dtype)

    @property
    def eval_batch(self) -> int:
        """How many images `logits` evaluates at a time by default: as many as EVAL_MEMORY holds
        by the estimate of twice every layer's output per image, and the image itself in each
        copy an evaluation makes of it (EVAL_INPUT_COPIES, and the four moved views that
        tta_shift votes with); at least 1, at most 1,000 (or what was left after a batch found
        the memory short: logits)."""
        copies = EVAL_INPUT_COPIES + len(SHIFTS) * bool(self.tta_shift)
        per_image = np.dtype(self.dtype).itemsize * (
            2 * self._outputs + copies * math.prod(self.input_shape))
        return int(max(1, min(1000, self._eval_cap, EVAL_MEMORY // per_image)))

    def logits(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class scores before the softmax, N×classes; evaluation mode. Images go through in
        batches of `batch_size` (default: as many as fit EVAL_MEMORY, at most 1,000; where such
        a batch finds the memory short, resources.out_of_memory, half as many, and so from then
        on)."""
        size = batch_size or self.eval_batch
        parts, start = [], 0
        while start < max(len(x), 1):
            try:
                parts.append(self._scores(x[start:start + size]))
            except Exception as e:  # NumPy's MemoryError, PyTorch's allocator, CUDA's
                if not out_of_memory(e) or batch_size or size == 1:
                    raise
                size = self._eval_cap = max(1, size // 2)
                continue
            start += size
        return np.concatenate(parts)

    def _scores(self, x: np.ndarray) -> np.ndarray:
        """The mean of the logits of each image's views (test-time augmentation), one batch."""
        images = self.prepare_images(x)
        views = [images] + [shifted(images, dy, dx, self.tta_shift)
                            for dy, dx in SHIFTS if self.tta_shift]
        if self.tta:  # the mirror images vote too
            views += [view[:, :, ::-1] for view in views]
        return sum(self.engine.logits(view) for view in views) / len(views)

    def view_count(self) -> int:
        """How many views of each image vote when predicting (test-time augmentation): the
        image, moved four ways with tta_shift, and the mirror of each with tta."""
        return (1 + len(SHIFTS) * bool(self.tta_shift)) * (2 if self.tta else 1)

    def vote_of_views(self) -> str:
        """The views that vote, in words ("the vote of 5 views (test-time augmentation): …");
        "" where each image alone decides."""
        if self.view_count() == 1:
            return ""
        seen = ["the image itself"]
        if self.tta_shift:
            pixels = f"{self.tta_shift} pixel{'s' if self.tta_shift > 1 else ''}"
            seen.append(f"the image moved {pixels} up, down, left and right")
        if self.tta:
            seen.append("the mirror image of each" if self.tta_shift else "its mirror image")
        listed = seen[0] if len(seen) == 2 else ", ".join(seen[:-1]) + ","
        return (f"the vote of {self.view_count()} views (test-time augmentation): {listed} "
                f"and {seen[-1]}")

    def views(self) -> str:
        """How a prediction is made, in words, where it is more than the image alone (what
        `convnet eval` prints beside the accuracy); else ""."""
        vote = self.vote_of_views()
        return f"each prediction is {vote}" if vote else ""

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray
                       ) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of the batch and its gradient for every parameter (training mode)."""
        images = self.prepare_images(x)
        labels = self.prepare_labels(y, images.shape[0])
        loss, grads, _ = self.engine.loss_and_grads(images, labels, self.label_smoothing,
                                                    self.class_weights)
        return loss, {name: np.array(g) for name, g in grads.items()}

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimiser step on the batch; returns its loss (before the step)."""
        if self.schedule is not None:
            self.lr = float(self.schedule(self.steps))
        images = self.prepare_images(x)
        labels = self.prepare_labels(y, images.shape[0])
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging loss is caught below
            loss, grads, logits = self.engine.loss_and_grads(images, labels, self.label_smoothing,
                                                             self.class_weights)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the loss became {loss} at step {self.steps + 1}; training stopped without "
                f"applying that step. Try a smaller learning rate (now {self.lr:g})")
        self.engine.apply(grads)
        self.last_grads = grads
        self.steps += 1
        self.last_accuracy = float((logits.argmax(axis=1) == labels).mean())  # of this batch
        return loss

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None
                 ) -> dict[str, float]:
        """Mean loss and accuracy on a data set (evaluation mode)."""
        labels = self.prepare_labels(y, len(x))
        logits = self.logits(x, batch_size)
        log_probs = log_softmax(logits)
        loss = -float(log_probs[np.arange(len(labels)), labels].mean())
        accuracy = float((logits.argmax(axis=1) == labels).mean())
        return {"loss": loss, "accuracy": accuracy}

    # -- state -----------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self.engine.lr

    @lr.setter
    def lr(self, value: float) -> None:
        if not value > 0 or not math.isfinite(value):
            raise UserError(f"the learning rate must be a positive number, got {value}")
        self.engine.lr = value

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by PyTorch's names, in PyTorch's layouts."""
        return {name: np.array(a) for name, a in self.engine.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Load a state (from either engine or from PyTorch); names and shapes must match."""
        own = self.engine.state_dict()
        missing = [name for name in own if name not in state]
        extra = [name for name in state if name not in own]
        if missing or extra:
            raise UserError(f"the state does not fit this network: missing "
                            f"{', '.join(missing) or 'nothing'}; unexpected "
                            f"{', '.join(extra) or 'nothing'}")
        for name, target in own.items():
            got = np.shape(state[name])
            if tuple(got) != target.shape:
                raise UserError(f"state {name} has shape {got}, but this network needs "
                                f"{target.shape}")
            value = np.asarray(state[name])
            if (value.dtype.kind == "f") != (target.dtype.kind == "f") or \
                    value.dtype.kind not in "fiu":
                kind = "floating point" if target.dtype.kind == "f" else "whole numbers"
                raise UserError(f"state {name} is {value.dtype}; it must be {kind}")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise UserError(f"state {name} contains NaN or infinity")
            if name.endswith("running_var") and (value < 0).any():
                raise UserError(f"state {name} holds negative variances")
        self.engine.load_state_dict(state)

    def __repr__(self) -> str:
        return (f"Network({str(self.spec.without_input())!r}, "
                f"input={shape_arithmetic.format_shape(self.input_shape)!r}, "
                f"engine={self.engine.name!r})")


def memory_need(shapes: list[shape_arithmetic.LayerShape], dtype: str) -> int:
    """Bytes a Network takes while it is built and used on one image, from the inspector's
    figures: the weights, their float64 initial draw, a gradient each, and every activation
    of one image with its gradient."""
    itemsize = np.dtype(dtype).itemsize
    params = sum(s.params for s in shapes)
    values = sum(math.prod(x.output) for s in shapes for x in s.walk()) + \
        math.prod(shapes[0].input)
    return params * (2 * itemsize + 8) + values * 2 * itemsize


def training_need(shapes: list[shape_arithmetic.LayerShape], dtype: str, batch: int
                  ) -> tuple[int, int, int]:
    """(bytes to train on batches of `batch`, bytes of the weights, bytes per image), from the
    inspector's figures: the weights four times (them, their gradients and up to two optimiser
    moments), and per image every activation three times (the forward's, the gradient's, a
    scratch copy) plus each conv's unrolled windows (im2col, kept for the backward)."""
    itemsize = np.dtype(dtype).itemsize
    params = sum(s.params for s in shapes)
    rows = [x for s in shapes for x in s.walk()]
    values = sum(math.prod(x.output) for x in rows) + math.prod(shapes[0].input)
    windows = sum(x.macs // x.output[-1] for x in rows if len(x.output) == 3 and x.macs)
    per_image = (3 * values + windows) * itemsize
    weights = params * itemsize
    return 4 * weights + batch * per_image, weights, per_image


def check_training_fits(shapes: list[shape_arithmetic.LayerShape], dtype: str, batch: int,
                        what: str) -> None:
    """Refuse, before anything is allocated, training that needs more memory than there is."""
    from .resources import available_memory, bytes_text

    need, weights, per_image = training_need(shapes, dtype, batch)
    have = available_memory()
    if have is None or need <= have:
        return
    fits = max(0, (have - 4 * weights) // per_image)
    advice = f"--batch-size {fits} or less fits" if fits >= 1 else "a smaller network"
    raise UserError(f"training {what} with batches of {batch:,} needs about {bytes_text(need)} "
                    f"(weights {bytes_text(weights)}, ×4 with gradients and optimiser; "
                    f"{bytes_text(per_image)} per image); this machine has {bytes_text(have)} "
                    f"available: {advice} (convnet inspect shows each layer's share)")


SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right (times tta_shift)


def shifted(images: np.ndarray, dy: int, dx: int, by: int) -> np.ndarray:
    """N×H×W×C images moved `by`·dy rows and `by`·dx columns, zeros (the normalised mean)
    coming in at the edge."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    oy, ox = dy * by, dx * by
    out[:, max(0, oy):h + min(0, oy), max(0, ox):w + min(0, ox)] = \
        images[:, max(0, -oy):h - max(0, oy), max(0, -ox):w - max(0, ox)]
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax(z) = z − max z − log Σ e^(z − max z), row by row, in float64."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from scores, row by row, in float64."""
    return np.exp(log_softmax(logits))


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _all_finite(x: np.ndarray) -> bool:
    """Whether no value is NaN or ±inf: every value looked at, by NumPy's vector loop (LeNet's
    128 images of 32x32x3: 47 µs, where a float64 sum, non-finite if any value is, took 168 —
    2% of a training step; AMD EPYC Zen 4, 2026-12-04), a block of images at a time so that its
    booleans stay small."""
    if x.ndim == 0 or x.size <= _FINITE_BLOCK:
        return bool(np.isfinite(x).all())
    step = max(1, _FINITE_BLOCK * x.shape[0] // x.size)
    return all(np.isfinite(x[start:start + step]).all() for start in range(0, x.shape[0], step))


_FINITE_BLOCK = 1 << 22  # values checked at once


def _check_class_weights(weights, classes: int) -> np.ndarray | None:
    if weights is None:
        return None
    weights = np.asarray(weights, np.float64)
    if weights.shape != (classes,) or not np.isfinite(weights).all() or (weights < 0).any() \
            or weights.sum() <= 0:
        raise UserError(f"class weights must be {classes} finite numbers ≥ 0, not all 0")
    return weights


def _check_normalization(normalization, channels: int):
    if normalization is None:
        return None
    mean, std = (tuple(float(v) for v in part) for part in normalization)
    if len(mean) != channels or len(std) != channels:
        raise UserError(f"normalisation needs {channels} mean and {channels} std values, got "
                        f"{len(mean)} and {len(std)}")
    if min(std) <= 0:
        raise UserError("normalisation std values must be positive")
    return mean, std
