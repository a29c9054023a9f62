"""Every layer of the NumPy engine against PyTorch autograd, in float64 and float32."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet import shapes, spec
from convnet.errors import GeometryError
from reference import check_layer

DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("text, shape", [
    ("conv(4,3)", (7, 7, 2)),
    ("conv(6,5)", (32, 32, 3)),
    ("conv(3,3,stride=2)", (9, 9, 2)),
    ("conv(5,3,pad=1)", (6, 6, 3)),
    ("conv(4,2,stride=2,pad=1)", (6, 8, 3)),
    ("conv(3,3,pad=same)", (5, 7, 2)),
    ("conv(3,4,pad=same)", (6, 6, 2)),  # even kernel: uneven padding
    ("conv(2,2x5,pad=same)", (6, 7, 1)),
    ("conv(3,3x2,stride=3x2,pad=2)", (8, 8, 2)),
    ("conv(2,3,bias=false)", (5, 5, 4)),
    ("conv(2,3,stride=2,floor=true)", (8, 8, 1)),
    ("conv(7,1)", (4, 4, 5)),
    ("pool(2)", (8, 6, 3)),
    ("pool(3,stride=2)", (7, 9, 2)),
    ("pool(2x3)", (6, 9, 2)),
    ("pool(3,stride=1)", (5, 5, 2)),
    ("pool(2,floor=true)", (7, 7, 2)),
    ("avgpool(2)", (6, 6, 3)),
    ("avgpool(3,stride=2)", (7, 7, 2)),
    ("avgpool(2x3,stride=1)", (5, 6, 2)),
    ("relu", (5, 5, 3)),
    ("sigmoid", (5, 5, 3)),
    ("tanh", (5, 5, 3)),
    ("batchnorm", (5, 5, 3)),
    ("batchnorm(eps=0.001,momentum=0.3)", (4, 6, 2)),
    ("flatten", (3, 4, 5)),
    ("pool(3,stride=2,pad=1)", (7, 7, 2)),  # ResNet's: padded cells are never chosen
    ("pool(3,stride=2,pad=1,floor=true)", (8, 9, 2)),
    ("pool(2,pad=1)", (6, 6, 3)),
    ("avgpool(3,stride=2,pad=1)", (7, 7, 2)),  # padded zeros counted, as PyTorch's default
    ("avgpool(2x4,stride=1,pad=1)", (5, 6, 2)),
    # (a conv's bias before batch norm has a zero gradient: no bias there, as in ResNet)
    ("residual(conv(4,3,pad=1,bias=false) batchnorm relu conv(4,3,pad=1,bias=false) batchnorm)",
     (6, 6, 4)),
    ("residual(conv(6,3,stride=2,pad=1) relu conv(6,3,pad=1),shortcut=conv(6,1,stride=2,"
     "bias=false) batchnorm)", (7, 7, 3)),
    ("residual(relu tanh)", (4, 5, 2)),
    ("residual(residual(conv(3,3,pad=same) relu) conv(3,1))", (5, 5, 3)),
    ("residual(pool(3,stride=1,pad=1) relu,shortcut=avgpool(3,stride=1,pad=1))", (5, 5, 2)),
])
def test_spatial_layer_matches_pytorch(text, shape, dtype):
    check_layer(text, shape, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("text, features", [
    ("fc(7)", 12), ("fc(3,bias=false)", 5), ("batchnorm", 6), ("relu", 9), ("tanh", 4),
])
def test_vector_layer_matches_pytorch(text, features, dtype):
    check_layer(text, (features,), batch=5, dtype=dtype)


def test_global_average_pooling_matches_pytorch():
    import torch

    for dtype in DTYPES:
        for shape in [(5, 6, 3), (1, 1, 4), (7, 7, 8)]:
            check_layer("globalavgpool", shape, dtype=dtype)
    # the torch engine's module against ResNet's AdaptiveAvgPool2d(1) and flatten
    from convnet.engines.torch.build import build_sequential
    module = build_sequential(spec.parse("globalavgpool"), (5, 6, 3))[0].double()
    x = torch.randn(4, 3, 5, 6, dtype=torch.float64)
    reference = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    assert float((module(x) - reference(x)).abs().max()) <= 1e-15


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout2d_drops_whole_maps_as_pytorch_does(dtype):
    """Masks are random, so the engines cannot draw the same ones: the NumPy engine's output
    must be the input times a mask that is constant over each map of each image, of values
    0 or 1/(1 − p), dropping about p of the maps; and PyTorch's Dropout2d, given that mask,
    gives the same output and gradient."""
    import torch

    from convnet.engines.numpy.dropout import Dropout2d
    p, rng = 0.3, np.random.default_rng(0)
    layer = Dropout2d(p, np.random.default_rng(1))
    x = rng.standard_normal((16, 5, 5, 64)).astype(dtype) + 3  # C×H×W×N, no zeros
    y = layer.forward(x, training=True)
    mask = y / x
    assert np.allclose(mask, mask[:, :1, :1, :])  # one value per map of each image
    scale = 1 / (1 - p)
    assert np.all(np.isclose(mask, 0) | np.isclose(mask, scale, rtol=1e-5))
    assert 0.2 < np.mean(mask[:, 0, 0, :] == 0) < 0.4
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy.copy())
    xt = torch.from_numpy(x.transpose(3, 0, 1, 2).copy()).requires_grad_(True)  # N×C×H×W
    mask_t = torch.from_numpy(mask[:, :1, :1, :].transpose(3, 0, 1, 2).copy())
    yt = xt * mask_t  # what PyTorch's dropout2d computes for this mask
    yt.backward(torch.from_numpy(dy.transpose(3, 0, 1, 2).copy()))
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert np.abs(yt.detach().numpy() - y.transpose(3, 0, 1, 2)).max() <= tol * 4
    assert np.abs(xt.grad.numpy() - dx.transpose(3, 0, 1, 2)).max() <= tol * 4
    assert layer.forward(x, training=False) is x  # untouched at test time
    # and PyTorch's own module zeroes whole maps at the same rate and scale
    torch.manual_seed(0)
    out = torch.nn.Dropout2d(p)(torch.ones(64, 16, 5, 5, dtype=torch.float64))
    values = out.reshape(64, 16, 25)
    assert torch.all(values == values[:, :, :1])  # whole maps
    assert all(v == 0 or abs(v - scale) < 1e-12 for v in torch.unique(out).tolist())


@pytest.mark.parametrize("text", ["batchnorm", "pool(3,stride=2)", "avgpool(2)", "conv(3,3)"])
def test_evaluation_mode_matches_pytorch(text):
    check_layer(text, (6, 6, 2) if text != "pool(3,stride=2)" else (7, 7, 2), training=False)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    # Windows full of equal values (as after a ReLU): PyTorch picks the first in row-major order.
    x = np.zeros((2, 4, 4, 3))
    x[0, 0, 0, 0] = x[0, 1, 1, 0] = 5.0  # a tie inside one window
    x[1, :, :, 1] = 2.0
    check_layer("pool(2)", (4, 4, 3), x=x)
    check_layer("pool(3,stride=1)", (4, 4, 3), x=x)


def test_lecture_max_pool_example():
    # The lecture's 4×4 single-depth slice: 2×2 max pooling with stride 2 gives 6, 8, 3, 4.
    from convnet.engines.numpy.pool import MaxPool2D
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], float)
    y = MaxPool2D((2, 2), (2, 2)).forward(x[None, :, :, None], training=False)  # C×H×W×N
    assert y[0, :, :, 0].tolist() == [[6, 8], [3, 4]]


def test_lecture_one_number_is_relu_of_w_dot_x_plus_b():
    # At each position a filter yields one number: W·x + b over its 5×5×3 window.
    from convnet.engines.numpy.conv import Conv2D
    rng = np.random.default_rng(1)
    layer = Conv2D(3, 1, (5, 5), (1, 1), (0, 0, 0, 0), True, np.dtype(np.float64))
    layer.params["weight"][...] = rng.standard_normal((1, 3, 5, 5))
    layer.params["bias"][...] = 0.5
    x = rng.standard_normal((3, 32, 32, 1))  # the engine's C×H×W×N
    y = layer.forward(x, training=False)
    window = x[:, 10:15, 20:25, 0]  # C×5×5
    one_number = np.sum(layer.params["weight"][0] * window) + 0.5
    assert y.shape == (1, 28, 28, 1) and np.isclose(y[0, 10, 20, 0], one_number)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2), st.integers(3, 9), st.integers(3, 9), st.integers(1, 3),
       st.integers(1, 4), st.booleans())
def test_random_convs_match_pytorch(kh, kw, sh, sw, pad, h, w, c, k, same):
    text = f"conv({k},{kh}x{kw},pad=same)" if same else \
        f"conv({k},{kh}x{kw},stride={sh}x{sw},pad={pad},floor=true)"
    try:
        shapes.infer(spec.parse(text), (h, w, c))
    except GeometryError:
        return  # the filter is larger than the padded input: nothing to compare
    check_layer(text, (h, w, c), batch=2)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(3, 8), st.integers(3, 8), st.sampled_from(["pool", "avgpool"]),
       st.integers(0, 1))
def test_random_pools_match_pytorch(kh, kw, sh, sw, h, w, kind, pad):
    if pad > min(kh, kw) // 2:
        pad = 0
    text = f"{kind}({kh}x{kw},stride={sh}x{sw},pad={pad},floor=true)"
    if kh > h or kw > w:
        return
    # Small integers make ties common, which is where max pooling goes wrong.
    x = np.random.default_rng(kh * 7 + h).integers(0, 3, (2, h, w, 2)).astype(float)
    check_layer(text, (h, w, 2), x=x)


ROW_CASES = [("conv(6,5)", (32, 32, 3)), ("conv(4,3,stride=1x2)", (9, 9, 4)),
             ("conv(5,3x2,pad=1)", (7, 6, 6)), ("conv(3,4,pad=same)", (6, 6, 8)),
             ("conv(2,3,bias=false)", (5, 5, 3))]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("text, shape", ROW_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stack", [None, 1, 1000])
def test_convolution_by_kernel_rows_matches_pytorch(monkeypatch, text, shape, dtype, training,
                                                     stack):
    # Layers with few filters on large inputs compute by kernel rows; force it on small ones,
    # with chunks small enough that the weight gradient is summed over several of them; each
    # product for as many output rows as the engine stacks for these filters (2–6 here, the
    # last group of rows shorter where they don't divide the height), one, or all of them.
    from convnet.engines.numpy import conv
    monkeypatch.setattr(conv, "ROWS_MIN_DEPTH", 1)
    monkeypatch.setattr(conv, "ROWS_CHUNK", 7)
    monkeypatch.setattr(conv, "ROWS_PART_MIN", 3)  # the input gradient in several runs
    if stack is not None:  # filters × rows a product: one row, or every row at once
        monkeypatch.setattr(conv, "ROWS_STACK", stack)
    calls = []
    original = conv.conv_by_rows
    monkeypatch.setattr(conv, "conv_by_rows",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    check_layer(text, shape, dtype=dtype, training=training)
    assert calls, "the row algorithm was not used"


BLOCK_CASES = [("conv(5,3,pad=same)", (7, 6, 3)), ("conv(6,3,pad=same,bias=false)", (6, 6, 4)),
               ("conv(4,3x2,stride=2x1,pad=1)", (9, 7, 3)), ("conv(3,4,pad=same)", (6, 6, 5)),
               ("conv(8,2,stride=2)", (8, 8, 2)), ("conv(2,1)", (5, 4, 6))]


@pytest.mark.parametrize("budget", [1, 200, 900])
@pytest.mark.parametrize("text, shape", BLOCK_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_convolution_in_blocks_matches_pytorch(monkeypatch, text, shape, dtype, budget):
    # Each block's im2col matrix is at most BLOCK_BYTES: 1 byte makes every block one position,
    # 200 pieces of a row, 900 a few whole rows (float64 halves them); forward, the weight
    # gradient and both input gradients (the flipped kernel, K ≤ C; col2im otherwise, here in
    # blocks as well) are summed over the blocks.
    from convnet.engines.numpy import conv
    monkeypatch.setattr(conv, "BLOCK_BYTES", budget)
    monkeypatch.setattr(conv, "WHOLE_BYTES", 0)  # the input gradient in blocks too
    monkeypatch.setattr(conv, "ROWS_MAX_FILTERS", 0)  # im2col even for few filters or channels
    monkeypatch.setattr(conv, "ROWS_FEW_CHANNELS", 0)
    calls = []
    original = conv.blocks
    monkeypatch.setattr(conv, "blocks", lambda *a: calls.append(len(original(*a))) or original(*a))
    check_layer(text, shape, dtype=dtype, batch=3)
    assert max(calls) > 1, "the output was not split"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 6), st.integers(1, 50),
       st.sampled_from([4, 8]), st.integers(1, 5000))
def test_blocks_cover_the_output_once_in_order_within_the_budget(ho, wo, n, depth, itemsize,
                                                                  budget):
    from convnet.engines.numpy.conv import blocks
    parts = blocks(ho, wo, n, depth, itemsize, budget)
    assert parts[0].start == 0 and parts[-1].stop == ho * wo * n
    for before, after in zip(parts, parts[1:]):
        assert before.stop == after.start
    for part in parts:
        rows, width = part.h1 - part.h0, part.w1 - part.w0
        assert 0 <= part.h0 < part.h1 <= ho and 0 <= part.w0 < part.w1 <= wo
        assert rows == 1 or width == wo  # whole rows, or a piece of one row
        assert part.start == (part.h0 * wo + part.w0) * n
        assert part.stop - part.start == rows * width * n
        # within the budget, unless a single position is larger than it
        assert (part.stop - part.start) * depth * itemsize <= budget or rows == width == 1


@pytest.mark.parametrize("block", [1, 1000, 1 << 30])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 4, 7), (9,)])
def test_batch_norm_in_blocks_of_channels_matches_pytorch(monkeypatch, block, training, dtype,
                                                          shape):
    # A block of channels at a time, all of its passes while it is in the cache: one channel a
    # block, a few (2 of 7 in float64, 4 in float32, the last block shorter), or all at once;
    # maps (C×H×W×N) and vectors after an fc (D×N).
    from convnet.engines.numpy import batchnorm
    monkeypatch.setattr(batchnorm, "BLOCK_BYTES", block)
    check_layer("batchnorm", shape, dtype=dtype, training=training, batch=5)


@pytest.mark.parametrize("description, first_norm", [
    ("conv(6,3,pad=same,bias=false) pool(2) batchnorm relu conv(8,3,bias=false) batchnorm relu "
     "fc(12,bias=false) batchnorm relu fc(3)", 2),
    ("conv(4,3,pad=1) relu residual(conv(4,3,pad=1,bias=false) batchnorm relu conv(4,3,pad=1,"
     "bias=false) batchnorm) relu fc(3)", None),  # its batch norms are inside the block
])
def test_batch_norm_does_the_following_relus_work_to_the_bit(description, first_norm):
    # A batch norm followed by a ReLU takes max(0, ·) itself, training and predicting, and
    # applies the ReLU's slope in its backward; the ReLU passes values through. The same bits as
    # each layer doing its own work, and looking inside each layer's output is its own (the
    # batch norm's has negative values: the inspector shows it before the ReLU).
    from convnet import Network
    from convnet.engines.numpy import activation, batchnorm

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 10, 10, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 8)

    def run(fused: bool):
        net = Network(description, input=(10, 10, 3), engine="numpy", seed=2)
        layers = [layer for layer in net.engine.model.layers if layer is not None]
        layers += [inner for layer in layers if hasattr(layer, "paths")
                   for path in layer.paths.values() for inner in path if inner is not None]
        norms = [layer for layer in layers if isinstance(layer, batchnorm.BatchNorm)]
        relus = [layer for layer in layers if isinstance(layer, activation.ReLU)]
        assert any(norm.relu_after for norm in norms)  # the model linked them
        if not fused:
            for layer in norms:
                layer.relu_after = False
            for layer in relus:
                layer.done_before = False
        losses = [net.train_step(x, y) for _ in range(3)]
        seen = net.engine.model.activations(net.prepare_images(x))
        return losses, net.state_dict(), net.logits(x), seen

    (losses, state, logits, seen), unfused = run(True), run(False)
    assert losses == unfused[0]
    assert all(np.array_equal(state[k], unfused[1][k]) for k in state)
    assert np.array_equal(logits, unfused[2])
    outputs = [out for out, _ in seen if out is not None]
    assert all(np.array_equal(a, b) for a, b in zip(outputs, [o for o, _ in unfused[3]
                                                               if o is not None]))
    if first_norm is not None:  # batch norm, then ReLU
        assert (outputs[first_norm] < 0).any() and (outputs[first_norm + 1] >= 0).all()


@pytest.mark.parametrize("description, shape, fused_pools", [
    ("conv(6,5) relu pool(2) conv(8,3) relu pool(2) fc(3)", (16, 16, 3), 2),  # LeNet's way
    ("conv(4,3,pad=same) relu pool(3,stride=2) conv(5,3,pad=same) relu pool(2,pad=1) fc(3)",
     (17, 17, 3), 2),  # windows that overlap, padded ones
    ("relu pool(2) conv(4,3) relu pool(2) fc(3)", (12, 12, 2), 2),  # ties: few distinct values
    ("conv(4,3,pad=same,bias=false) batchnorm relu pool(2) fc(3)", (10, 10, 3), 0),  # the norm's
    ("conv(4,3,pad=1) residual(conv(4,3,pad=1) relu pool(3,stride=1,pad=1)) relu pool(2) fc(3)",
     (10, 10, 3), 2),  # in a block's path too
])
def test_max_pooling_does_the_preceding_relus_work_to_the_bit(description, shape, fused_pools):
    # A ReLU followed by max pooling passes values through and the pooling takes max(0, ·) of
    # each window's maximum (the same number: max commutes with max(0, ·)), its gradient
    # reaching the maximum only where that was > 0. The same bits as each layer doing its own
    # work, training and predicting; looking inside, each layer's output its own; and after a
    # batch norm the norm keeps the ReLU's work.
    from convnet import Network
    from convnet.engines.numpy import activation, conv, pool

    rng = np.random.default_rng(0)
    levels = 3 if description.startswith("relu") else 256  # few values: equal ones in a window
    x = rng.integers(0, levels, (8,) + shape, dtype=np.uint8)
    y = rng.integers(0, 3, 8)

    def run(fused: bool):
        net = Network(description, input=shape, engine="numpy", seed=2)
        layers = [layer for layer in net.engine.model.layers if layer is not None]
        layers += [inner for layer in layers if hasattr(layer, "paths")
                   for path in layer.paths.values() for inner in path if inner is not None]
        pools = [layer for layer in layers if isinstance(layer, pool.MaxPool2D)]
        assert sum(layer.relu_before for layer in pools) == fused_pools  # the model linked them
        if not fused:
            for layer in layers:
                if isinstance(layer, pool.MaxPool2D):
                    layer.relu_before = False
                if isinstance(layer, activation.ReLU):
                    layer.done_after = False
                if isinstance(layer, conv.Conv2D):
                    layer.pool_after = None
        losses = [net.train_step(x, y) for _ in range(3)]
        grads = {k: v.copy() for k, v in net.engine.model.named("grads").items()}
        seen = net.engine.model.activations(net.prepare_images(x))
        return losses, net.state_dict(), grads, net.logits(x), seen

    fused, unfused = run(True), run(False)
    assert fused[0] == unfused[0]
    for got, want in zip(fused[1:3], unfused[1:3]):
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
    assert np.array_equal(fused[3], unfused[3])
    outputs = [out for out, _ in fused[4]]
    assert all((a is None and b is None) or np.array_equal(a, b)
               for a, b in zip(outputs, [o for o, _ in unfused[4]]))
    if description.startswith("conv(6,5)"):  # the conv's output has negative values, the ReLU's not
        assert (outputs[0] < 0).any() and (outputs[1] >= 0).all()


def _numpy_net(description: str, shape: tuple[int, int, int], seed: int, handing: bool):
    """A NumPy-engine network and its convolutions: each handing its output to a max pooling
    after it as the model links them, or (handing False) keeping it (pool_after cleared)."""
    from convnet import Network
    from convnet.engines.numpy import conv
    net = Network(description, input=shape, engine="numpy", seed=seed)
    convs = [layer for layer in net.engine.model.layers if isinstance(layer, conv.Conv2D)]
    if not handing:
        for layer in convs:
            layer.pool_after = None
    return net, convs


# the blocks' budget as it is, one pooled row a block, and no room for a pooled row's matrix
# (large images: the convolution keeps its output whole, its blocks pieces of a row)
@pytest.mark.parametrize("budget", [None, "one row", "no room"])
@pytest.mark.parametrize("description, shape, handed", [
    ("conv(16,3,pad=same,bias=false) pool(2) batchnorm relu fc(3)", (12, 12, 1), 1),  # fast91's
    ("conv(8,3,pad=same) relu pool(2) conv(32,2,pad=same) relu pool(2) fc(3)", (12, 12, 1), 2),
    ("conv(16,3,pad=same) pool(2) conv(16,3,pad=1) pool(2) fc(3)", (12, 12, 1), 1),  # 145 deep
    ("conv(16,3,stride=2,pad=1) pool(3) fc(3)", (11, 11, 2), 1),  # 3×3 windows, a strided conv
    ("conv(16,2x3,pad=1) pool(2x1) relu fc(3)", (9, 8, 1), 1),  # not square; ReLU after
    ("conv(16,3) pool(2,floor=true) fc(3)", (9, 9, 1), 0),  # windows that leave a row out
    ("conv(16,3,pad=same) pool(3,stride=2) fc(3)", (9, 9, 1), 0),  # windows that overlap
    ("conv(16,3,pad=same) relu pool(2,pad=1) fc(3)", (8, 8, 1), 0),  # padded windows
    ("conv(16,3,pad=same) batchnorm relu pool(2) fc(3)", (8, 8, 1), 0),  # the norm's between
])
def test_a_convolution_hands_its_output_to_the_max_pooling(monkeypatch, description, shape,
                                                           handed, budget):
    # A convolution by im2col's blocks followed by a max pooling (a ReLU between or not) pools
    # each block of output rows as it makes it, and a first layer's weight gradient takes its
    # dy from the pooling a block at a time; predicting too: the same numbers as each layer
    # doing its own work, and looking inside each layer shows its own output. (Not
    # always the same bits: OpenBLAS's for a value can depend on how a product's positions are
    # split, and a small product takes other kernels.)
    from convnet.engines.numpy import conv, pool

    monkeypatch.setenv("CONVNET_NUMPY_CONV", "im2col")  # (shifted products pool nothing)
    if budget == "one row":
        monkeypatch.setattr(conv, "POOLED_BYTES", 1)
    elif budget == "no room":
        monkeypatch.setattr(conv, "BLOCK_BYTES", 64)
        handed = 0
    calls: list[str] = []
    for name in ("conv_blocks_pooled", "weight_grad_blocks_pooled"):  # count the ways taken
        monkeypatch.setattr(conv, name, lambda *a, f=getattr(conv, name), name=name:
                            calls.append(name) or f(*a))
    rng = np.random.default_rng(3)
    # (ties inside a window are choose's test's; here a tie broken by a last bit elsewhere
    # would send a gradient to another value)
    x = rng.integers(0, 256, (6,) + shape, dtype=np.uint8)
    y = rng.integers(0, 3, 6)

    def run(handing: bool):
        net, _ = _numpy_net(description, shape, 4, handing)
        calls.clear()
        losses = [net.train_step(x, y) for _ in range(3)]
        # each step, each pair; the first layer wants no input gradient: its dy by rows too
        assert calls.count("conv_blocks_pooled") == (3 * handed if handing else 0)
        assert calls.count("weight_grad_blocks_pooled") == (3 if handing and handed else 0)
        grads = {k: v.copy() for k, v in net.engine.model.named("grads").items()}
        calls.clear()
        logits = net.logits(x)  # predicting: handed over too, without the offsets
        assert calls.count("conv_blocks_pooled") == (handed if handing else 0)
        seen = net.engine.model.activations(net.prepare_images(x))
        assert all(layer.handed is None for layer in net.engine.model.layers
                   if isinstance(layer, pool.MaxPool2D))
        return losses, net.state_dict(), grads, logits, seen

    def same(a: np.ndarray, b: np.ndarray) -> bool:  # float32's rounding at most
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-7)

    handing, alone = run(True), run(False)
    assert np.allclose(handing[0], alone[0], rtol=1e-6)
    for got, want in zip(handing[1:3], alone[1:3]):
        assert got.keys() == want.keys() and all(same(got[k], want[k]) for k in got)
    assert same(handing[3], alone[3])
    assert all((a is None and b is None) or same(a, b)
               for (a, _), (b, _) in zip(handing[4], alone[4]))


@pytest.mark.parametrize("description, shape, laid", [
    ("conv(6,5) relu pool(2) conv(8,3) relu pool(2) fc(3)", (16, 16, 3), (1, 1)),  # LeNet's way;
    # the second wants its input gradient, from dy as it lies
    ("conv(4,3,pad=same) pool(2) batchnorm relu fc(3)", (12, 12, 2), (1,)),  # no ReLU between
    ("conv(3,3,pad=same,bias=false) relu pool(2) fc(3)", (10, 10, 3), (1,)),  # no bias
    ("conv(6,3,pad=same) relu pool(3,stride=2) fc(3)", (11, 11, 2), (0,)),  # overlapping windows
    ("conv(6,3) relu pool(2,pad=1) fc(3)", (10, 10, 2), (0,)),  # padded windows
    ("conv(6,5) relu fc(3)", (12, 12, 3), None),  # no pooling: the output turned round
])
def test_stacked_kernel_rows_leave_their_output_row_first_to_the_max_pooling(
        monkeypatch, description, shape, laid):
    # A convolution by kernel rows with few filters computes neighbouring output rows in one
    # product, its output laid out row-first (Ho × K × Wo·N); with a max pooling after it, it
    # hands that output over as it lies (the bias a start the products add to) and, where the
    # windows tile it, the pooling gives the gradient back laid out so: neither turned round.
    # The same bits as turning them round, training and predicting; looking inside, the same.
    from convnet.engines.numpy import conv

    monkeypatch.setattr(conv, "ROWS_MIN_DEPTH", 1)
    outputs: list[bool] = []
    gradients: list[bool] = []
    by_rows, grads_by_rows = conv.conv_by_rows, conv.weight_grad_by_rows

    def making(*a, **k):
        y = by_rows(*a, **k)
        outputs.append(y.ndim == 3 and conv.rows_first(y.reshape(*y.shape[:2], -1, 1))
                       is not None)
        return y

    def taking(flat, dy, *a):
        gradients.append(conv.rows_first(dy) is not None)
        return grads_by_rows(flat, dy, *a)

    monkeypatch.setattr(conv, "conv_by_rows", making)
    monkeypatch.setattr(conv, "weight_grad_by_rows", taking)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (6,) + shape, dtype=np.uint8)
    y = rng.integers(0, 3, 6)

    def run(handing: bool):
        net, convs = _numpy_net(description, shape, 3, handing)
        assert all(layer.how(np.dtype(np.float32)) == "rows" for layer in convs)
        outputs.clear(), gradients.clear()
        losses = [net.train_step(x, y) for _ in range(2)]
        made, given = list(outputs), list(gradients)
        grads = {k: v.copy() for k, v in net.engine.model.named("grads").items()}
        outputs.clear()
        logits = net.logits(x)
        predicted = list(outputs)
        seen = net.engine.model.activations(net.prepare_images(x))
        return (losses, net.state_dict(), grads, logits, seen), (made, given, predicted)

    (handing, ways), (alone, alone_ways) = run(True), run(False)
    count = len(ways[2])
    if laid is None:
        assert ways == alone_ways == ([False] * 2 * count, [False] * 2 * count, [False] * count)
    else:
        assert ways[0] == [True] * 2 * count and ways[2] == [True] * count  # handed as it lies
        assert ways[1] == [bool(g) for g in laid[::-1]] * 2  # given back so (backward: last first)
        assert not any(alone_ways[0] + alone_ways[1] + alone_ways[2])
    assert handing[0] == alone[0]
    for got, want in zip(handing[1:3], alone[1:3]):
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
    assert np.array_equal(handing[3], alone[3])
    assert all((a is None and b is None) or np.array_equal(a, b)
               for (a, _), (b, _) in zip(handing[4], alone[4]))


def test_max_pool_choices_match_pytorch_with_ties_and_a_relu_before():
    # choose() finds the maximum, then the first offset holding it; with a ReLU taken first,
    # nothing is chosen where the whole window is ≤ 0. Against PyTorch's max_pool2d indices.
    import torch
    from convnet.engines.numpy.pool import NONE_CHOSEN, choose
    rng = np.random.default_rng(5)
    for kernel in [(2, 2), (3, 3), (2, 3), (1, 2), (1, 1)]:
        x = rng.integers(-2, 3, (3, kernel[0] * 4, kernel[1] * 3, 5)).astype(np.float32)
        shape = (3, 4, 3, 5)
        for relu in (False, True):
            best, which = np.empty(shape, np.float32), np.empty(shape, np.uint8)
            choose(x, best, which, kernel, relu)
            t = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 0, 1, 2)))  # N×C×H×W
            values, index = torch.nn.functional.max_pool2d(
                torch.relu(t) if relu else t, kernel, return_indices=True)
            assert np.array_equal(best, values.numpy().transpose(1, 2, 3, 0))
            # PyTorch's index is into the map: turn it into the offset inside the window
            rows, cols = index // x.shape[2], index % x.shape[2]
            offset = (rows % kernel[0]) * kernel[1] + cols % kernel[1]
            want = offset.numpy().transpose(1, 2, 3, 0).astype(np.uint8)
            if relu:
                want[values.numpy().transpose(1, 2, 3, 0) <= 0] = NONE_CHOSEN
            assert np.array_equal(which, want)


def test_each_convolution_takes_the_algorithm_its_shapes_call_for(monkeypatch):
    from convnet import cpu
    from convnet.engines.numpy import blas
    from convnet.engines.numpy.conv import Conv2D
    f32 = np.dtype(np.float32)
    lenet = Conv2D(3, 6, (5, 5), (1, 1), (0, 0, 0, 0), True, f32)
    assert lenet.how(f32) == "rows"  # LeNet's conv(6,5) on 32x32x3, batch 128
    lenet2 = Conv2D(6, 16, (5, 5), (1, 1), (0, 0, 0, 0), True, f32)
    assert lenet2.how(f32) == "rows"  # its conv(16,5): few channels, 150 deep
    colour = Conv2D(3, 32, (3, 3), (1, 1), (1, 1, 1, 1), True, f32)
    assert colour.how(f32) == "im2col"  # 3×3×3: windows of 27 values
    assert Conv2D(3, 64, (5, 5), (1, 1), (2, 2, 2, 2), True, f32).how(f32) \
        == "rows"  # 5×5×3: 75
    first = Conv2D(1, 32, (3, 3), (1, 1), (1, 1, 1, 1), False, f32)
    assert first.how(f32) == "im2col"  # one input channel: products of depth 1
    strided = Conv2D(32, 64, (3, 3), (2, 2), (1, 1, 1, 1), False, f32)
    assert strided.how(f32) == "im2col"  # stride 2: the windows are no runs
    wide = Conv2D(32, 64, (3, 3), (1, 1), (1, 1, 1, 1), True, f32)
    shifted = "shifted" if blas.gemm(f32) is not None else "im2col"
    monkeypatch.setenv("CONVNET_NUMPY_CONV", "shifted")
    assert wide.how(f32) == shifted  # best's second conv
    assert strided.how(f32) == first.how(f32) == "im2col"
    monkeypatch.setenv("CONVNET_NUMPY_CONV", "im2col")
    assert wide.how(f32) == "im2col"
    monkeypatch.delenv("CONVNET_CPU_FLAGS", raising=False)
    monkeypatch.delenv("CONVNET_NUMPY_CONV")  # the CPU decides: shifted where AVX2 is the
    # widest or AVX-512 is AMD's (measured faster on both), im2col on Intel's AVX-512 (not yet)
    for vendor, flags, expected in (("AuthenticAMD", "avx2 fma", shifted),
                                    ("GenuineIntel", "avx2 fma", shifted),
                                    ("AuthenticAMD", "avx2 avx512f avx512_bf16", shifted),
                                    ("GenuineIntel", "avx2 avx512f avx512_bf16", "im2col"),
                                    ("GenuineIntel", "avx2 avx512f amx_bf16", "im2col"),
                                    ("", "avx2 avx512f", "im2col")):
        monkeypatch.setattr(cpu, "_read", lambda vendor=vendor, flags=flags: cpu.CPU(
            "a CPU", frozenset(flags.split()), 2, vendor, 25 if vendor == "AuthenticAMD" else 6))
        cpu.this_cpu.cache_clear()
        assert wide.how(f32) == expected, (vendor, flags)
    cpu.this_cpu.cache_clear()
    monkeypatch.setenv("CONVNET_NUMPY_CONV", "shifted")
    monkeypatch.setattr(blas, "_controls", lambda: None)  # another BLAS: no shifted products
    assert wide.how(f32) == "im2col"


def _needs_gemm():
    from convnet.engines.numpy import blas
    if blas.gemm(np.float64) is None or blas.gemm(np.float32) is None:
        pytest.skip("this NumPy's BLAS is not an OpenBLAS whose product convnet can call")


@pytest.fixture
def shifted(monkeypatch):
    """Shifted products wherever they can run, on any CPU, with no size floor."""
    _needs_gemm()
    from convnet.engines.numpy import conv
    monkeypatch.setenv("CONVNET_NUMPY_CONV", "shifted")
    monkeypatch.setattr(conv, "SHIFTED_MIN_CHANNELS", 1)
    return conv


SHIFTED_CASES = [("conv(5,3,pad=same)", (7, 6, 3)), ("conv(6,3,pad=same,bias=false)", (6, 6, 4)),
                 ("conv(4,3x2,pad=1)", (9, 7, 3)), ("conv(3,4,pad=same)", (6, 6, 5)),
                 ("conv(4,1)", (5, 4, 6)), ("conv(2,5x3,pad=2)", (8, 6, 2)),
                 ("conv(3,2)", (5, 5, 2)), ("conv(3,3,pad=3)", (4, 4, 3))]  # (P > F − 1)


@pytest.mark.parametrize("chunk", [5, 4096])
@pytest.mark.parametrize("text, shape", SHIFTED_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_convolution_by_shifted_products_matches_pytorch(monkeypatch, shifted, text, shape, dtype,
                                                        chunk):
    # Forced on small layers (any number of channels), with runs of 5 positions: each output row
    # in pieces, the weight gradient summed over several groups of them.
    conv = shifted
    monkeypatch.setattr(conv, "SHIFTED_CHUNK", chunk)
    calls = []
    original = conv.conv_shifted
    monkeypatch.setattr(conv, "conv_shifted", lambda *a: calls.append(1) or original(*a))
    check_layer(text, shape, dtype=dtype, batch=3)
    assert calls, "the shifted products were not used"


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 3), st.integers(3, 9),
       st.integers(3, 9), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.integers(1, 40), st.booleans())
def test_random_shifted_convolutions_match_pytorch(kh, kw, pad, h, w, c, k, batch, chunk, bias):
    _needs_gemm()
    from convnet.engines.numpy import conv
    text = f"conv({k},{kh}x{kw},pad={pad},bias={str(bias).lower()})"
    try:
        shapes.infer(spec.parse(text), (h, w, c))
    except GeometryError:
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVNET_NUMPY_CONV", "shifted")
        patch.setattr(conv, "SHIFTED_MIN_CHANNELS", 1)
        patch.setattr(conv, "SHIFTED_CHUNK", chunk)
        check_layer(text, (h, w, c), batch=batch)


def test_shifted_products_give_the_same_bits_on_any_number_of_threads(monkeypatch, shifted):
    """The weight gradient's runs are summed in fixed groups, so 1 or 3 threads differ in
    nothing: a whole network trained for a few steps, every weight compared."""
    from convnet import Network
    from convnet.engines.numpy import parallel
    conv = shifted
    monkeypatch.setattr(conv, "SHIFTED_CHUNK", 6)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (10, 8, 8, 4), dtype=np.uint8)
    y = rng.integers(0, 3, 10)
    text = ("conv(6,3,pad=same,bias=false) batchnorm relu conv(5,3,pad=same) relu pool(2) "
            "fc(3)")

    def run(threads: int):
        monkeypatch.setenv("CONVNET_NUMPY_THREADS", str(threads))
        monkeypatch.setattr(parallel, "MIN_VALUES", 1 if threads > 1 else 10 ** 12)
        monkeypatch.setattr(parallel, "MIN_SPREAD", 0 if threads > 1 else 10 ** 12)
        net = Network(text, input=(8, 8, 4), engine="numpy", seed=2)
        calls = []
        original = conv.weight_grad_shifted
        monkeypatch.setattr(conv, "weight_grad_shifted",
                            lambda *a: calls.append(1) or original(*a))
        losses = [net.train_step(x, y) for _ in range(3)]
        assert calls
        return losses, net.state_dict()

    one, three = run(1), run(3)
    assert one[0] == three[0]
    assert all(np.array_equal(one[1][name], three[1][name]) for name in one[1])


@pytest.mark.parametrize("kernel", [(3, 3), (2, 4), (5, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_products_over_rows_first_maps_equal_the_direct_sums(dtype, kernel):
    """conv_shifted and weight_grad_shifted read the padded input laid out row-first (pad_rows:
    Hp × C × Wp × N), each product kh·C deep: both equal the sums over kernel offsets written
    out, and an input that is not compact is refused rather than read wrongly."""
    _needs_gemm()
    from convnet.engines.numpy import conv
    rng = np.random.default_rng(3)
    (kh, kw), c, k, h, w, n = kernel, 5, 4, 6, 7, 3
    x = rng.standard_normal((c, h, w, n)).astype(dtype)
    pads = (kh // 2, (kh - 1) // 2, kw // 2, (kw - 1) // 2)
    xp = conv.pad_maps(x, pads)  # channel-first, for the sums
    xq = conv.pad_rows(x, pads)
    assert np.array_equal(xq, xp.transpose(1, 0, 2, 3))
    weight = rng.standard_normal((k, c, kh, kw)).astype(dtype)
    y = conv.conv_shifted(xq, conv.shifted_weights(weight), h, w, None).reshape(k, h, w, n)
    direct = sum(np.einsum("kc,chwn->khwn", weight[:, :, i, j], xp[:, i:i + h, j:j + w])
                 for i in range(kh) for j in range(kw))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, direct, rtol=tol, atol=tol)
    dy = rng.standard_normal((k, h * w * n)).astype(dtype)
    d_w = conv.weight_grad_shifted(xq, dy, kh, kw, h, w).reshape(kw, kh, c, k)
    d_w = d_w.transpose(0, 3, 1, 2)  # (kw, K, kh, C), as direct_w
    d4 = dy.reshape(k, h, w, n)
    direct_w = np.stack([np.stack([np.einsum("khwn,chwn->kc", d4, xp[:, i:i + h, j:j + w])
                                   for i in range(kh)], axis=1) for j in range(kw)])
    np.testing.assert_allclose(d_w, direct_w, rtol=tol, atol=tol * 10)
    wide = np.zeros(xq.shape[:3] + (n + 1,), dtype)[..., :n]
    wide[...] = xq
    with pytest.raises(ValueError, match="compact"):
        conv.conv_shifted(wide, conv.shifted_weights(weight), h, w, None)
    with pytest.raises(ValueError, match="compact"):
        conv.pad_rows(x, pads, wide)


@pytest.mark.parametrize("description", [
    "conv(8,3,pad=1,bias=false) batchnorm relu pool(2) fc(10)",
    "conv(6,3,pad=same) pool(2) batchnorm relu conv(6,3,stride=3) relu avgpool(2,stride=1) fc(4)",
    "conv(4,3,pad=1) relu residual(conv(4,3,pad=1,bias=false) batchnorm relu) pool(3,stride=3) "
    "fc(3)",
    "conv(6,5) relu pool(2) conv(16,3) relu fc(3)",  # kernel rows, stacked; their input gradient
    "conv(5,3,pad=same) relu fc(40) relu fc(3)",  # products shared out (MIN_PRODUCT below)
])
def test_element_wise_work_on_several_threads_is_the_same_to_the_bit(monkeypatch, description):
    """The channels split over threads (engines/numpy/parallel.py) give exactly what one thread
    gives: every row is computed by the same code either way."""
    from convnet import Network
    from convnet.engines.numpy import conv, parallel
    monkeypatch.setattr(parallel, "MIN_PRODUCT", 1000)  # and large products shared out
    monkeypatch.setattr(conv, "ROWS_PART_MIN", 1)  # the kernel rows' input gradient in runs

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 16)

    def run(threads: int):
        monkeypatch.setenv("CONVNET_NUMPY_THREADS", str(threads))
        monkeypatch.setattr(parallel, "MIN_VALUES", 1 if threads > 1 else 10 ** 12)
        monkeypatch.setattr(parallel, "MIN_SPREAD", 0 if threads > 1 else 10 ** 12)
        net = Network(description, input=(12, 12, 3), engine="numpy", seed=4)
        losses = [net.train_step(x, y) for _ in range(3)]
        return losses, net.state_dict(), net.logits(x)

    one, three = run(1), run(3)
    assert one[0] == three[0]
    assert all(np.array_equal(one[1][k], three[1][k]) for k in one[1])
    assert np.array_equal(one[2], three[2])


def test_the_blas_runs_on_one_thread_inside_and_as_before_after():
    from convnet.engines.numpy import blas
    if not blas.available():
        pytest.skip("this NumPy's BLAS has no thread setting that convnet knows")
    _, threads = blas._controls()
    before = threads()
    with blas.one_core():
        assert threads() == 1
        with blas.one_core():  # nested: still one, and the outer one puts it back
            assert threads() == 1
        assert threads() == 1
    assert threads() == before
    with pytest.raises(RuntimeError):
        with blas.one_core():
            raise RuntimeError("a layer failed")
    assert threads() == before


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(1, 3 << 20), st.integers(1, 8))
def test_batch_norm_blocks_cover_the_channels_evenly_for_the_threads(c, row_bytes, threads):
    """Every channel in one block, in order; blocks within the cache budget unless a channel
    alone is larger; as many as a multiple of the threads where there are channels enough,
    and differing by a channel at most, so that each thread gets the same share."""
    from convnet.engines.numpy import batchnorm
    blocks = batchnorm.blocks_of(c, row_bytes, threads)
    assert blocks[0][0] == 0 and blocks[-1][1] == c
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    sizes = [stop - start for start, stop in blocks]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert all(size == 1 or size * row_bytes <= batchnorm.BLOCK_BYTES for size in sizes)
    assert len(blocks) % threads == 0 or len(blocks) == c


def _operand(rng: np.random.Generator, rows: int, cols: int, dtype, how: str) -> np.ndarray:
    """A rows × cols matrix laid out as `how` says: compact, a slice of a wider one (a leading
    dimension beyond its width), the transpose of a compact one, or every other column (no unit
    stride: the product can't read it in place)."""
    if how == "compact":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if how == "slice":
        return rng.standard_normal((rows, cols + 3)).astype(dtype)[:, 1:cols + 1]
    if how == "transposed":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    return rng.standard_normal((rows, 2 * cols)).astype(dtype)[:, ::2]


LAYOUTS = ["compact", "slice", "transposed", "strided"]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 70), st.sampled_from(LAYOUTS),
       st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS), st.sampled_from([0.0, 1.0]),
       st.sampled_from(DTYPES))
