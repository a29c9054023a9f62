"""The whole network against PyTorch (llm.c style): same state, same batch → same loss and
gradients, then optimiser steps with the same losses; plus the Network API's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet import Network
from convnet.config import OptimizerConfig, SpeedOptions
from convnet.engines.torch.build import build_sequential
from convnet.errors import UserError
from convnet.network import TrainingDiverged
from reference import rel_err

LENET = "conv(6,5) relu pool(2) conv(16,5) relu pool(2) fc(120) relu fc(84) relu fc(10)"
WITH_BN = "conv(8,3,pad=same,bias=false) batchnorm relu pool(2) conv(8,4,stride=2,pad=1) tanh " \
          "avgpool(2) fc(16,bias=false) batchnorm sigmoid fc(5)"
# ReLUs before max pooling of overlapping and padded windows (the pooling does their work)
RELU_POOLS = ("conv(4,3,pad=same) relu pool(3,stride=2) conv(5,3,pad=same) relu pool(2,pad=1) "
              "fc(4)")
RESIDUAL = ("conv(8,3,pad=1,bias=false) batchnorm relu pool(3,stride=2,pad=1,floor=true) "
            "residual(conv(8,3,pad=1,bias=false) batchnorm relu conv(8,3,pad=1,bias=false) "
            "batchnorm) relu "
            "residual(conv(16,3,stride=2,pad=1,bias=false,floor=true) batchnorm relu "
            "conv(16,3,pad=1,bias=false) batchnorm, "
            "shortcut=conv(16,1,stride=2,bias=false,floor=true) batchnorm) relu "
            "globalavgpool fc(5)")


def torch_twin(net: Network) -> torch.nn.Sequential:
    model = build_sequential(net.spec, net.input_shape).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    return model


def batch(shape, n=16, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)), rng.integers(0, classes, n)


def step_both(net: Network, model: torch.nn.Module, opt, x: np.ndarray,
              y: np.ndarray) -> tuple[float, float]:
    """One training step of the Network and of its PyTorch twin with `opt` (label smoothing
    0.1, as the Network was made): their two losses."""
    loss = net.train_step(x, y)
    opt.zero_grad()
    loss_t = F.cross_entropy(model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())),
                             torch.from_numpy(y), label_smoothing=0.1)
    loss_t.backward()
    opt.step()
    return loss, loss_t.item()


@pytest.mark.parametrize("text, shape, classes", [(LENET, (32, 32, 3), 10),
                                                  (WITH_BN, (16, 16, 3), 5),
                                                  (RESIDUAL, (16, 16, 3), 5),
                                                  (RELU_POOLS, (17, 17, 3), 4)])
def test_same_loss_and_gradients_as_pytorch(text, shape, classes):
    net = Network(text, input=shape, dtype="float64", seed=3)
    model = torch_twin(net).train()
    x, y = batch(shape, classes=classes)
    loss, grads = net.loss_and_grads(x, y)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    loss_t = F.cross_entropy(model(xt), torch.from_numpy(y))
    loss_t.backward()
    assert abs(loss - loss_t.item()) <= 1e-12 * abs(loss_t.item())
    assert set(grads) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        assert rel_err(grads[name], p.grad.numpy()) <= 1e-10, name


@pytest.mark.parametrize("config", [
    OptimizerConfig("sgd", lr=0.05, momentum=0.0),
    OptimizerConfig("sgd", lr=0.05, momentum=0.9, weight_decay=5e-4),
    OptimizerConfig("sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    OptimizerConfig("adam", lr=1e-3),
    OptimizerConfig("adam", lr=1e-3, weight_decay=1e-2, beta1=0.8, beta2=0.99, eps=1e-6),
    OptimizerConfig("adamw", lr=1e-3, weight_decay=0.05),
])
@pytest.mark.parametrize("text, shape, classes", [(LENET, (32, 32, 3), 10),
                                                  (WITH_BN, (16, 16, 3), 5),
                                                  (RESIDUAL, (12, 12, 3), 5)])
def test_optimiser_steps_give_the_same_losses_as_pytorch(config, text, shape, classes):
    net = Network(text, input=shape, dtype="float64", seed=1, optimizer=config,
                  label_smoothing=0.1)
    model = torch_twin(net).train()
    c = config
    if c.name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=c.momentum,
                              nesterov=c.nesterov, weight_decay=c.weight_decay)
    else:
        cls = torch.optim.Adam if c.name == "adam" else torch.optim.AdamW
        opt = cls(model.parameters(), lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps,
                  weight_decay=c.weight_decay)
    for step in range(5):
        loss, loss_t = step_both(net, model, opt, *batch(shape, classes=classes, seed=step))
        assert abs(loss - loss_t) <= 1e-10 * abs(loss_t), f"step {step}"
    for name, value in model.state_dict().items():  # weights and batch-norm statistics
        assert rel_err(net.state_dict()[name], value.numpy()) <= 1e-9, name


@pytest.mark.parametrize("config", [
    OptimizerConfig("sgd", lr=0.05, momentum=0.0),
    OptimizerConfig("sgd", lr=0.05, momentum=0.9, weight_decay=5e-4),
    OptimizerConfig("sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3,
                    bn_lr_scale=4.0),
    OptimizerConfig("adam", lr=1e-3),
    OptimizerConfig("adam", lr=1e-3, weight_decay=1e-2, beta1=0.8, beta2=0.99, eps=1e-6,
                    bn_lr_scale=2.0),
    OptimizerConfig("adamw", lr=1e-3, weight_decay=0.05),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_torch_engines_optimisers_are_torch_optims_to_the_bit(config, dtype):
    """The torch engine writes SGD, Adam and AdamW out (torch.optim's first step imports
    TorchDynamo, seconds of start-up): the same weights as torch.optim to the last bit, through
    a changing learning rate, batch norm's own rate, and a save and reload of the state."""
    nets = [Network(WITH_BN, input=(16, 16, 3), engine="torch", dtype=dtype, seed=3,
                    optimizer=config, label_smoothing=0.1) for _ in range(2)]
    ours, theirs = nets
    norms = {f"{i}.{w}" for i, layer in enumerate(theirs.spec.layers)
             if layer.to_text() == "batchnorm" for w in ("weight", "bias")}
    named = list(theirs.engine.model.named_parameters())
    groups = [{"params": [p for _, p in named], "lr": config.lr, "scale": 1.0}]
    if config.bn_lr_scale != 1:  # batch norm's weights in a group of their own
        groups = [{"params": [p for n, p in named if (n in norms) == is_norm],
                   "lr": config.lr * scale, "scale": scale}
                  for is_norm, scale in ((False, 1.0), (True, config.bn_lr_scale))]
    assert norms and all(n in dict(named) for n in norms)
    if config.name == "sgd":
        theirs.engine.optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                                                  nesterov=config.nesterov,
                                                  weight_decay=config.weight_decay)
    else:
        cls = torch.optim.Adam if config.name == "adam" else torch.optim.AdamW
        theirs.engine.optimizer = cls(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                                      eps=config.eps, weight_decay=config.weight_decay)
    for step in range(6):
        x, y = batch((16, 16, 3), classes=5, seed=step)
        for net in nets:
            net.lr = config.lr * (1 - step / 10)
            net.train_step(x, y)
        if step == 2:  # the state goes through a checkpoint's arrays and back
            ours.engine.load_optimizer_state(
                {k: v.copy() for k, v in ours.engine.optimizer_state().items()})
            assert int(ours.engine.optimizer_state()["steps"][0]) == 3
    for name, value in theirs.state_dict().items():
        assert np.array_equal(ours.state_dict()[name], value), name


