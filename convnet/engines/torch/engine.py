"""The PyTorch engine behind `Network`: the same description built as nn.Sequential.

Same interface as the NumPy engine: arrays in and out are NumPy, images N×H×W×C; the model runs
N×C×H×W on the chosen device (CPU by default, CUDA when asked for and present). Initial weights
are drawn by the same seeded initialiser as the NumPy engine, so a seed gives the same network
in both; state and optimiser slots carry the same names, so checkpoints move between engines.
"""

from __future__ import annotations

import warnings

import numpy as np

from ...config import OptimizerConfig, SpeedOptions
from ...errors import UserError
from ...shapes import LayerShape
from ...spec import Spec
from ..allocator import keep_freed_memory
from ..numpy.init import initial_weights
from .build import build_sequential


def notice(message: str) -> None:
    import sys
    print(f"convnet: note: {message}", file=sys.stderr)


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX-512 BF16 or AMX)."""
    from ...cpu import this_cpu

    return this_cpu().bf16


def bf16_supported(device) -> bool:
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def pick_device(device: str | None):
    import torch

    name = device or "cpu"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} was asked for, but this PyTorch sees no CUDA GPU")
    if chosen.type not in ("cpu", "cuda"):
        raise UserError(f"device {device!r} is not supported; use cpu or cuda")
    return chosen


class TorchEngine:
    name = "torch"

    def __init__(self, spec: Spec, shapes: list[LayerShape], dtype: str, seed: int, init: str,
                 optimizer: OptimizerConfig, device: str | None = None,
                 speed: SpeedOptions = SpeedOptions()) -> None:
        import torch

        self.torch = torch
        self.device = pick_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        torch.manual_seed(seed)  # dropout masks
        self.model = build_sequential(spec, spec.input).to(self.dtype)
        own = dict(self.model.named_parameters())
        with torch.no_grad():  # the same draws as the NumPy engine; biases start at zero
            for name, weight in initial_weights(shapes, init, seed).items():
                own[name].copy_(torch.from_numpy(weight))
                bias = own.get(name.removesuffix("weight") + "bias")
                if bias is not None:
                    bias.zero_()
        self.model.to(self.device)
        self.optimizer = self._make_optimizer(optimizer)
        self._configure_speed(speed, dtype)

    def _configure_speed(self, speed: SpeedOptions, dtype: str) -> None:
        torch = self.torch
        self.speed = speed
        self.memory_format = torch.channels_last if speed.channels_last else torch.contiguous_format
        # The images arrive N×H×W×C: seen as N×C×H×W they are channels-last already. On the CPU
        # they go in so, whatever the weights' layout: oneDNN then keeps the activations
        # channels-last through the network. Grey images always did (with one channel the view
        # counts as both layouts, and PyTorch goes by its strides); a copy into N×C×H×W made
        # colour ones slower — fast93's network on 32×32×3 trained at 165 ms a step from such a
        # copy against 121 ms from the view, best's 239 against 184 (AMD EPYC Zen 3, float32,
        # batch 256; docs/BENCHMARKS.md, "The same CPU kind at night")
        self.input_format = torch.channels_last if self.device.type == "cpu" else \
            self.memory_format
        if speed.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.autocast = False
        if speed.bf16:
            if dtype != "float32":
                raise UserError("bf16 works on float32 networks; drop --dtype float64 or bf16")
            if bf16_supported(self.device):
                self.autocast = True
            else:
                notice(f"this {self.device.type.upper()} has no bf16 matrix units; "
                       "training in float32 instead")
        self.forward = self.model
        if speed.compile:
            try:
                self.forward = torch.compile(self.forward)
            except Exception as e:  # noqa: BLE001 - any failure: run uncompiled, say so
                notice(f"torch.compile is not available here ({e}); running uncompiled")

    def distribute(self) -> None:
        """Train as one of several processes (torch.distributed already joined): gradients are
        averaged across them during backward. The plain model keeps the state names; the
        wrapper is only what training calls."""
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
        # With one input channel a conv weight's stride along that size-1 axis is arbitrary, and
        # backward returns another; DDP then notes "grad strides do not match" and copies the
        # gradient into its bucket, which for such small weights costs nothing worth a warning.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
        self.forward = DistributedDataParallel(self.model, device_ids=device_ids)
        if self.speed.compile:
            self.forward = self.torch.compile(self.forward)

    def _make_optimizer(self, c: OptimizerConfig):
        from .optim import make_optimizer

        named = list(self.model.named_parameters())
        groups = [{"names": [n for n, _ in named], "params": [p for _, p in named],
                   "lr": c.lr, "scale": 1.0}]
        if c.bn_lr_scale != 1:  # batch norm's scale and shift in a group of their own
            norms = {id(p) for m in self.model.modules()
                     if isinstance(m, self.torch.nn.modules.batchnorm._BatchNorm)
                     for p in m.parameters()}
            groups = [{"names": [n for n, p in named if (id(p) in norms) == is_norm],
                       "params": [p for _, p in named if (id(p) in norms) == is_norm],
                       "lr": c.lr * scale, "scale": scale}
                      for is_norm, scale in ((False, 1.0), (True, c.bn_lr_scale))]
        return make_optimizer(groups, c)

    # -- computing -------------------------------------------------------------------------
    def _tensor(self, x: np.ndarray):
        t = self.torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.dtype)
        # N×H×W×C → N×C×H×W; in channels-last memory the permuted view is already that layout
        return t.permute(0, 3, 1, 2).contiguous(memory_format=self.input_format)

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        with self.torch.no_grad(), self.torch.autocast(self.device.type, dtype=self.torch.bfloat16,
                                                       enabled=self.autocast):
            out = self.model(self._tensor(x)).float()
        return out.to(self.dtype).cpu().numpy()

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0,
                       class_weights: np.ndarray | None = None
                       ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Loss, gradients, and the logits of the forward pass (N×classes)."""
        torch = self.torch
        self.model.train()
        self.optimizer.zero_grad()
        labels = torch.from_numpy(y).to(self.device)
        # the loss in the network's float type (float32 under bf16 autocast)
        loss_type = torch.float64 if self.dtype == torch.float64 else torch.float32
        weight = None if class_weights is None else \
            torch.as_tensor(class_weights, dtype=loss_type, device=self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.forward(self._tensor(x))
            loss = torch.nn.functional.cross_entropy(logits.to(loss_type), labels, weight=weight,
                                                     label_smoothing=label_smoothing)
        loss.backward()
        grads = {name: p.grad.detach().cpu().numpy() for name, p in self.model.named_parameters()}
        return float(loss.item()), grads, logits.detach().float().cpu().numpy()

    def apply(self, grads: dict[str, np.ndarray]) -> None:
        self.optimizer.step()  # the gradients are already on the parameters

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = self.model.state_dict()
        self.model.load_state_dict({k: self.torch.from_numpy(np.asarray(state[k])).to(
            own[k].dtype) for k in own})

    def optimizer_state(self) -> dict[str, np.ndarray]:
        flat = {k: v.detach().cpu().numpy() for k, v in self.optimizer.state_dict().items()}
        flat["steps"] = np.array([self.optimizer.steps], np.int64)
        return flat

    def load_optimizer_state(self, flat: dict[str, np.ndarray]) -> None:
        steps = int(np.asarray(flat.get("steps", 0)).reshape(-1)[0])
        self.optimizer.load_state_dict(
            {k: self.torch.from_numpy(np.array(v)).to(self.device, self.dtype)
             for k, v in flat.items() if k != "steps"}, steps)

    def rng_state(self) -> dict:
        """PyTorch's CPU generator state (dropout masks), JSON-able."""
        return {"torch_cpu": self.torch.get_rng_state().tolist()}

    def set_rng_state(self, state: dict) -> None:
        if "torch_cpu" in state:
            self.torch.set_rng_state(self.torch.tensor(state["torch_cpu"], dtype=self.torch.uint8))

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value * group.get("scale", 1.0)