def test_the_product_is_numpys_for_every_layout(m, n, k, a_how, b_how, out_how, beta, dtype):
    """blas.product(a, b, out, beta) = a @ b + beta·out whatever the operands' strides; with
    beta 0 out's old values (NaN here) are never read."""
    from convnet.engines.numpy import blas
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    a, b = _operand(rng, m, k, dtype, a_how), _operand(rng, k, n, dtype, b_how)
    out = _operand(rng, m, n, dtype, out_how)
    before = out.copy()
    if beta == 0.0:
        out[...] = np.nan
    result = blas.product(a, b, out, beta=beta)
    assert result is out
    expected = a.astype(np.float64) @ b.astype(np.float64) + (beta * before if beta else 0.0)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * k)


def test_small_products_go_to_openblas_which_lets_the_gil_go(monkeypatch):
    """NumPy's `@` keeps the GIL while it multiplies when the result has fewer than 500
    values, so the weight gradients of small layers ran one thread at a time (fast91's first
    conv: 4.0 ms on two threads, 2.0 on one): the engine's products inside its threads call
    OpenBLAS's product through ctypes instead, which lets the GIL go. Here NumPy's `@` is
    taken away, and a first conv's weight gradient still matches PyTorch."""
    _needs_gemm()
    from convnet.engines.numpy import blas

    def no_numpy_product(*args, **kwargs):
        raise AssertionError("NumPy's product was called")

    rng = np.random.default_rng(4)
    a, d = rng.standard_normal((9, 2000)).astype(np.float32), \
        rng.standard_normal((16, 2000)).astype(np.float32)
    expected = a @ d.T
    monkeypatch.setattr(np, "matmul", no_numpy_product)
    out = np.empty((9, 16), np.float32)
    blas.product(a, d.T, out)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)
    monkeypatch.undo()
    check_layer("conv(16,3,pad=same,bias=false)", (12, 12, 1), dtype=np.float32, batch=4)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "muon"])