# -- Muon: conv kernels orthogonalised, the other weights by SGD ------------------------------

class TorchMuonReference:
    """torch.optim.SGD for the weights that are not conv kernels, and torch.optim.Muon's own
    update (its functional form: torch.optim.Muon takes only matrices) for each kernel seen as
    a filters × (channels·kh·kw) matrix — the optimiser convnet's Muon must equal."""

    def __init__(self, model: torch.nn.Module, c: OptimizerConfig) -> None:
        from torch.optim._muon import _single_tensor_muon

        self.muon, self.c = _single_tensor_muon, c
        named = list(model.named_parameters())
        self.kernels = [p for _, p in named if p.ndim == 4]
        others = [p for _, p in named if p.ndim != 4]
        self.sgd = torch.optim.SGD(others, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                   weight_decay=c.weight_decay)
        self.buffers = [torch.zeros_like(p).view(len(p), -1) for p in self.kernels]
        self.param_groups = [*self.sgd.param_groups,  # the Network's lr setter sets these
                             {"lr": c.muon_lr, "scale": c.muon_lr / c.lr}]

    def zero_grad(self) -> None:
        self.sgd.zero_grad()
        for p in self.kernels:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.sgd.step()
        c = self.c
        self.muon([p.view(len(p), -1) for p in self.kernels],
                  [p.grad.view(len(p), -1) for p in self.kernels], self.buffers,
                  lr=self.param_groups[-1]["lr"], weight_decay=c.weight_decay,
                  momentum=c.momentum, nesterov=c.nesterov, ns_coefficients=(3.4445, -4.775,
                                                                              2.0315),
                  ns_steps=c.ns_steps, eps=1e-7, adjust_lr_fn=None, has_complex=False)


