"""PyTorch as the reference: one helper that runs a layer in both engines and compares.

In the manner of tinygrad's helper_test_op: same input, same weights, then shape, dtype, forward
output, input gradient and weight gradients compared with explicit tolerances.
"""

from __future__ import annotations

import numpy as np
import torch

from convnet import shapes, spec
from convnet.engines.numpy.model import build_layer
from convnet.engines.torch.build import build_sequential

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max |b|: the error relative to the size of the reference values."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-30)
    return float(np.abs(a - b).max(initial=0.0)) / scale


def to_torch_layout(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x  # N×H×W×C → N×C×H×W


def to_numpy_layout(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x  # N×C×H×W → N×H×W×C


def to_engine(x: np.ndarray) -> np.ndarray:
    """N×H×W×C (or N×D) → the NumPy engine's inner layout C×H×W×N (or D×N)."""
    return np.ascontiguousarray(x.transpose(3, 1, 2, 0) if x.ndim == 4 else x.T)


def from_engine(x: np.ndarray) -> np.ndarray:
    return x.transpose(3, 1, 2, 0) if x.ndim == 4 else x.T


def check_layer(text: str, input_shape: tuple[int, ...], batch: int = 3, dtype=np.float64,
                seed: int = 0, x: np.ndarray | None = None, training: bool = True) -> None:
    """Run the first layer of `text` in both engines and compare forward and backward."""
    rng = np.random.default_rng(seed)
    network = spec.parse(text)
    if len(input_shape) == 1:  # a vector input: parse after a flatten of an N×1×1×D image
        info = shapes.infer(spec.parse("flatten " + text), (1, 1, input_shape[0]))[1]
        torch_layer = build_sequential(spec.parse("flatten " + text), (1, 1, input_shape[0]))[1]
    else:
        info = shapes.infer(network, input_shape)[0]
        torch_layer = build_sequential(network, input_shape)[0]
    layer = build_layer(info, np.dtype(dtype), np.random.default_rng(seed))
    for name, p in layer.params.items():  # random weights, shared by both engines
        p[...] = rng.standard_normal(p.shape)
    torch_layer = torch_layer.to(TORCH_DTYPE[dtype])
    with torch.no_grad():
        for name, p in layer.params.items():  # a block's are named "inner.0.weight", ...
            torch_layer.get_parameter(name).copy_(torch.from_numpy(p))
    torch_layer.train(training)

    if x is None:
        x = rng.standard_normal((batch, *input_shape)).astype(dtype)
    y = from_engine(layer.forward(to_engine(x), training))
    xt = torch.from_numpy(to_torch_layout(x).copy()).requires_grad_(True)
    yt = torch_layer(xt)
    tol = TOLERANCE[dtype]
    assert y.dtype == dtype, f"output dtype {y.dtype}, expected {dtype}"
    assert y.shape == to_numpy_layout(yt.detach().numpy()).shape
    assert rel_err(y, to_numpy_layout(yt.detach().numpy())) <= tol, "forward differs"
    if not training:
        return

    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = from_engine(layer.backward(to_engine(dy)))
    yt.backward(torch.from_numpy(to_torch_layout(dy).copy()))
    assert dx is not None and dx.shape == x.shape and dx.dtype == dtype
    assert rel_err(dx, to_numpy_layout(xt.grad.numpy())) <= tol, "input gradient differs"
    for name in layer.params:
        reference = torch_layer.get_parameter(name).grad.numpy()
        assert layer.grads[name].shape == reference.shape, name
        assert rel_err(layer.grads[name], reference) <= tol, f"{name} gradient differs"
    for name, buffer in layer.buffers.items():
        assert rel_err(buffer, torch_layer.get_buffer(name).detach().numpy()) <= tol, name