def test_the_optimiser_step_runs_with_the_blas_on_one_thread(optimizer, monkeypatch):
    """Muon's products (Newton–Schulz) ran on OpenBLAS's own threads, whose spinning after
    them took a core from the next batch (fast93's step: 167 → 111 ms once on one thread)."""
    from convnet import Network
    from convnet.config import OptimizerConfig
    from convnet.engines.numpy import blas, optim
    if not blas.available():
        pytest.skip("this NumPy's BLAS has no thread setting that convnet knows")
    _, threads = blas._controls()
    seen: list[int] = []
    step = optim.Optimizer.step

    def watched(self, params, grads):
        seen.append(threads())
        return step(self, params, grads)

    monkeypatch.setattr(optim.Optimizer, "step", watched)
    net = Network("conv(4,3) relu fc(3)", input=(6, 6, 1), engine="numpy", seed=0,
                  optimizer=OptimizerConfig(name=optimizer, lr=0.01))
    x = np.random.default_rng(0).random((5, 6, 6, 1), dtype=np.float32)
    before = threads()
    net.train_step(x, np.array([0, 1, 2, 0, 1]))
    assert seen == [1]
    assert threads() == before


def test_the_blas_names_the_kernels_it_runs_and_follows_openblas_coretype():
    """blas.kernel() is what the benchmarks print beside their figures: OpenBLAS's name for the
    kernels it chose, and the ones OPENBLAS_CORETYPE asks for when set before NumPy loads."""
    import os
    import subprocess
    import sys

    from convnet import cpu
    from convnet.engines.numpy import blas
    if not blas.available():
        pytest.skip("this NumPy's BLAS is not an OpenBLAS that convnet knows")
    name = blas.kernel()
    assert isinstance(name, str) and name and name.isprintable()
    if "avx2" not in cpu.this_cpu().flags:
        return
    code = "from convnet.engines.numpy import blas; print(blas.kernel())"
    for asked, expected in (("Haswell", "Haswell"), ("Zen", "Haswell")):  # Zen runs Haswell's
        env = {**os.environ, "OPENBLAS_CORETYPE": asked}
        shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, check=True).stdout.strip()
        assert shown == expected