MUON_CONFIGS = [
    OptimizerConfig("muon", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                    muon_lr=0.02),
    OptimizerConfig("muon", lr=0.1, momentum=0.6, nesterov=False, weight_decay=0.0,
                    muon_lr=0.1, ns_steps=3),
]


@pytest.mark.parametrize("config", MUON_CONFIGS)
def test_muon_is_the_same_in_both_engines(config):
    """float64, through a changing learning rate and a save and reload of the optimiser's
    state; the residual network has a kernel taller than wide (the 1×1 shortcut: 16 × 8)."""
    nets = [Network(RESIDUAL, input=(12, 12, 3), engine=engine, dtype="float64", seed=3,
                    optimizer=config, label_smoothing=0.1) for engine in ("torch", "numpy")]
    before = nets[0].state_dict()
    for step in range(6):
        x, y = batch((12, 12, 3), classes=5, seed=step)
        for net in nets:
            net.lr = config.lr * (1 - step / 10)
            net.train_step(x, y)
        if step == 2:
            for net in nets:
                net.engine.load_optimizer_state(
                    {k: v.copy() for k, v in net.engine.optimizer_state().items()})
    torch_net, numpy_net = nets
    for name, value in torch_net.state_dict().items():
        assert rel_err(numpy_net.state_dict()[name], value) <= 1e-9, name
        if value.ndim == 4:  # the kernels did move
            assert not np.allclose(before[name], value), name


def test_the_newton_schulz_iteration_is_pytorchs_to_the_bit():
    """On a bfloat16 matrix the torch engine's iteration is torch.optim.Muon's, bit for bit (the
    engines run it in the weights' float type, where PyTorch rounds to bfloat16 first)."""
    from torch.optim._muon import _zeropower_via_newtonschulz

    from convnet.engines.torch.optim import orthogonalise

    rng = np.random.default_rng(0)
    for shape in [(8, 27), (27, 8), (16, 16), (1, 9), (64, 576)]:
        g = torch.from_numpy(rng.standard_normal(shape)).bfloat16()
        theirs = _zeropower_via_newtonschulz(g.clone(), (3.4445, -4.775, 2.0315), 5, 1e-7)
        assert torch.equal(orthogonalise(g, 5), theirs), shape


