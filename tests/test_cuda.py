"""The torch engine on a CUDA GPU: the same numbers as on the CPU, training, bf16 and checkpoints.

Skipped where no CUDA GPU is visible (CI has none); run on a GPU machine with
`python -m pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")

from convnet import checkpoint  # noqa: E402
from convnet.config import SpeedOptions  # noqa: E402
from convnet.network import Network  # noqa: E402

NETS = [
    ("conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) relu fc(10)", "32x32x3"),
    ("conv(16,3,pad=same,bias=false) batchnorm relu pool(2) "
     "conv(32,3,pad=same,bias=false) batchnorm relu pool(2) fc(64) relu fc(10)", "28x28x1"),
    ("conv(8,3,pad=same) batchnorm relu residual(conv(8,3,pad=1) batchnorm relu) "
     "globalavgpool fc(10)", "16x16x3"),
]


def _batch(shape: tuple[int, int, int], n: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    h, w, c = shape
    return (rng.random((n, h, w, c), dtype=np.float32),
            rng.integers(0, 10, n).astype(np.int64))


@pytest.mark.parametrize("description,size", NETS)
def test_cuda_matches_cpu(description: str, size: str) -> None:
    """Logits, loss and every gradient agree between the CPU and the GPU (float32; TF32 off)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu = Network(description, size, engine="torch", seed=3)
    gpu = Network(description, size, engine="torch", seed=3, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    x, y = _batch(cpu.input_shape)
    np.testing.assert_allclose(gpu.logits(x), cpu.logits(x), rtol=1e-4, atol=1e-4)
    loss_c, grads_c = cpu.loss_and_grads(x, y)
    loss_g, grads_g = gpu.loss_and_grads(x, y)
    assert abs(loss_c - loss_g) < 1e-4
    assert grads_c.keys() == grads_g.keys()
    for name in grads_c:
        np.testing.assert_allclose(grads_g[name], grads_c[name], rtol=1e-3, atol=1e-4,
                                   err_msg=name)


def test_cuda_training_learns_and_saves(tmp_path) -> None:
    """A few hundred steps on the GPU with bf16 and channels-last learn a separable problem; the
    checkpoint loads on the CPU and answers the same."""
    rng = np.random.default_rng(1)
    x = rng.random((512, 12, 12, 1), dtype=np.float32) * 0.2
    y = rng.integers(0, 2, 512).astype(np.int64)
    x[y == 1, :6] += 0.8  # class 1 is bright on top
    net = Network("conv(8,3,pad=same) batchnorm relu pool(2) fc(2)", "12x12x1", engine="torch",
                  device="cuda", lr=0.1, speed=SpeedOptions(channels_last=True, bf16=True))
    for _ in range(5):
        for i in range(0, 512, 64):
            net.train_step(x[i:i + 64], y[i:i + 64])
    result = net.evaluate(x, y)
    assert result["accuracy"] > 0.95, result
    checkpoint.save(net, tmp_path / "model", classes=("dark", "bright"))
    back, meta = checkpoint.load(tmp_path / "model", engine="torch", device="cpu")
    assert meta["classes"] == ["dark", "bright"] or tuple(meta["classes"]) == ("dark", "bright")
    np.testing.assert_allclose(back.predict(x[:32]), net.predict(x[:32]), atol=2e-2)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "muon"])
def test_cuda_optimizers_step_as_on_the_cpu(optimizer: str) -> None:
    """Three steps of each optimiser (Muon's Newton–Schulz on the conv kernels, momentum,
    weight decay, Nesterov) leave the same weights on the GPU as on the CPU (float32; TF32 off)."""
    from convnet.config import OptimizerConfig

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    # NETS[2] with no bias before a batch norm: such a bias's gradient is zero but for
    # rounding, which Adam's step (the gradient over its own size) makes a whole step either way
    description, size = ("conv(8,3,pad=same,bias=false) batchnorm relu residual(conv(8,3,pad=1,"
                         "bias=false) batchnorm relu) globalavgpool fc(10)", "16x16x3")
    config = OptimizerConfig(name=optimizer, lr=0.05, nesterov=True, weight_decay=5e-4)
    cpu = Network(description, size, engine="torch", seed=5, optimizer=config)
    gpu = Network(description, size, engine="torch", seed=5, optimizer=config, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    for step in range(3):
        x, y = _batch(cpu.input_shape, n=32, seed=step)
        cpu.train_step(x, y)
        gpu.train_step(x, y)
    a, b = cpu.state_dict(), gpu.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-3, atol=1e-4, err_msg=name)