@pytest.mark.parametrize("m, k, n", [(128, 1568, 256), (1568, 128, 256), (150, 16, 12800),
                                     (7, 3, 9)])
def test_shared_out_products_give_the_same_bits_on_any_number_of_threads(monkeypatch, m, k, n):
    # OpenBLAS's bits for a value depend on how a product is split, so a large product is split
    # into as many parts whatever the threads (fast91's fc(128) at batch 256 differed in the
    # last bits between one thread and two)
    from convnet.engines.numpy import blas, parallel
    if not blas.available():
        pytest.skip("this NumPy's BLAS is not an OpenBLAS whose threads convnet can set")
    monkeypatch.setattr(parallel, "MIN_PRODUCT", 0)
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    outs = []
    for threads in (1, 2, 3):
        monkeypatch.setenv("CONVNET_NUMPY_THREADS", str(threads))
        with blas.one_core():  # as the engine runs them
            outs.append(parallel.matmul(a, b))
    assert all(np.array_equal(outs[0], out) for out in outs[1:])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 30), st.integers(1, 40), st.booleans(),
       st.sampled_from([np.float32, np.float64]), st.integers(1, 4))
def test_shared_out_products_equal_numpys(m, k, n, transposed, dtype, threads):
    """parallel.matmul splits the output between threads (forced here on small products): the
    same values as one product, for views (a transposed operand) as well."""
    from convnet.engines.numpy import parallel
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((k, m) if transposed else (m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    a = a.T if transposed else a
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "MIN_PRODUCT", 0)
        patch.setenv("CONVNET_NUMPY_THREADS", str(threads))
        got = parallel.matmul(a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_a_batch_reads_the_thread_count_once_on_its_own_thread(monkeypatch):
    """Inside parallel.batch the thread count is the one found on entering (nested batches keep
    the outer one); outside, and on another thread, it follows the environment again."""
    import threading

    from convnet.engines.numpy import parallel
    monkeypatch.setenv("CONVNET_NUMPY_THREADS", "3")
    seen: list[int] = []
    with parallel.batch():
        monkeypatch.setenv("CONVNET_NUMPY_THREADS", "2")
        assert parallel.threads() == 3
        with parallel.batch():
            assert parallel.threads() == 3
        assert parallel.threads() == 3
        other = threading.Thread(target=lambda: seen.append(parallel.threads()))
        other.start()
        other.join()
    assert seen == [2] and parallel.threads() == 2


def test_spread_keeps_small_work_on_the_calling_thread(monkeypatch):
    """Items of less work than MIN_SPREAD multiply-adds in all run on the calling thread (a
    hand-over to another costs more than it saves); more work, or none given, is shared out."""
    import threading

    from convnet.engines.numpy import blas, parallel
    if not blas.available():
        pytest.skip("this NumPy's BLAS is not an OpenBLAS whose threads convnet can set")
    monkeypatch.setenv("CONVNET_NUMPY_THREADS", "2")
    monkeypatch.setattr(parallel, "MIN_SPREAD", 1000)
    started = threading.Barrier(2, timeout=10)

    def where(work: int | None, wait: bool) -> set[int]:
        idents: set[int] = set()

        def item(index: int, thread: int) -> None:
            idents.add(threading.get_ident())
            if wait:
                started.wait()  # both threads must be in an item at once
        parallel.spread(item, 4, work)
        return idents

    assert where(999, False) == {threading.get_ident()}
    assert parallel.spread_threads(4, 999) == 1
    assert len(where(1000, True)) == 2 and parallel.spread_threads(4, 1000) == 2
    started.reset()
    assert len(where(None, True)) == 2


def test_spread_does_every_item_once_each_taken_by_the_next_thread_free(monkeypatch):
    import threading

    from convnet.engines.numpy import blas, parallel
    seen: list[tuple[int, int]] = []
    parallel.spread(lambda item, thread: seen.append((item, thread)), 11)
    assert sorted(item for item, _ in seen) == list(range(11))
    assert all(0 <= thread < parallel.spread_threads(11) for _, thread in seen)
    if not blas.available():
        return  # (the items run on the calling thread)
    # A thread held up (here: until the others are done) takes no more items than it has
    # started; dealt in turn, thread 1 would have had 5 of the 11.
    monkeypatch.setenv("CONVNET_NUMPY_THREADS", "2")
    taken: dict[int, list[int]] = {0: [], 1: []}
    released = threading.Event()

    def item(index: int, thread: int) -> None:
        taken[thread].append(index)
        if len(taken[0]) + len(taken[1]) == 11:  # the last item taken, by either thread
            released.set()
        elif thread == 1:
            released.wait(timeout=60)  # (a safety net: set as soon as all are taken)

    parallel.spread(item, 11)
    assert sorted(taken[0] + taken[1]) == list(range(11))
    assert len(taken[1]) <= 1


@pytest.mark.parametrize("text, shape", BLOCK_CASES[:3])
def test_convolutions_match_pytorch_where_the_blas_threads_cannot_be_set(monkeypatch, text,
                                                                         shape):
    # Another BLAS (MKL, Accelerate) or no /proc: the blocks run on the calling thread and the
    # BLAS splits the products itself.
    from convnet.engines.numpy import blas, conv
    monkeypatch.setattr(blas, "_controls", lambda: None)
    monkeypatch.setattr(conv, "BLOCK_BYTES", 200)
    check_layer(text, shape, batch=3)


def _winograd_bench():
    """bench/winograd.py (Winograd's F(2×2, 3×3), measured against the engine, not in it)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "winograd.py"
    loaded = importlib.util.spec_from_file_location("winograd_bench", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


@pytest.mark.parametrize("budget", [1, 3000, 1 << 20])  # one tile a block, pieces of rows, all
@pytest.mark.parametrize("c, k, h, w", [(3, 4, 6, 6), (2, 5, 7, 5), (5, 2, 3, 8)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_winograd_benchmark_computes_the_convolution_pytorch_does(monkeypatch, budget, c, k,
                                                                      h, w, dtype):
    # what bench/winograd.py times must be the layer's numbers: output, dW and dx of
    # conv(K,3,pad=1,bias=false), odd sizes included, against PyTorch's autograd
    import torch

    winograd = _winograd_bench()
    monkeypatch.setattr(winograd, "BUDGET", budget)
    rng = np.random.default_rng(c * 10 + k)
    x = rng.standard_normal((3, h, w, c)).astype(dtype)  # N×H×W×C
    weight = rng.standard_normal((k, c, 3, 3)).astype(dtype)
    dy = rng.standard_normal((3, h, w, k)).astype(dtype)
    layer = winograd.Layer(weight, 3)
    y = layer.forward(np.ascontiguousarray(x.transpose(3, 1, 2, 0)))
    d_w, dx = layer.backward(np.ascontiguousarray(dy.transpose(3, 1, 2, 0)))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    wt = torch.from_numpy(weight.copy()).requires_grad_(True)
    yt = torch.nn.functional.conv2d(xt, wt, padding=1)
    yt.backward(torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()))
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for ours, theirs in [(y.transpose(3, 0, 1, 2), yt.detach()), (dx.transpose(3, 0, 1, 2),
                         xt.grad), (d_w, wt.grad)]:
        theirs = theirs.numpy()
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= tol * np.abs(theirs).max()


def _bench(name: str):
    """A script of bench/ as a module (its main() is not run)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    loaded = importlib.util.spec_from_file_location(f"{name}_bench", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


@pytest.mark.parametrize("c, k, h, n, input_grad, f, pad", [(1, 4, 6, 3, False, 3, 1),
                                                         (3, 5, 7, 2, True, 3, 1),
                                                         (6, 4, 9, 2, True, 5, 0),
                                                         (2, 3, 5, 2, True, 3, 2)])
def test_the_conv_paths_benchmark_times_pytorch_on_the_engines_numbers(c, k, h, n, input_grad, f,
                                                                        pad):
    # bench/conv_paths.py's PyTorch column must be the same layer on the same numbers: the
    # engine's C×H×W×N maps seen by PyTorch, its output and gradients equal to the engine's
    from convnet.engines.numpy import conv

    paths = _bench("conv_paths")
    rng = np.random.default_rng(c + k)
    ho = h + 2 * pad - f + 1
    x = rng.standard_normal((c, h, h, n)).astype(np.float32)
    dy = rng.standard_normal((k, ho, ho, n)).astype(np.float32)
    layer = conv.Conv2D(c, k, (f, f), (1, 1), (pad,) * 4, False, np.dtype(np.float32))
    layer.params["weight"][...] = rng.standard_normal((k, c, f, f))
    layer.needs_input_grad = input_grad
    y = layer.forward(x, True)
    dx = layer.backward(dy.copy())
    xt, dyt = paths.as_torch(x), paths.as_torch(dy)
    assert xt.shape == (n, c, h, h)
    wt = __import__("torch").from_numpy(layer.params["weight"].copy())
    np.testing.assert_allclose(paths.torch_forward(xt, wt, pad).numpy(),
                               y.transpose(3, 0, 1, 2), rtol=1e-4, atol=1e-4)
    dxt, dwt = paths.torch_backward(dyt, xt, wt, input_grad, pad)
    np.testing.assert_allclose(dwt.numpy(), layer.grads["weight"], rtol=1e-4, atol=1e-3)
    if input_grad:
        np.testing.assert_allclose(dxt.numpy(), dx.transpose(3, 0, 1, 2), rtol=1e-4, atol=1e-4)
    else:
        assert dxt is None and dx is None
    run = paths.torch_conv()(x, dy, layer.params["weight"], input_grad, pad)
    forward, backward = run()
    assert forward > 0 and backward > 0


def test_the_conv_paths_benchmark_reads_layers_with_their_kernel_and_padding():
    paths = _bench("conv_paths")
    assert paths.layer_of("16,32,14") == (16, 32, 14, 3, 1)
    assert paths.layer_of("3,6,32,5,0") == (3, 6, 32, 5, 0)
    for bad in ["16,32", "16,32,14,3", "a,b,c", "0,4,8", "3,6,4,7,1", "3,6,8,3,-1"]:
        with pytest.raises(SystemExit, match="conv_paths.py"):
            paths.layer_of(bad)


@pytest.mark.parametrize("c, k, h, n, input_grad, f, pad", [(1, 4, 6, 3, False, 3, 1),
                                                         (6, 4, 9, 2, True, 5, 0),
                                                         (8, 16, 14, 4, True, 3, 1)])
def test_the_conv_paths_benchmark_counts_the_operations_pytorch_counts(c, k, h, n, input_grad, f,
                                                                       pad):
    # its GFLOP/s divide by the forward's, the weight gradient's and (where asked) the input
    # gradient's operations: as many as PyTorch's own counter finds in the same layer
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    paths = _bench("conv_paths")
    x = torch.zeros((n, c, h, h), requires_grad=input_grad)
    w = torch.zeros((k, c, f, f), requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.conv2d(x, w, padding=pad).sum().backward()
    assert paths.layer_flops(c, k, h + 2 * pad - f + 1, f, n, input_grad) == \
        counter.get_total_flops()


def test_the_conv_paths_benchmark_times_each_part_of_both_engines(capsys):
    # bench/conv_paths.py --parts: a line for the engine's way (as it chooses) and one for
    # PyTorch's, each with the forward, the weight gradient and, where the layer has an input
    # before it, the input gradient (a first layer's: –), each a time and a rate
    import re

    paths = _bench("conv_paths")
    paths.parts([(1, 4, 6, 3, 1), (8, 8, 6, 3, 1)], batch=2, rounds=2, repeats=1,
                rival=paths.torch_conv())
    lines = capsys.readouterr().out.splitlines()
    cell = r"(-?\d+\.\d\d) \(\s*(-?\d+)\)"
    rows = [line for line in lines if re.search(cell, line)]
    assert len(rows) == 4, lines
    cells = [re.findall(cell, row) for row in rows]
    assert [len(c) for c in cells] == [2, 2, 3, 3]
    assert rows[0].rstrip().endswith("–") and rows[1].rstrip().endswith("–")
    assert rows[0].startswith(" 1 → 4") and "oneDNN" in rows[1] and rows[2].startswith(" 8 → 8")
    assert all(float(ms) > 0 for row in cells for ms, _ in row[:2])  # (the input gradient's
    # a difference of two times: on layers this small it can be lost in the noise)


def test_the_layer_profile_times_every_layer_in_both_engines():
    # bench/profile_layers.py --torch: every layer of the description gets a forward and a
    # backward time from each engine (the first layer's backward too, which has no input
    # gradient), and the engine's layers are left as they were
    from convnet import Network

    profile = _bench("profile_layers")
    net = Network("conv(4,3,pad=same,bias=false) pool(2) batchnorm relu fc(8) relu fc(3)",
                  input=(6, 6, 1), seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((5, 6, 6, 1), dtype=np.float32)
    y = rng.integers(0, 3, 5)
    before = net.state_dict()
    for measure in (profile.numpy_layers, profile.torch_layers):
        totals, each = measure(net, x, y, 2)
        assert set(totals) == {"inference", "training step"}
        assert all(seconds > 0 for seconds in totals.values())
        assert set(each) == {(i, part) for i, layer in enumerate(net.engine.model.layers)
                             if layer is not None  # (the softmax is the loss's)
                             for part in ("forward", "backward")}, measure.__name__
    for layer in filter(None, net.engine.model.layers):
        assert "forward" not in vars(layer) or vars(layer)["forward"].__name__ == "forward"
    assert any(not np.array_equal(before[name], value)  # the engine's steps trained it
               for name, value in net.state_dict().items())


def test_the_engine_speed_benchmark_pairs_each_rounds_two_sides(monkeypatch):
    # bench/engine_speed.py's "paired" figure: the median (and range) of each round's own
    # ratio, so that a round where the host was slow for both sides counts as one ratio
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, "1"))  # restored after: the script sets them
    monkeypatch.setattr(sys, "argv", ["engine_speed.py", "--threads", "1"])
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    try:
        speed = _bench("engine_speed")
    finally:
        torch.set_num_threads(threads)  # (the script sets PyTorch's threads when loaded)
    mine = [0.040, 0.080, 0.050]  # the second round: the host twice as slow for both sides
    theirs = [0.030, 0.060, 0.045]
    assert speed.paired(mine, theirs) == "0.75× (0.75–0.90)"
    medians = float(np.median(theirs)) / float(np.median(mine))  # 0.045 / 0.050
    assert f"{medians:.2f}" == "0.90"  # what the ratio of the medians would have said
    # each timed block comes after a rest and --warm untimed batches (3 unless told)
    assert speed.ARGS.warm == 3
    monkeypatch.setattr(speed.ARGS, "settle", 0.0)
    calls = []
    assert speed.time_per_batch(lambda: calls.append(1), 4) >= 0
    assert len(calls) == 3 + 4


def test_large_arrays_lie_at_spread_page_offsets():
    # memory.empty/zeros: NumPy's arrays, but each large one a STEP further on within its page
    # than the one before (4K aliasing), 64-byte aligned; small ones as NumPy makes them
    from convnet.engines.numpy import memory

    big = (3, 100, 257)  # 308 KB of float32
    arrays = [memory.empty(big, np.float32) for _ in range(4)] + [memory.zeros(big, np.float32)]
    for a in arrays:
        assert a.shape == big and a.dtype == np.float32 and a.flags.c_contiguous
        assert a.flags.writeable and a.ctypes.data % 64 == 0
    assert not arrays[-1].any()
    offsets = [a.ctypes.data % memory.PAGE for a in arrays]
    steps = {(b - a) % memory.PAGE for a, b in zip(offsets, offsets[1:])}
    assert steps == {memory.STEP % memory.PAGE}
    small = memory.zeros(100, np.float64)
    assert small.shape == (100,) and small.base is None and not small.any()
    chosen = memory.zeros((4, 128, 128), np.uint8)  # a byte per value (max pooling's choice)
    assert chosen.dtype == np.uint8 and chosen.shape == (4, 128, 128) and not chosen.any()


@pytest.mark.parametrize("n, c", [(1, 1), (7, 1), (130, 1), (9, 3), (17, 2), (64, 5)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_images_come_into_the_engine_layout_whole(n, c, dtype):
    # N×H×W×C → C×H×W×N, copied a block of images at a time: every image, the last block short
    from convnet.engines.numpy.model import to_engine_layout
    x = np.random.default_rng(n).standard_normal((n, 5, 4, c)).astype(dtype)
    out = to_engine_layout(x)
    assert out.flags.c_contiguous and out.dtype == x.dtype
    assert np.array_equal(out, x.transpose(3, 1, 2, 0))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(0, 3),
       st.integers(0, 3), st.booleans(), st.sampled_from([0.0, 1.0]),
       st.sampled_from([np.float32, np.float64]))
def test_products_by_address_equal_numpys(m, n, k, i, j, trans_b, beta, dtype):
    """blas.product_at on parts of larger row-major matrices, given by where they start: what
    NumPy computes on the same parts, with the part of C outside left alone; and a part that
    does not lie inside its matrix is refused, never read."""
    from convnet.engines.numpy import blas
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    a = rng.standard_normal((m + i + 2, k + j + 1)).astype(dtype)
    b = rng.standard_normal(((n, k) if trans_b else (k, n))).astype(dtype)
    b = np.pad(b, ((j, 1), (i, 2)))  # the part at (j, i)
    c = rng.standard_normal((m + 3, n + i)).astype(dtype)
    want = c.copy()
    b_part = b[j:j + (n if trans_b else k), i:i + (k if trans_b else n)]
    want[2:2 + m, i:i + n] = a[i:i + m, j:j + k] @ (b_part.T if trans_b else b_part) + \
        beta * c[2:2 + m, i:i + n]
    blas.product_at((blas.matrix(a), i, j), (blas.matrix(b), j, i), (blas.matrix(c), 2, i),
                    m, n, k, beta=beta, trans_b=trans_b)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="outside"):
        blas.product_at((blas.matrix(a), i + 3, j), (blas.matrix(b), j, i),
                        (blas.matrix(c), 2, i), m, n, k)
    with pytest.raises(ValueError, match="row-major"):
        blas.matrix(a.T)  # (columns of unit stride: a transpose)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=4), st.sampled_from(DTYPES),
       st.sampled_from(["whole", "a view", "in place"]), st.integers(0, 2 ** 32 - 1))
def test_relu_against_a_row_of_zeros_is_numpys_maximum(dims, dtype, how, seed):
    # activation.relu: np.maximum against a row of zeros broadcast over the last axis (NumPy's
    # maximum with a scalar 0 runs on a slower path): the same values as np.maximum(x, 0) for
    # any shape, contiguous or a view, into a fresh array or in place; NaN stays NaN
    from convnet.engines.numpy import activation
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(dims).astype(dtype)
    special = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, -1e-30], dtype)
    x.flat[::3] = special[rng.integers(0, len(special), x.flat[::3].size)]
    if how == "a view":
        x = np.concatenate([x, x], axis=-1)[..., ::2]
    expected = np.maximum(x, 0)
    if how == "in place":
        got = activation.relu(x, out=x)
        assert got is x
    else:
        got = activation.relu(x)
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_constant_rows_are_shared_read_only_and_grow():
    # memory.row: the zeros (or ones) to broadcast over an array's last axis, kept per value and
    # dtype and grown when a longer row is asked for
    from convnet.engines.numpy import memory
    short = memory.row(0.0, 5, np.float32)
    assert short.shape == (5,) and short.dtype == np.float32 and not short.any()
    with pytest.raises(ValueError):
        short[0] = 1  # shared: nobody may write into it
    long = memory.row(0.0, 300_000, np.float32)
    assert long.shape == (300_000,) and not long.any()
    assert np.shares_memory(memory.row(0.0, 10, np.float32), long)  # the longer one serves all
    ones = memory.row(1.0, 7, np.float64)
    assert ones.dtype == np.float64 and (ones == 1).all()
    assert memory.row(0.0, 0, np.float32).shape == (0,)