@pytest.mark.parametrize("engine", ["torch", "numpy"])
@pytest.mark.parametrize("config", MUON_CONFIGS)
def test_muon_is_torch_optim_muon_in_float32(config, engine, monkeypatch):
    """Against torch.optim.Muon's own update — its momentum, Nesterov, decay and the learning
    rate's adjustment for the kernel's shape — with its Newton–Schulz iteration run in float32
    instead of bfloat16 (the iteration itself is PyTorch's to the bit, above; rounded to
    bfloat16 the kernels' steps differ by 3–6%), on a network with batch norm, a strided conv
    and dense layers (which SGD moves)."""
    import torch.optim._muon

    from convnet.engines.torch.optim import orthogonalise

    monkeypatch.setattr(torch.optim._muon, "_zeropower_via_newtonschulz",
                        lambda g, coefficients, steps, eps: orthogonalise(g, steps, eps))
    net = Network(WITH_BN, input=(16, 16, 3), engine=engine, dtype="float32", seed=1,
                  optimizer=config, label_smoothing=0.1)
    model = build_sequential(net.spec, net.input_shape)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    model.train()
    opt = TorchMuonReference(model, config)
    before = net.state_dict()
    for step in range(4):
        x, y = batch((16, 16, 3), classes=5, seed=step)
        loss, loss_t = step_both(net, model, opt, x.astype(np.float32), y)
        assert abs(loss - loss_t) <= 1e-5 * abs(loss_t), f"step {step}"
    weights = dict(model.named_parameters())
    for name, value in model.state_dict().items():
        ours, theirs = net.state_dict()[name], value.numpy()
        if name in weights:  # how far each weight moved
            assert rel_err(ours - before[name], theirs - before[name]) <= 1e-4, name
            assert np.abs(theirs - before[name]).max() > 1e-3, name
        elif value.dtype.is_floating_point:  # batch norm's statistics
            assert rel_err(ours, theirs) <= 1e-5, name


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 24), columns=st.integers(1, 40), scale=st.floats(1e-3, 1e3),
       steps=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_newton_schulz_keeps_the_singular_vectors_and_maps_each_singular_value(
        rows, columns, scale, steps, seed):
    """An independent route: the SVD. The iteration multiplies G/‖G‖ by polynomials of GGᵀ, so
    it keeps G's singular vectors and sends each singular value σ/‖G‖ through the quintic
    x ↦ ax + bx³ + cx⁵, `steps` times."""
    from convnet.config import NS_COEFFICIENTS
    from convnet.engines.numpy.optim import orthogonalise

    g = np.random.default_rng(seed).standard_normal((rows, columns)) * scale
    u, sigma, vt = np.linalg.svd(g, full_matrices=False)
    x = sigma / np.linalg.norm(g)
    a, b, c = NS_COEFFICIENTS
    for _ in range(steps):
        x = a * x + b * x ** 3 + c * x ** 5
    expected = (u * x) @ vt
    assert np.allclose(orthogonalise(g, steps), expected, atol=1e-9)


@pytest.mark.parametrize("text", [WITH_BN, RESIDUAL])
def test_state_dict_loads_unchanged_into_pytorch_and_back(text):
    net = Network(text, input="16x16x3", seed=0)
    model = build_sequential(net.spec, net.input_shape)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
    assert list(net.state_dict()) == list(model.state_dict())  # same names, same order
    other = Network(text, input="16x16x3", seed=9)
    other.load_state_dict({k: v.numpy() for k, v in model.state_dict().items()})
    x, _ = batch((16, 16, 3), n=4)
    assert np.array_equal(other.predict(x), net.predict(x))
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32)
                                                     .copy())), 1).numpy()
    assert np.abs(net.predict(x) - probs).max() < 1e-5


def test_overfits_one_fixed_batch():
    x, y = batch((28, 28, 1), n=32)
    net = Network("conv(8,3,pad=same) relu pool(2) conv(16,3,pad=same) relu pool(2) fc(32) "
                  "relu fc(10)", input="28x28x1", seed=0, optimizer="adam", lr=2e-3)
    first = net.train_step(x, y)
    for _ in range(200):
        last = net.train_step(x, y)
    assert first > 2.0 and last < 0.01
    assert net.evaluate(x, y)["accuracy"] == 1.0


def test_deterministic_for_a_seed():
    x, y = batch((16, 16, 3), n=8, classes=5)
    runs = []
    for _ in range(2):
        net = Network(WITH_BN + "", input="16x16x3", seed=42)
        net2 = Network("conv(4,3) relu dropout(0.5) fc(5)", input="16x16x3", seed=42)
        losses = [net.train_step(x, y) for _ in range(3)] + [net2.train_step(x, y)
                                                              for _ in range(3)]
        runs.append((losses, net.state_dict(), net2.state_dict()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1:], runs[1][1:]):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(Network(LENET, input="32x32x3", seed=1).state_dict()["0.weight"],
                              Network(LENET, input="32x32x3", seed=2).state_dict()["0.weight"])


def test_dropout_is_inverted_and_off_in_evaluation():
    from convnet.engines.numpy.dropout import Dropout
    layer = Dropout(0.3, np.random.default_rng(0))
    x = np.ones((200, 10, 10, 5))
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert np.array_equal(layer.backward(np.ones_like(x)), y)  # same mask, same scale
    assert layer.forward(x, training=False) is x
    # PyTorch's rule is the same: survivors scaled by 1/(1 − p), nothing at evaluation.
    t = torch.nn.functional.dropout(torch.ones(1000), 0.3, training=True)
    assert np.allclose(np.unique(t.numpy()), [0.0, 1 / 0.7])


