"""`inspect --values/--at` and `show --cell`: a network on numbers small enough to check by
hand, and the lecture's one number W·x + b, checked against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from convnet.by_hand import one_number, one_number_text, parse_values
from convnet.inside import activations
from convnet.cli import main
from convnet.network import Network

LECTURE_POOL = "1 1 2 4; 5 6 7 8; 3 2 1 0; 1 2 3 4"


def test_the_lecture_max_pool_example_gives_6_8_3_4(capsys):
    assert main(["inspect", "maxpool(2)", "--input", "4x4x1", "--values", LECTURE_POOL]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:8] == ["input 4x4x1", "  1 1 2 4", "  5 6 7 8", "  3 2 1 0", "  1 2 3 4",
                       "0 pool(2) → 2x2x1", "  6 8", "  3 4"]


def test_values_run_through_every_layer_as_pytorch_computes_them(capsys):
    description = "conv(2,3,pad=1) relu maxpool(2) conv(3,2) fc(4)"
    net = Network(description, input=(6, 6, 2), engine="numpy", dtype="float64", seed=3)
    values = parse_values("random", (6, 6, 2), seed=3)
    twin = Network(description, input=(6, 6, 2), engine="torch", dtype="float64", seed=3)
    twin.load_state_dict(net.state_dict())
    expected = twin.engine.model(torch.from_numpy(values.transpose(2, 0, 1)[None].copy()))
    views = activations(net, values)
    assert np.allclose(views[5].values[None], expected.detach().numpy(), atol=1e-12)
    assert main(["inspect", description, "--input", "6x6x2", "--values", "random",
                 "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "0 conv(2,3,pad=1) → 6x6x2\n  filter 0 (3x3x2), bias 0.0000:\n    channel 0:" in out
    assert "5 fc(4) → 4\n" in out


@settings(max_examples=40, deadline=None)
@given(size=st.integers(5, 9), kernel=st.integers(1, 4), stride=st.integers(1, 3),
       pad=st.integers(0, 2), channels=st.integers(1, 3), filters=st.integers(1, 3),
       seed=st.integers(0, 1000), data=st.data())
def test_one_number_is_the_conv_output_pytorch_computes(size, kernel, stride, pad, channels,
                                                        filters, seed, data):
    out = (size - kernel + 2 * pad) // stride + 1
    description = f"conv({filters},{kernel},stride={stride},pad={pad},floor=true) relu"
    net = Network(description, input=(size, size, channels), engine="numpy", dtype="float64",
                  seed=seed)
    state = net.state_dict()
    state["0.bias"] = np.random.default_rng(seed).normal(size=filters)  # not just zeros
    net.load_state_dict(state)
    values = np.random.default_rng(seed + 1).normal(size=(size, size, channels))
    row, column = data.draw(st.integers(0, out - 1)), data.draw(st.integers(0, out - 1))
    channel = data.draw(st.integers(0, filters - 1))
    cell = one_number(net, activations(net, values), values, 0, row, column, channel)
    reference = torch.nn.functional.conv2d(
        torch.from_numpy(values.transpose(2, 0, 1)[None].copy()),
        torch.from_numpy(state["0.weight"]), torch.from_numpy(state["0.bias"]),
        stride=stride, padding=pad)[0, channel, row, column].item()
    assert cell.total == pytest.approx(reference, abs=1e-10)
    assert cell.output == pytest.approx(reference, abs=1e-10)
    assert cell.relu == max(cell.total, 0.0)
    assert cell.window.shape == cell.weights.shape == (kernel, kernel, channels)


def test_at_writes_the_one_number_term_by_term(capsys):
    values = "1 0 0 0 0 0 0; " * 7
    assert main(["inspect", "conv(1,3) relu", "--input", "7x7x1", "--values", values.strip(),
                 "--at", "0,0"]) == 0
    out = capsys.readouterr().out
    net = Network("conv(1,3) relu", input=(7, 7, 1), engine="numpy", dtype="float64", seed=0)
    w = net.state_dict()["0.weight"][0, 0]
    first = f"{w[0, 0]:.4f}×1"
    assert f"W·x + b = {first if w[0, 0] >= 0 else '(' + first.replace('×', ')×')} + " in out
    assert f"= {w[0, 0] + w[1, 0] + w[2, 0]:.4f}\n" in out
    assert "ReLU(W·x + b) = max(0, " in out


@pytest.mark.parametrize("text, message", [
    ("1 2 3", "--values: 3 numbers, but a 2x2x1 input holds 4"),
    ("1 2; 3", "--values: row 2 has 1 numbers; a row of a 2x2x1 input has 2 (W·C)"),
    ("1 x; 3 4", "--values: row 1 ('1 x') holds something that is not a number"),
    ("1 2; 3 nan", "--values: the numbers must be finite"),
])
def test_values_that_do_not_fit_are_one_line(capsys, text, message):
    assert main(["inspect", "conv(1,1)", "--input", "2x2x1", "--values", text]) == 2
    assert capsys.readouterr().err == f"convnet: error: {message}\n"


@pytest.mark.parametrize("argv, message", [
    (["--at", "0,0"], "--at works out one cell of a run on numbers: give --values too"),
    (["--values", "random", "--at", "1"], "--at '1': give ROW,COL as whole numbers from 0"),
    (["--values", "random", "--at", "5,0"], "--at 5,0: no conv layer's output has row 5"),
    (["--values", "random", "--explain"], "not allowed with argument"),
    (["--values", "random", "--input", "224x224x3"], "--values prints every number, and a "
     "layer here holds 150,528; keep each volume to 16,384 numbers"),
])
def test_at_mistakes_are_one_line(capsys, argv, message):
    assert main(["inspect", "conv(1,3)", "--input", "7x7x1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_npy_file_gives_the_values(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.arange(16.0).reshape(4, 4))
    assert main(["inspect", "maxpool(2)", "--input", "4x4x1", "--values",
                 str(tmp_path / "x.npy")]) == 0
    assert "0 pool(2) → 2x2x1\n   5  7\n  13 15\n" in capsys.readouterr().out
    np.save(tmp_path / "y.npy", np.zeros((3, 4)))
    assert main(["inspect", "maxpool(2)", "--input", "4x4x1", "--values",
                 str(tmp_path / "y.npy")]) == 2
    assert "shape 3x4x1, but the input is 4x4x1" in capsys.readouterr().err


def test_show_cell_on_a_trained_model_and_a_test_image(capsys, tmp_path, served_model):
    out = tmp_path / "inside.png"
    assert main(["show", str(served_model), "test:3", "--out", str(out), "--cell",
                 "0,2,5,1"]) == 0
    text = capsys.readouterr().out
    assert out.is_file()
    assert "0 conv(" in text and "at row 2, column 5 of map 1:" in text
    assert "x, the input under the filter" in text and "W·x + b = " in text
    assert main(["predict", str(served_model), "test:3"]) == 0
    assert capsys.readouterr().out.startswith("test:3: ")


@pytest.mark.parametrize("argv, message", [
    (["--cell", "8,0,0,0"], "layer 8 softmax is not a conv, pooling, fc, element-wise layer or block"),
    (["--cell", "6,0,0,0"], "layer 6 flatten is not a conv, pooling, fc, element-wise layer or block"),
    (["--cell", "12,0,0,0"], "no layer '12'; the layers are 0 to 8"),
    (["--cell", "0,99,0,0"], "cell (row 99, column 0) of map 0 is outside layer 0's output"),
    (["--cell", "0,0"], "--cell '0,0': give LAYER,ROW,COL,MAP as whole numbers from 0"),
])
def test_show_cell_mistakes_draw_nothing(capsys, tmp_path, served_model, argv, message):
    out = tmp_path / "inside.png"
    assert main(["show", str(served_model), "test:0", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_test_image_that_does_not_exist(capsys, tmp_path, served_model):
    assert main(["predict", str(served_model), "test:999999"]) == 2
    assert "test:999999: fashion-mnist has test images 0 to" in capsys.readouterr().err


def test_the_one_number_in_korean(capsys, tmp_path, served_model):
    assert main(["show", str(served_model), "test:3", "--out", str(tmp_path / "a.png"),
                 "--cell", "0,2,5,1", "--lang", "ko"]) == 0
    text = capsys.readouterr().out
    assert "의 맵 1, 2행 5열:" in text and "x, 필터 아래의 입력 (5x5x1):" in text
    assert "(곱 25개의 합)" in text
    assert main(["inspect", "pool(2)", "--input", "4x4x1", "--values", LECTURE_POOL,
                 "--lang", "ko"]) == 0
    assert capsys.readouterr().out.startswith("입력 4x4x1\n  1 1 2 4\n")


def test_values_too_many_to_print_are_refused_before_any_weights_are_made(capsys):
    # fc(60000) after fc(60000): 3.6 billion float64 weights (29 GB) that are never drawn
    assert main(["inspect", "fc(60000) fc(60000)", "--input", "1x1x1", "--values", "random"]) == 2
    assert "a layer here holds 60,000; keep each volume to 16,384" in capsys.readouterr().err


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["pool", "avgpool"]), size=st.integers(4, 9),
       kernel=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 1),
       seed=st.integers(0, 1000), data=st.data())
def test_one_number_of_pooling_is_what_pytorch_pools(kind, size, kernel, stride, pad, seed,
                                                     data):
    pad = min(pad, kernel // 2)
    description = f"{kind}({kernel},stride={stride},pad={pad},floor=true)"
    net = Network(description, input=(size, size, 2), engine="numpy", dtype="float64", seed=0)
    values = np.random.default_rng(seed).integers(0, 4, (size, size, 2)).astype(float)  # ties
    out = (size - kernel + 2 * pad) // stride + 1
    row, column = data.draw(st.integers(0, out - 1)), data.draw(st.integers(0, out - 1))
    channel = data.draw(st.integers(0, 1))
    cell = one_number(net, activations(net, values), values, 0, row, column, channel)
    pooled = (torch.nn.functional.max_pool2d if kind == "pool" else
              torch.nn.functional.avg_pool2d)(
        torch.from_numpy(values.transpose(2, 0, 1)[None].copy()), kernel, stride, pad)
    assert cell.total == pytest.approx(pooled[0, channel, row, column].item(), abs=1e-12)
    assert cell.output == pytest.approx(cell.total, abs=1e-12)
    if kind == "pool":
        assert cell.window[cell.chosen] == cell.total  # the chosen one is the largest


def test_one_number_of_an_fc_unit_and_inside_a_block():
    description = "conv(3,3,pad=1) relu residual(conv(3,3,pad=1) relu conv(3,1)) relu fc(4) relu"
    net = Network(description, input=(5, 5, 2), engine="numpy", dtype="float64", seed=2)
    values = np.random.default_rng(0).normal(size=(5, 5, 2))
    views = activations(net, values)
    unit = one_number(net, views, values, 5, 0, 0, 3)
    assert unit.kind == "fc" and unit.window.shape == (75,) and unit.source == "4"
    assert unit.total == pytest.approx(views[5].values[3], abs=1e-12)
    assert unit.relu == max(unit.total, 0.0)
    inner = one_number(net, views, values, "2.inner.2", 1, 3, 0)
    assert inner.source == "2.inner.1" and inner.window.shape == (1, 1, 3)
    assert inner.total == pytest.approx(views[2].paths[0][1][2].values[1, 3, 0], abs=1e-12)
    first = one_number(net, views, values, "2.inner.0", 0, 0, 1)
    assert first.source == "1" and first.origin == (-1, -1)
    assert first.receptive == (0, 0, 2, 2)  # 3x3 after 3x3, clipped at the corner


def test_show_cell_names_a_layer_inside_a_block(capsys, tmp_path):
    from convnet import checkpoint
    from PIL import Image

    net = Network("conv(3,3,pad=1) relu residual(conv(3,3,pad=1) relu) pool(2) fc(2)",
                  input=(6, 6, 1), seed=0)
    checkpoint.save(net, tmp_path / "m", classes=("a", "b"))
    Image.fromarray(np.arange(36, dtype=np.uint8).reshape(6, 6) * 7).save(tmp_path / "x.png")
    assert main(["show", str(tmp_path / "m"), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "s.png"), "--cell", "2.inner.0,1,1,2"]) == 0
    out = capsys.readouterr().out
    assert "2.inner.0 conv(3,3,pad=1) at row 1, column 1 of map 2:" in out
    assert main(["show", str(tmp_path / "m"), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "s.png"), "--cell", "3,0,1,0"]) == 0
    assert "the largest:" in capsys.readouterr().out
    assert main(["show", str(tmp_path / "m"), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "s.png"), "--cell", "2.middle.0,1,1,2"]) == 2


@pytest.mark.parametrize("shortcut", ["", ", shortcut=conv(4,1,stride=2)"])
def test_one_number_of_a_blocks_addition(shortcut):
    """A block's output cell is what its layers made plus what the shortcut gives (x itself, or
    S(x) for a projection), checked against PyTorch's module on the same weights."""
    import torch

    stride = 2 if shortcut else 1
    width = 4 if shortcut else 3
    description = (f"conv(3,3,pad=1) residual(conv({width},3,stride={stride},pad=1) relu "
                   f"conv({width},3,pad=1){shortcut}) relu fc(2)")
    net = Network(description, input=(7, 7, 2), engine="numpy", dtype="float64", seed=3)
    values = np.random.default_rng(1).normal(size=(7, 7, 2))
    views = activations(net, values)
    cell = one_number(net, views, values, 1, 1, 2, 0)
    assert cell.kind == "add" and cell.shortcut == ("projection" if shortcut else "identity")
    assert cell.total == pytest.approx(views[1].values[1, 2, 0], abs=1e-12)
    inner_end = views[1].paths[0][1][-1].values[1, 2, 0]
    assert cell.window[0] == pytest.approx(inner_end, abs=1e-12)
    twin = Network(description, input=(7, 7, 2), engine="torch", dtype="float64", seed=3)
    twin.load_state_dict(net.state_dict())
    x = torch.from_numpy(values.transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        block_out = twin.engine.model[1](twin.engine.model[0](x))
    assert cell.total == pytest.approx(float(block_out[0, 0, 1, 2]), abs=1e-10)
    text = "\n".join(one_number_text(cell))
    assert ("F(x) + S(x) =" if shortcut else "F(x) + x =") in text