def _throughput_bench():
    """bench/throughput.py as a module (it sets PyTorch's threads when loaded: set back)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    try:
        return _bench("throughput")
    finally:
        torch.set_num_threads(threads)


def test_the_throughput_benchmark_takes_the_median_of_each_rounds_ratio(monkeypatch):
    # bench/throughput.py times the paths in interleaved rounds: each ratio is the median of the
    # rounds' own ratios, and a count of rounds that makes no sense is refused (exit status 2)
    throughput = _throughput_bench()
    # images a second; the second round: the host twice as slow for both sides
    assert throughput.median_ratio([100.0, 50.0, 90.0], [125.0, 62.5, 100.0]) == \
        pytest.approx(0.8)
    with pytest.raises(ValueError):
        throughput.median_ratio([1.0, 2.0], [1.0])
    for wrong in (["--rounds", "0"], ["--seconds", "0"], ["--settle", "-1"]):
        monkeypatch.setattr(sys, "argv", ["throughput.py", *wrong])
        with pytest.raises(SystemExit) as stopped:
            throughput.parse_args()
        assert stopped.value.code == 2
    calls = []
    assert throughput.images_per_second(lambda: calls.append(1), 8, 0.01, settle=0.0) > 0
    assert len(calls) >= 3  # two untimed, then at least one timed


def test_the_throughput_benchmarks_peak_is_the_fastest_run_of_the_fastest_candidate(monkeypatch):
    # a peak must bound what the networks reach: the fastest of ten runs (the host only ever
    # slows a run down) of the fastest of square products and a convolution
    torch = pytest.importorskip("torch")
    throughput = _throughput_bench()
    readings = iter([0.0, 5.0, 10.0, 12.0, 20.0, 23.0])  # runs of 5, 2 and 3 seconds
    with monkeypatch.context() as patched:
        patched.setattr(throughput.time, "perf_counter", lambda: next(readings))
        calls = []
        assert throughput.fastest_rate(lambda: calls.append(1), 12.0, repeat=3) == 6.0
    assert len(calls) == 5  # two warming runs, then three timed
    slow, fast = (lambda: time.sleep(0.004)), (lambda: time.sleep(0.001))
    rate, which = throughput.peak_flops([("slow", slow, 1e6), ("fast", fast, 1e6)])
    assert which == "fast" and rate > 1e6 / 0.004
    for dtype in (torch.float32, torch.bfloat16):
        made = throughput.peak_candidates(dtype, n=64)
        assert [what for what, _, _ in made][:2] == ["PyTorch's 64² product",
                                                    "oneDNN's 3×3 convolution"]
        assert len(made) == (3 if dtype == torch.float32 else 2)
        for _, fn, flops in made:
            fn()
            assert flops > 0