@pytest.mark.parametrize("scheme", ["he", "xavier", "normal"])
def test_initialisers_have_their_spread(scheme):
    net = Network("conv(64,5) relu fc(200)", input="32x32x16", seed=0, init=scheme)
    w = net.state_dict()["0.weight"]  # fan_in 16·25 = 400, fan_out 64·25 = 1600
    expected = {"he": np.sqrt(2 / 400), "xavier": np.sqrt(2 / (400 + 1600)),
                "normal": 0.01}[scheme]
    assert abs(w.std() - expected) / expected < 0.02
    assert np.all(net.state_dict()["0.bias"] == 0)


def test_auto_init_is_he_before_relu_and_xavier_elsewhere():
    net = Network("conv(64,5) batchnorm relu conv(64,5) tanh", input="32x32x16", seed=0)
    state = net.state_dict()
    assert abs(state["0.weight"].std() - np.sqrt(2 / 400)) < 0.002
    assert abs(state["3.weight"].std() - np.sqrt(2 / (1600 + 1600))) < 0.002


def test_uint8_images_are_scaled_and_grey_batches_accepted():
    net = Network("conv(2,3) fc(3)", input="8x8x1", seed=0)
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8), dtype=np.uint8)
    assert np.allclose(net.predict(x), net.predict(x[..., None].astype(np.float32) / 255),
                       atol=1e-6)


def test_schedule_hook_sets_the_learning_rate_each_step():
    seen = []
    net = Network("fc(3)", input="2x2x1", seed=0, schedule=lambda step: seen.append(step) or
                  0.1 / (step + 1))
    x, y = batch((2, 2, 1), n=4, classes=3)
    for _ in range(3):
        net.train_step(x, y)
    assert seen == [0, 1, 2] and net.lr == pytest.approx(0.1 / 3)


