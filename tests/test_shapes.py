"""Shape arithmetic: the lecture's cases, parameterised tables, and PyTorch as the referee."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convnet import shapes, spec
from convnet.engines.torch.build import build_sequential
from convnet.errors import GeometryError, UserError


def outputs(text: str, shape: tuple[int, int, int]) -> list[tuple[int, ...]]:
    return [r.output for r in shapes.infer(spec.parse(text), shape)]


# -- the lecture -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("conv(1,3)", (5, 5, 1)),  # 7x7 input, 3x3 filter, stride 1 → 5x5
    ("conv(1,3,stride=2)", (3, 3, 1)),  # stride 2 → 3x3
    ("conv(1,3,pad=1)", (7, 7, 1)),  # pad 1: (9 − 3)/1 + 1 = 7, the size is kept
    ("conv(1,3,pad=same)", (7, 7, 1)),
])
def test_lecture_seven_by_seven(text, expected):
    assert outputs(text, (7, 7, 1))[0] == expected


def test_lecture_stride_three_does_not_fit_and_a_fix_is_offered():
    with pytest.raises(GeometryError) as info:
        outputs("conv(1,3,stride=3)", (7, 7, 1))
    assert str(info.value) == (
        "layer 0 conv(1,3,stride=3) on 7x7x1: height (7 − 3 + 2·0)/3 + 1 = 2.33 is not a whole "
        "number (7 − 3 + 2·0 = 4 is not a multiple of the stride 3), so the filter does not fit. "
        "Fix: stride=1 (→ 5x5) or stride=2 (→ 3x3) or pad=1 (→ 3x3) or an input of 9x9 (→ 3x3); or "
        "floor=true to drop the leftover as PyTorch does (→ 2x2)")
    assert outputs("conv(1,3,stride=3,floor=true)", (7, 7, 1))[0] == (2, 2, 1)


def test_lecture_stacked_example_and_weight_counts():
    rows = shapes.infer(spec.parse("conv(6,5) relu conv(10,5) relu"), (32, 32, 3))
    assert [r.output for r in rows[:4]] == [(28, 28, 6), (28, 28, 6), (24, 24, 10), (24, 24, 10)]
    assert [rows[0].params, rows[2].params] == [456, 1510]


def test_lecture_max_pool_halves():
    assert outputs("pool(2)", (224, 224, 64))[0] == (112, 112, 64)
    assert outputs("pool(2, stride=2)", (4, 4, 1))[0] == (2, 2, 1)


# -- tables ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, shape, out, params, macs", [
    ("conv(6,5)", (32, 32, 3), (28, 28, 6), 456, 28 * 28 * 6 * 75),
    ("conv(6,5,bias=false)", (32, 32, 3), (28, 28, 6), 450, 28 * 28 * 6 * 75),
    ("conv(4,3x5)", (10, 12, 2), (8, 8, 4), 4 * 30 + 4, 8 * 8 * 4 * 30),
    ("conv(4,3x5,pad=same)", (10, 12, 2), (10, 12, 4), 124, 10 * 12 * 4 * 30),
    ("conv(4,4,pad=same)", (9, 9, 1), (9, 9, 4), 68, 81 * 4 * 16),
    ("conv(8,3,stride=2,pad=1)", (28, 28, 1), (14, 14, 8), 80, 14 * 14 * 8 * 9) if False else
    ("conv(8,4,stride=2,pad=1)", (28, 28, 1), (14, 14, 8), 136, 14 * 14 * 8 * 16),
    ("conv(2,3,stride=2x1)", (7, 8, 1), (3, 6, 2), 20, 3 * 6 * 2 * 9),
    ("pool(3,stride=2)", (7, 7, 5), (3, 3, 5), 0, 0),
    ("avgpool(2x3)", (4, 9, 5), (2, 3, 5), 0, 0),
    ("pool(2,floor=true)", (7, 7, 5), (3, 3, 5), 0, 0),
    ("batchnorm", (5, 5, 7), (5, 5, 7), 14, 0),
    ("flatten fc(10)", (2, 3, 4), (24,), 0, 0),
])
def test_first_layer_table(text, shape, out, params, macs):
    row = shapes.infer(spec.parse(text), shape)[0]
    assert (row.output, row.params, row.macs) == (out, params, macs)


def test_fc_after_implicit_flatten_counts_every_input():
    rows = shapes.infer(spec.parse("conv(6,5) pool(2) fc(10)"), (32, 32, 3))
    assert rows[2].output == (1176,)
    assert (rows[3].params, rows[3].macs) == (10 * 1176 + 10, 10 * 1176)


def test_receptive_field_grows_with_kernels_and_strides():
    rows = shapes.infer(spec.parse("conv(6,5) pool(2) conv(16,5) pool(2) fc(3)"), (32, 32, 3))
    assert [r.receptive for r in rows[:4]] == [(5, 5), (6, 6), (14, 14), (16, 16)]
    assert rows[4].receptive is None


@pytest.mark.parametrize("text, shape, message", [
    ("conv(2,9)", (7, 7, 1), "layer 0 conv(2,9) on 7x7x1: the 9x9 filter is larger than its "
     "padded input 7x7. Fix: pad=1 or more, or a smaller filter (at most 7x7), or fewer pooling "
     "layers before it"),
    ("pool(2)", (7, 7, 1), "layer 0 pool(2) on 7x7x1: height (7 − 2)/2 + 1 = 3.50 is not a whole "
     "number (7 − 2 = 5 is not a multiple of the stride 2), so the window does not fit. Fix: "
     "stride=1 (→ 6x6) or an input of 8x8 (→ 4x4); or floor=true to drop the leftover as "
     "PyTorch does (→ 3x3)"),
    ("conv(2,3,stride=2)", (8, 7, 1), "layer 0 conv(2,3,stride=2) on 8x7x1: height (8 − 3 + 2·0)"
     "/2 + 1 = 3.50 is not a whole number (8 − 3 + 2·0 = 5 is not a multiple of the stride 2), so "
     "the filter does not fit. Fix: stride=1 (→ 6x5) or an input of 9x7 (→ 4x3); or floor=true "
     "to drop the leftover as PyTorch does (→ 3x3)"),
    ("fc(65536)", (65536, 65536, 65536), "layer 1 fc(65536): its 1.845e+19 weights overflow "
     "64-bit counts; use smaller sizes"),
    ("conv(65536,65536) conv(65536,1)", (65536, 65536, 65536), "layer 0 conv(65536,65536): its "
     "1.845e+19 weights overflow 64-bit counts; use smaller sizes"),
])
def test_geometry_errors(text, shape, message):
    with pytest.raises(UserError) as info:
        shapes.infer(spec.parse(text), shape)
    assert str(info.value) == message


def test_input_shape_out_of_bounds_is_refused():
    with pytest.raises(UserError, match="input height must be between 1 and 65,536, got "
                                        "1,099,511,627,776"):
        shapes.infer(spec.parse("relu"), (2**40, 2**40, 2**40))


def test_missing_input_shape_is_refused():
    with pytest.raises(UserError, match="the input shape is unknown"):
        shapes.infer(spec.parse("relu"))


# -- PyTorch as the referee --------------------------------------------------------------------

layer_text = st.one_of(
    st.builds("conv({},{}x{},stride={},pad={})".format, st.integers(1, 8), st.integers(1, 5),
              st.integers(1, 5), st.integers(1, 3), st.integers(0, 2)),
    st.builds("conv({},{},pad=same)".format, st.integers(1, 8), st.integers(1, 5)),
    st.builds("{}({},stride={})".format, st.sampled_from(["pool", "avgpool"]), st.integers(1, 3),
              st.integers(1, 3)),
    st.sampled_from(["relu", "tanh", "sigmoid", "batchnorm", "dropout(0.5)"]),
)
head_text = st.lists(st.one_of(st.builds("fc({})".format, st.integers(1, 20)),
                               st.sampled_from(["relu", "batchnorm"])), max_size=3)


def lazy_torch(network: spec.Spec) -> torch.nn.Sequential:
    """The network in PyTorch with lazy modules, so PyTorch alone works out every size."""
    nn = torch.nn
    modules = []
    for layer in network.layers:
        if isinstance(layer, spec.Conv):
            modules.append(nn.LazyConv2d(layer.filters, layer.kernel, layer.stride,
                                         "same" if layer.pad == "same" else layer.pad,
                                         bias=layer.bias))
        elif isinstance(layer, spec.Pool):
            cls = nn.MaxPool2d if layer.kind == "max" else nn.AvgPool2d
            modules.append(cls(layer.kernel, layer.stride))
        elif isinstance(layer, spec.Activation):
            modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[layer.name]())
        elif isinstance(layer, spec.BatchNorm):
            flat = any(isinstance(m, nn.Flatten) for m in modules)
            modules.append(nn.LazyBatchNorm1d() if flat else nn.LazyBatchNorm2d())
        elif isinstance(layer, spec.Dropout):
            modules.append(nn.Dropout(layer.p))
        elif isinstance(layer, spec.Flatten):
            modules.append(nn.Flatten())
        elif isinstance(layer, spec.FC):
            modules.append(nn.LazyLinear(layer.units, bias=layer.bias))
    return nn.Sequential(*modules)


def torch_shapes_and_params(network: spec.Spec, shape: tuple[int, int, int]):
    model = lazy_torch(network).eval()
    x = torch.zeros(2, shape[2], shape[0], shape[1])
    result = []
    with torch.no_grad():
        for module in model:
            x = module(x)
            dims = tuple(x.shape[1:])
            result.append((dims[1], dims[2], dims[0]) if len(dims) == 3 else dims)
    params = [sum(p.numel() for p in module.parameters()) for module in model]
    return result, params


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(layer_text, min_size=1, max_size=5), head_text, st.integers(1, 24),
       st.integers(1, 24), st.integers(1, 4))
def test_shapes_and_params_equal_pytorch(layers, head, h, w, c):
    network = spec.parse(" ".join(layers + head))
    try:
        rows = shapes.infer(network, (h, w, c))
    except GeometryError:
        # Refused: either no flooring makes it fit (PyTorch refuses too), or it fits only by
        # flooring, which PyTorch does silently and we do only when asked.
        floored = spec.parse(" ".join(layers + head), floor=True)
        try:
            rows = shapes.infer(floored, (h, w, c))
        except GeometryError:
            with pytest.raises(RuntimeError):
                torch_shapes_and_params(floored, (h, w, c))
            return
        network = floored
    expected_shapes, expected_params = torch_shapes_and_params(network, (h, w, c))
    assert [r.output for r in rows[: len(expected_shapes)]] == expected_shapes
    assert [r.params for r in rows[: len(expected_params)]] == expected_params


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 30), st.integers(2, 5), st.integers(2, 4), st.integers(0, 2))
def test_a_stride_that_does_not_fit_is_refused_unless_floored(n, f, s, p):
    assume(n + 2 * p >= f and (n - f + 2 * p) % s != 0)
    text = f"conv(1,{f},stride={s},pad={p})"
    with pytest.raises(GeometryError, match="is not a whole number"):
        shapes.infer(spec.parse(text), (n, n, 1))
    floored = shapes.infer(spec.parse(text, floor=True), (n, n, 1))[0].output
    conv = torch.nn.Conv2d(1, 1, f, stride=s, padding=p)
    assert floored == tuple(conv(torch.zeros(1, 1, n, n)).shape[2:]) + (1,)


def test_torch_builder_matches_the_lazy_reference():
    network = spec.parse("conv(6,5) relu pool(2) conv(4,3x2,pad=same) batchnorm fc(7) batchnorm")
    built = build_sequential(network, (32, 32, 3))
    x = torch.zeros(3, 3, 32, 32)
    reference = lazy_torch(network)
    reference(x)  # materialise the lazy modules
    assert [tuple(p.shape) for p in built.parameters()] == \
        [tuple(p.shape) for p in reference.parameters()]
    assert built(x).shape == (3, 7)