def test_diverging_loss_stops_with_advice_and_keeps_the_weights():
    net = Network("fc(3)", input="2x2x1", seed=0, lr=1e30)
    x, y = batch((2, 2, 1), n=4, classes=3)
    x *= 1e5
    with pytest.raises(TrainingDiverged, match="smaller learning rate"):
        for _ in range(20):
            net.train_step(x, y)
            before = net.state_dict()
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((2, 8, 8, 3)), [0, 1], "images must be an N×8×8×1 array (N×H×W×C), got shape "
                                     "2×8×8×3"),
    (np.zeros((8, 8, 1)), [0], "got shape 8×8×1"),
    (np.zeros((0, 8, 8, 1)), [], "the batch of images is empty"),
    (np.zeros((2, 8, 8, 1), np.int32), [0, 1], "images must be uint8 (0–255) or floating point, "
                                               "got int32"),
    (np.full((2, 8, 8, 1), np.nan), [0, 1], "the images contain NaN or infinity"),
    (np.full((2, 8, 8, 1), np.inf), [0, 1], "the images contain NaN or infinity"),
    (np.zeros((2, 8, 8, 1)), [0, 3], "label 3 is out of range: this network has 3 classes, "
                                     "numbered 0 to 2"),
    (np.zeros((2, 8, 8, 1)), [0, -1], "label -1 is out of range"),
    (np.zeros((2, 8, 8, 1)), [0, 1, 2], "labels must be a 1-D array of 2 class numbers, got "
                                        "shape 3"),
    (np.zeros((2, 8, 8, 1)), [0.0, 1.0], "labels must be whole numbers (class indices), got "
                                         "float64"),
])
def test_bad_input_names_what_was_expected(x, y, message):
    net = Network("conv(2,3) fc(3)", input="8x8x1", seed=0)
    with pytest.raises(UserError) as info:
        net.train_step(x, np.asarray(y))
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"engine": "tensorflow"}, "unknown engine 'tensorflow'"),
    ({"dtype": "float16"}, "unknown dtype 'float16'"),
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
    ({"lr": -1.0}, "the learning rate must be positive"),
    ({"init": "zeros"}, "unknown initialiser 'zeros'"),
    ({"input": "8x8"}, "input shape '8x8' is not HxWxC"),
    ({"label_smoothing": 1.5}, "label smoothing must be in [0, 1)"),
    ({"normalization": ((0.5, 0.5), (1.0, 1.0))}, "normalisation needs 1 mean and 1 std"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(UserError) as info:
        Network("conv(2,3) fc(3)", **{"input": "8x8x1", **kwargs})
    assert message in str(info.value)


def test_a_state_that_does_not_fit_is_refused():
    net = Network("conv(2,3) fc(3)", input="8x8x1")
    state = net.state_dict()
    with pytest.raises(UserError, match="missing 0.bias"):
        net.load_state_dict({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(UserError, match=r"state 0.weight has shape \(3, 1, 3, 3\)"):
        net.load_state_dict({**state, "0.weight": np.zeros((3, 1, 3, 3))})
    with pytest.raises(UserError, match="NaN"):
        net.load_state_dict({**state, "0.bias": np.full(2, np.nan)})


@pytest.mark.parametrize("text", [LENET, WITH_BN, RESIDUAL, RELU_POOLS])
def test_a_seed_gives_the_same_network_in_both_engines(text):
    shape = {LENET: (32, 32, 3), RELU_POOLS: (17, 17, 3)}.get(text, (16, 16, 3))
    numpy_net = Network(text, input=shape, seed=5, engine="numpy")
    torch_net = Network(text, input=shape, seed=5, engine="torch")
    a, b = numpy_net.state_dict(), torch_net.state_dict()
    assert list(a) == list(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    x, _ = batch(shape, n=4)
    assert np.abs(numpy_net.predict(x) - torch_net.predict(x)).max() < 1e-5


def test_auto_init_looks_past_a_block_to_the_relu_after_it():
    # the last conv of a block's layers feeds batch norm, the addition, then the ReLU after the
    # block: He; the fc at the end feeds the softmax: Xavier
    from convnet.engines.numpy.init import feeds_relu
    from convnet.spec import parse

    block = parse("residual(conv(4,3,pad=1) batchnorm) relu fc(3)").layers[0]
    inner_conv_follows = list(block.inner[1:]) + list(parse("relu fc(3)").layers)
    assert feeds_relu(inner_conv_follows)
    net = Network("residual(conv(4,3,pad=1,bias=false) batchnorm) relu fc(3)", input="8x8x4",
                  seed=0)
    weight = net.state_dict()["0.inner.0.weight"]
    assert abs(weight.std() - (2 / 36) ** 0.5) < 0.05  # He: N(0, 2/fan_in), fan_in = 4·3·3


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_both_engines_offer_what_an_engine_offers(engine):
    from convnet.engines.base import Engine

    net = Network(LENET, input="32x32x3", engine=engine)
    assert isinstance(net.engine, Engine)

    class Lacking:  # everything but apply
        name, model, lr = "x", None, 0.1
        logits = loss_and_grads = state_dict = load_state_dict = optimizer_state = \
            load_optimizer_state = rng_state = set_rng_state = lambda self, *a: None

    assert not isinstance(Lacking(), Engine)


@pytest.mark.parametrize("shape", [(10, 10, 3), (8, 8, 1), (6, 6, 5)])
def test_the_torch_engine_takes_images_channels_last_on_the_cpu(shape):
    """N×H×W×C images go into the network as the channels-last view of the same memory (no copy
    into N×C×H×W, which made colour images 25–45% slower in oneDNN), whatever the weights'
    layout, and the numbers are those of PyTorch's own module on an N×C×H×W copy."""
    description = "conv(4,3,pad=same) batchnorm relu pool(2) fc(3)"
    rng = np.random.default_rng(1)
    x = rng.random((6, *shape), dtype=np.float32)
    y = rng.integers(0, 3, 6)
    for channels_last in (False, True):
        net = Network(description, input=shape, engine="torch", seed=2,
                      speed=SpeedOptions(channels_last=channels_last))
        t = net.engine._tensor(x)
        assert t.shape == (6, shape[2], *shape[:2])
        assert t.is_contiguous(memory_format=torch.channels_last)
        assert t.data_ptr() == torch.from_numpy(x).data_ptr()  # the images' own memory
        model = build_sequential(net.spec, shape)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
        model.train()
        reference = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        loss, grads, logits = net.engine.loss_and_grads(x, y)
        assert rel_err(logits, reference.detach().numpy()) < 1e-5
        expected = F.cross_entropy(reference, torch.from_numpy(y))
        assert abs(loss - expected.item()) < 1e-5


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@settings(max_examples=6, deadline=None)
@given(batch=st.integers(1, 23), tta_shift=st.sampled_from([0, 1]))
def test_evaluation_in_pieces_gives_the_scores_of_one_batch(engine, batch, tta_shift):
    """Network.logits splits the images into evaluation batches (eval_batch, or batch_size):
    every split gives the scores of the whole batch at once."""
    net = Network(WITH_BN, input="16x16x2", engine=engine, dtype="float64", seed=2,
                  tta_shift=tta_shift)
    x = np.random.default_rng(batch).random((23, 16, 16, 2))
    whole = net.logits(x, batch_size=23)
    assert whole.shape == (23, 5)
    np.testing.assert_allclose(net.logits(x, batch_size=batch), whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.logits(x), whole, rtol=1e-10, atol=1e-12)


def test_the_evaluation_batch_follows_the_memory_the_activations_take():
    """eval_batch: as many images as the estimate (twice every layer's output, and the image in
    each copy an evaluation makes of it: four more with test-time shifts) fits in EVAL_MEMORY,
    at least 1 and at most 1,000."""
    import math

    from convnet import network

    for text, shape in [(LENET, "32x32x3"), ("conv(64,3,pad=same) relu fc(10)", "224x224x3"),
                        ("conv(512,3,pad=same) conv(512,3,pad=same) fc(2)", "512x512x3"),
                        ("conv(4,8,stride=8) relu globalavgpool fc(2)", "224x224x3"),
                        ("fc(10)", "4x4x1")]:
        net = Network(text, input=shape, engine="numpy")
        outputs = sum(math.prod(s.output) for row in net.shapes for s in row.walk())
        batches = []
        for shift in (0, 1):
            net.tta_shift = shift
            per_image = 4 * (2 * outputs + (network.EVAL_INPUT_COPIES + 4 * shift)
                             * math.prod(net.input_shape))
            assert net.eval_batch == max(1, min(1000, network.EVAL_MEMORY // per_image))
            assert net.eval_batch == 1 or net.eval_batch * per_image <= network.EVAL_MEMORY
            batches.append(net.eval_batch)
        assert 1 <= batches[1] <= batches[0] <= 1000


@pytest.mark.parametrize("engine, short", [
    ("numpy", MemoryError),
    ("torch", lambda: RuntimeError("DefaultCPUAllocator: not enough memory: you tried to "
                                   "allocate 123456 bytes.")),
    ("torch", lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))])
def test_an_evaluation_batch_that_finds_memory_short_goes_on_in_halves(engine, short,
                                                                       monkeypatch):
    """Where the default evaluation batch meets MemoryError, logits goes on with half as many
    images (and keeps to that), to the same scores; a batch_size the caller chose is theirs."""
    net = Network(WITH_BN, input="16x16x2", engine=engine, dtype="float64", seed=2)
    x = np.random.default_rng(0).random((40, 16, 16, 2))
    whole = net.logits(x, batch_size=40)
    real = net.engine.logits
    sizes: list[int] = []

    def short_of_memory(images):
        sizes.append(len(images))
        if len(images) > 6:
            raise short()
        return real(images)

    monkeypatch.setattr(net.engine, "logits", short_of_memory)
    np.testing.assert_allclose(net.logits(x), whole, rtol=1e-10, atol=1e-12)
    assert sum(size for size in sizes if size <= 6) == 40 and 1 <= net.eval_batch <= 6
    sizes.clear()
    np.testing.assert_allclose(net.logits(x), whole, rtol=1e-10, atol=1e-12)
    assert max(sizes) <= 6  # the lowered batch is kept
    with pytest.raises(Exception) as refused:
        net.logits(x, batch_size=20)
    assert isinstance(refused.value, MemoryError | RuntimeError)


def test_an_evaluation_error_that_is_not_memory_is_not_retried(monkeypatch):
    net = Network(WITH_BN, input="16x16x2", engine="numpy", dtype="float64", seed=2)
    calls = []

    def broken(images):
        calls.append(len(images))
        raise RuntimeError("something else")

    monkeypatch.setattr(net.engine, "logits", broken)
    with pytest.raises(RuntimeError, match="something else"):
        net.logits(np.zeros((40, 16, 16, 2)))
    assert len(calls) == 1
