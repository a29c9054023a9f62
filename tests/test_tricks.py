"""The training tricks of issue 16, each checked for what it computes (against PyTorch where there
is a counterpart), for surviving a resume, and for refusing what makes no sense: weight averages
(--ema, --lookahead), test-time shifts (--tta-shift), random erasing, whitening and identity
initialisation, a faster learning rate for batch norm, and the CPU-aware recipes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet import augment as augmentation
from convnet import checkpoint
from convnet.averaging import Lookahead, WeightAverage
from convnet.cli import main
from convnet.network import Network, shifted
from convnet.train import TrainConfig, Trainer
from crashing import stopped_and_resumed

SMALL = "conv(4,3,pad=1,bias=false) batchnorm relu pool(2) fc(10)"


def batch(n=32, seed=0, shape=(28, 28, 1)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n)


# -- weight averages -------------------------------------------------------------------------

def test_the_weight_average_is_an_exponential_moving_average():
    net = Network(SMALL, input=(28, 28, 1), engine="numpy", seed=1, lr=0.05)
    average = WeightAverage(net, 0.9, every=1)
    expected = {k: v.astype(np.float64) for k, v in net.state_dict().items()
                if v.dtype.kind == "f"}
    x, y = batch()
    for _ in range(6):
        net.train_step(x, y)
        average.update(net)
        for k, v in net.state_dict().items():
            if k in expected:
                expected[k] = 0.9 * expected[k] + 0.1 * v
    assert all(np.allclose(average.average[k], expected[k]) for k in expected)
    trained = net.state_dict()
    with average.applied(net):  # evaluation sees the average ...
        assert np.allclose(net.state_dict()["0.weight"], expected["0.weight"], atol=1e-6)
    after = net.state_dict()  # ... and training goes on with the weights as they were
    assert all(np.array_equal(trained[k], after[k]) for k in trained)


def test_every_fifth_step_with_the_decay_to_the_fifth_power():
    net = Network(SMALL, input=(28, 28, 1), engine="numpy", seed=1, lr=0.05)
    average = WeightAverage(net, 0.99)  # every 5 steps
    start = average.average["0.weight"].copy()
    x, y = batch()
    for _ in range(4):
        net.train_step(x, y)
        average.update(net)
    assert np.array_equal(average.average["0.weight"], start)  # nothing yet
    net.train_step(x, y)
    average.update(net)
    keep = 0.99 ** 5
    assert np.allclose(average.average["0.weight"],
                       keep * start + (1 - keep) * net.state_dict()["0.weight"])


def test_lookahead_pulls_the_weights_halfway_back_every_k_steps():
    net = Network(SMALL, input=(28, 28, 1), engine="numpy", seed=2, lr=0.05)
    slow = net.state_dict()["0.weight"].astype(np.float64)
    look = Lookahead(net, 3)
    x, y = batch()
    for step in range(1, 4):
        net.train_step(x, y)
        fast = net.state_dict()["0.weight"].astype(np.float64)
        look.update(net)
    assert np.allclose(net.state_dict()["0.weight"], slow + 0.5 * (fast - slow), atol=1e-6)


@pytest.mark.parametrize("extra", [{"ema": 0.9}, {"lookahead": 4}])
def test_a_run_with_averages_resumes_exactly(tmp_path, fashion_dir, extra):
    config = TrainConfig(network=SMALL, data="fashion-mnist", data_dir=str(fashion_dir),
                         engine="numpy", epochs=2, val_size=300, batch_size=64, **extra)
    stopped_and_resumed(config, tmp_path / "straight", tmp_path / "stopped")
    from safetensors.numpy import load_file
    for name in ("last/model.safetensors", "last/averages.safetensors",
                 "best/model.safetensors"):
        a, b = (load_file(str(tmp_path / run / name)) for run in ("straight", "stopped"))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    if "ema" in extra:  # the kept model is the average, not the last weights
        best = load_file(str(tmp_path / "straight/best/model.safetensors"))
        last = load_file(str(tmp_path / "straight/last/model.safetensors"))
        assert not np.array_equal(best["0.weight"], last["0.weight"])


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_a_muon_run_resumes_exactly(tmp_path, fashion_dir, engine):
    """Muon's momentum buffers are saved with the run and taken back by --resume (they were
    refused as not fitting the network until 12-03: no Muon run could be resumed)."""
    config = TrainConfig(network=SMALL, data="fashion-mnist", data_dir=str(fashion_dir),
                         engine=engine, epochs=2, val_size=300, batch_size=64,
                         optimizer="muon")
    stopped_and_resumed(config, tmp_path / "straight", tmp_path / "stopped")
    from safetensors.numpy import load_file
    kept = load_file(str(tmp_path / "stopped/last/optimizer.safetensors"))
    assert "0.weight.muon_momentum" in kept and any(k.endswith(".bias.momentum") for k in kept)
    a, b = (load_file(str(tmp_path / run / "last/model.safetensors"))
            for run in ("straight", "stopped"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# -- test-time shifts and random erasing -----------------------------------------------------

def test_tta_shift_averages_the_image_and_its_four_shifts():
    x, _ = batch(6)
    plain = Network(SMALL, input=(28, 28, 1), engine="numpy", seed=3)
    tta = Network(SMALL, input=(28, 28, 1), engine="numpy", seed=3, tta_shift=2)
    prepared = plain.prepare_images(x)
    views = [prepared] + [shifted(prepared, dy, dx, 2) for dy, dx in
                          ((-1, 0), (1, 0), (0, -1), (0, 1))]
    expected = sum(plain.engine.logits(v) for v in views) / 5
    assert np.allclose(tta.logits(x), expected, atol=1e-5)
    moved = shifted(prepared, 1, 0, 2)  # down by 2: the top rows are zeros
    assert np.array_equal(moved[:, 2:], prepared[:, :-2]) and not moved[:, :2].any()


@pytest.mark.parametrize("shift, mirror, count", [(0, False, 1), (0, True, 2), (1, False, 5),
                                                  (2, True, 10)])
def test_the_views_that_vote_are_counted_and_said(shift, mirror, count):
    # what eval and train print beside the accuracy: how many views of an image voted
    from convnet.evaluate import evaluate

    net = Network(SMALL, input=(28, 28, 1), engine="numpy", seed=3, tta_shift=shift, tta=mirror)
    x, y = batch(8)
    assert net.view_count() == count
    said = net.views()
    assert (said == "") == (count == 1)
    if count > 1:
        assert f"vote of {count} views" in said
        assert ("moved" in said) == bool(shift) and ("mirror" in said) == mirror
        assert f"moved {shift} pixel" in said or not shift
    report = evaluate(net, x, y, [str(i) for i in range(10)])
    assert report.views == said
    assert (f"vote of {count} views" in report.text()) == (count > 1)
    assert report.to_json()["views"] == (said or None)


def test_an_ensemble_says_how_its_models_vote():
    from convnet.ensemble import Ensemble
    from convnet.evaluate import evaluate

    x, y = batch(8)
    classes = [str(i) for i in range(10)]
    plain = [Network(SMALL, input=(28, 28, 1), engine="numpy", seed=s) for s in (1, 2)]
    shifting = [Network(SMALL, input=(28, 28, 1), engine="numpy", seed=s, tta_shift=1)
                for s in (1, 2)]
    said = evaluate(Ensemble(plain, classes), x, y, classes).views
    assert said == "each prediction is the vote of 2 models, the mean of their softmax"
    said = evaluate(Ensemble(shifting, classes, combine="logits"), x, y, classes).views
    assert said.startswith("each prediction is the vote of 2 models, their logits summed; "
                           "each model's is the vote of 5 views")
    said = Ensemble([plain[0], shifting[1]], classes).views()
    assert said.endswith("some models vote over several views of the image themselves")


def test_tta_shift_is_kept_in_the_checkpoint_and_checked(tmp_path):
    net = Network(SMALL, input=(28, 28, 1), engine="numpy", tta_shift=1)
    checkpoint.save(net, tmp_path / "m", classes=tuple("abcdefghij"))
    assert checkpoint.load(tmp_path / "m")[0].tta_shift == 1
    meta = json.loads((tmp_path / "m/model.json").read_text())
    meta["tta_shift"] = 9
    (tmp_path / "m/model.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="'tta_shift' must be"):
        checkpoint.load(tmp_path / "m")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), h=st.integers(3, 12), w=st.integers(3, 12), c=st.sampled_from([1, 3]),
       pad=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_a_crop_is_each_image_shifted_by_at_most_the_padding_with_zeros_coming_in(n, h, w, c, pad,
                                                                                 seed):
    x = np.random.default_rng(seed).integers(1, 256, (n, h, w, c), dtype=np.uint8)
    kept = x.copy()
    y = augmentation.augment(x, ("crop",), np.random.default_rng(seed), pad=pad)
    assert y.shape == x.shape and y.dtype == np.uint8 and y.flags.c_contiguous
    assert np.array_equal(x, kept)  # the caller's images are not touched
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    for i in range(n):  # some window of the zero-padded image, the same in every channel
        assert any(np.array_equal(y[i], padded[i, dy:dy + h, dx:dx + w])
                   for dy in range(2 * pad + 1) for dx in range(2 * pad + 1))


def test_random_erasing_fills_one_rectangle_in_about_half_the_images():
    x = np.full((400, 28, 28, 3), 100, np.uint8)
    y = augmentation.augment(x.copy(), ("erase",), np.random.default_rng(0))
    changed = (y != 100).any(axis=-1)
    erased = changed.reshape(400, -1).any(axis=1)
    assert 0.35 < erased.mean() < 0.65
    for image in changed[erased][:50]:  # one axis-aligned rectangle of 2–25% of the image
        rows, cols = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
        box = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.size <= 0.25 * 28 * 28 + 28
    # the same choices on any number of processes
    whole = augmentation.augment(x[:8].copy(), ("crop", "erase"), np.random.default_rng(5))
    half = augmentation.augment(x[4:8].copy(), ("crop", "erase"), np.random.default_rng(5),
                                positions=np.arange(4, 8), total=8)
    assert np.array_equal(whole[4:], half)


def torch_warp(x: np.ndarray, angle: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The same turn and zoom by PyTorch's grid_sample: each output pixel's place mapped back
    into the input (about the centre), bilinear, the border's pixels beyond it."""
    import torch

    n, h, w, _ = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) - (h - 1) / 2,
                            torch.arange(w, dtype=torch.float64) - (w - 1) / 2, indexing="ij")
    a = torch.tensor(angle, dtype=torch.float64)[:, None, None]
    s = torch.tensor(scale, dtype=torch.float64)[:, None, None]
    sy = (torch.cos(a) * ys - torch.sin(a) * xs) / s
    sx = (torch.sin(a) * ys + torch.cos(a) * xs) / s
    grid = torch.stack([sx / max((w - 1) / 2, 1e-9), sy / max((h - 1) / 2, 1e-9)], dim=-1)
    source = torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2)
    out = torch.nn.functional.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                                          align_corners=True)
    return out.permute(0, 2, 3, 1).round().clamp(0, 255).numpy()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4), h=st.integers(2, 12), w=st.integers(2, 12), c=st.sampled_from([1, 3]),
       seed=st.integers(0, 2**16))
def test_rotate_and_zoom_sample_the_image_as_pytorchs_grid_sample_does(n, h, w, c, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    angle, scale = np.radians(rng.uniform(-30, 30, n)), rng.uniform(0.8, 1.5, n)
    y = augmentation.warp(x, angle, scale)
    assert y.shape == x.shape and y.dtype == np.uint8
    # float32 against float64 arithmetic: a value may round the other way at .5
    assert np.abs(y.astype(float) - torch_warp(x, angle, scale)).max() <= 1


def test_no_turn_and_no_zoom_leave_the_images_and_a_quarter_turn_is_clockwise():
    x = np.random.default_rng(0).integers(0, 256, (3, 7, 7, 3), dtype=np.uint8)
    assert np.array_equal(augmentation.warp(x, np.zeros(3), np.ones(3)), x)
    turned = augmentation.warp(x, np.full(3, np.pi / 2), np.ones(3))
    assert np.array_equal(turned, np.rot90(x, -1, axes=(1, 2)))
    one_wide = np.arange(10, dtype=np.uint8).reshape(1, 10, 1, 1)  # a single column still works
    assert augmentation.warp(one_wide, np.zeros(1), np.full(1, 2.0)).shape == one_wide.shape


def test_the_warp_is_the_same_on_any_number_of_threads(monkeypatch):
    from convnet.engines.numpy import parallel

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)  # enough values to share out
    angle, scale = np.radians(rng.uniform(-10, 10, 9)), rng.uniform(1, 1.15, 9)
    got = []
    for count in (1, 2, 3):
        monkeypatch.setattr(parallel, "threads", lambda count=count: count)
        assert len(parallel.parts(9, x.size * augmentation.WARP_COST)) == count
        got.append(augmentation.warp(x, angle, scale))
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], got[2])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), c=st.sampled_from([1, 3]), seed=st.integers(0, 2**16))
def test_light_scales_contrast_about_the_mean_and_shifts_brightness(n, c, seed):
    import torch

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 6, 5, c), dtype=np.uint8)
    contrast, shift = rng.uniform(0.5, 2, n), rng.uniform(-60, 60, n)
    y = augmentation.light(x, contrast, shift)
    t = torch.tensor(x, dtype=torch.float64)
    mean = t.flatten(1).mean(1)[:, None, None, None]
    expected = ((t - mean) * torch.tensor(contrast)[:, None, None, None] + mean
                + torch.tensor(shift)[:, None, None, None]).round().clamp(0, 255).numpy()
    assert np.abs(y.astype(float) - expected).max() <= 1
    assert np.array_equal(augmentation.light(x, np.ones(n), np.zeros(n)), x)


@pytest.mark.parametrize("kinds", [("rotate",), ("zoom",), ("light",), ("crop", "rotate", "zoom",
                                                                        "light", "erase")])
def test_rotate_zoom_and_light_draw_per_image_and_alike_on_any_number_of_processes(kinds):
    x = np.random.default_rng(1).integers(0, 256, (8, 20, 24, 3), dtype=np.uint8)
    kept = x.copy()
    whole = augmentation.augment(x, kinds, np.random.default_rng(5))
    assert whole.shape == x.shape and whole.dtype == np.uint8 and whole.flags.c_contiguous
    assert np.array_equal(x, kept)  # the caller's images are not touched
    changed = (whole != x).reshape(8, -1).any(axis=1)
    assert changed.sum() >= 7  # each image drew its own change (one may draw almost none)
    half = augmentation.augment(x[4:8], kinds, np.random.default_rng(5),
                                positions=np.arange(4, 8), total=8)
    assert np.array_equal(whole[4:], half)
    again = augmentation.augment(x, kinds, np.random.default_rng(6))
    assert not np.array_equal(whole, again)


# -- initialisation --------------------------------------------------------------------------

def test_whitening_filters_whiten_the_patches(fashion_dir):
    from convnet.data import load_dataset
    from convnet.initial import patches, whitening_filters

    images = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).train.images
    net = Network("conv(12,3,pad=same) relu pool(2) fc(10)", input=(28, 28, 1), seed=0,
                  normalization=((0.286,), (0.353,)))
    filters = whitening_filters(net, images, seed=0)
    assert filters.dtype == net.state_dict()["0.weight"].dtype  # the network's own type
    w = filters.reshape(12, -1)
    assert np.allclose(w[:6], -w[6:12])  # each direction with both signs
    x = patches(net.prepare_images(images[:5000]).astype(np.float64), 3, 3, 5000, seed=1)
    x -= x.mean(axis=0)
    responses = x @ w[:6].T
    assert np.allclose(responses.var(axis=0), 1.0, rtol=0.15)  # unit variance each
    correlation = np.corrcoef(responses.T)
    assert np.abs(correlation - np.eye(6)).max() < 0.1  # and uncorrelated


def test_identity_init_adds_the_identity_to_c_to_c_convs():
    description = "conv(8,3,pad=1) relu conv(8,3,pad=1) relu conv(16,3,pad=1) fc(10)"
    plain = Network(description, input=(8, 8, 1), seed=0)
    changed = Network(description, input=(8, 8, 1), seed=0)
    from convnet.initial import identity_init

    assert identity_init(changed) == 1  # only 2: 8 → 8 (the first layer and 8 → 16 are not)
    difference = changed.state_dict()["2.weight"] - plain.state_dict()["2.weight"]
    expected = np.zeros_like(difference)
    expected[np.arange(8), np.arange(8), 1, 1] = 1
    assert np.array_equal(difference, expected)
    assert np.array_equal(changed.state_dict()["4.weight"], plain.state_dict()["4.weight"])


# -- batch norm's learning rate --------------------------------------------------------------

def test_batch_norm_learns_faster_with_bn_lr_scale():
    import torch

    from convnet.config import OptimizerConfig

    net = Network(SMALL, input=(28, 28, 1), engine="torch", seed=0,
                  optimizer=OptimizerConfig(lr=0.1, momentum=0.0, bn_lr_scale=4.0))
    net.lr = 0.05
    groups = net.engine.optimizer.param_groups
    assert [g["lr"] for g in groups] == [0.05, 0.2]
    before = net.state_dict()
    x, y = batch()
    grads = net.loss_and_grads(x, y)[1]
    net.lr = 0.05
    net.train_step(x, y)
    after = net.state_dict()
    for name, rate in (("0.weight", 0.05), ("1.weight", 0.2), ("1.bias", 0.2)):
        assert np.allclose(after[name], before[name] - rate * grads[name], atol=1e-6), name
    # the optimiser's state keeps its names with the groups reordered
    state = net.engine.optimizer_state()
    assert set(k.rsplit(".", 1)[0] for k in state if k != "steps") <= set(before)
    assert isinstance(torch.__version__, str)


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--ema", "1"], "--ema takes a decay between 0 and 1"),
    (["--ema", "-0.5"], "--ema takes a decay between 0 and 1"),
    (["--ema", "0.3"], "averages next to nothing"),
    (["--lookahead", "1"], "--lookahead takes the steps between pulls"),
    (["--tta-shift", "9"], "--tta-shift is 0 to 4 pixels"),
    (["--bn-lr-scale", "0"], "--bn-lr-scale must be above 0"),
    (["--bn-lr-scale", "2", "--engine", "numpy"], "--bn-lr-scale is the torch engine's"),
    (["--augment", "crop,blur"], "unknown augmentation 'blur'"),
    (["--optimizer", "sgd", "--muon-lr", "0.05"],
     "--muon-lr is the conv kernels' rate under --optimizer muon"),
    (["--optimizer", "muon", "--muon-lr", "0"], "--muon-lr must be above 0"),
    (["--optimizer", "muon", "--muon-lr", "-1"], "--muon-lr must be above 0"),
])
def test_trick_mistakes_are_one_line(capsys, tmp_path, fashion_dir, argv, message):
    code = main(["train", SMALL, "--data-dir", str(fashion_dir), "--epochs", "1",
                 "--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_whitening_needs_a_conv_first_and_identity_init_a_c_to_c_conv(capsys, tmp_path,
                                                                     fashion_dir):
    for description, flag, message in (
            ("pool(2) conv(4,3) relu fc(10)", "--whiten", "the first layer is pool(2)"),
            ("conv(4,30,pad=same) relu fc(10)", "--whiten",
             "--whiten cuts 30×30 patches out of the images for the first layer's filters, but "
             "the images are 28×28"),
            (SMALL, "--identity-init", "this network has none")):
        code = main(["train", description, "--data-dir", str(fashion_dir), "--epochs", "1",
                     "--out", str(tmp_path / flag), flag])
        err = capsys.readouterr().err
        assert code == 2 and message in err


def test_an_average_longer_than_the_run_is_noticed(capsys, tmp_path, fashion_dir):
    code = main(["train", SMALL, "--data-dir", str(fashion_dir), "--epochs", "1",
                 "--val-size", "300", "--engine", "numpy", "--out", str(tmp_path / "run"),
                 "--ema", "0.9999"])
    captured = capsys.readouterr()
    assert code == 0 and "--ema 0.9999 averages over about 10,000 steps" in captured.err


# -- the CPU and the recipes' paths ----------------------------------------------------------

CPUINFO = """processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 17
model name	: AMD EPYC 9R14
flags		: fpu avx2 avx512f avx512_bf16 sse

processor	: 1
vendor_id	: GenuineIntel
cpu family	: 6
model name	: not the first
flags		: fpu
"""


def test_the_cpu_is_read_from_cpuinfo():
    from convnet.cpu import CPU, parse_cpuinfo

    model, flags, vendor, family = parse_cpuinfo(CPUINFO)
    cpu = CPU(model, flags, 2, vendor, family)
    assert model == "AMD EPYC 9R14" and cpu.bf16 and not cpu.amx
    assert (vendor, family) == ("AuthenticAMD", 25)
    assert cpu.describe() == "AMD EPYC 9R14, 2 cores, avx2 avx512f avx512_bf16 (bf16 units)"
    assert not CPU("Xeon", frozenset({"avx512f"}), 2).bf16
    arm = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd\n\n")
    assert arm[1] == frozenset({"fp", "asimd"}) and arm[2:] == ("", 0)
    assert parse_cpuinfo("cpu family\t: ?\n")[3] == 0


def test_openblas_is_asked_for_its_avx2_kernels_on_amds_avx512_before_numpy_loads():
    """On the AMD EPYC Zen 4 (family 25 with AVX-512) OpenBLAS's own choice, its SkylakeX
    kernels, multiplied the engine's shapes slower than its Haswell ones; elsewhere its choice
    stands. OPENBLAS_CORETYPE is read once, as NumPy loads: set only before, never over the
    user's."""
    from convnet.cpu import CPU, blas_kernels, prefer_blas_kernels

    zen4 = CPU("AMD EPYC 9R14", frozenset({"avx2", "avx512f", "avx512_bf16"}), 2,
               "AuthenticAMD", 25)
    assert blas_kernels(zen4) == "Haswell"
    for other in (CPU("AMD EPYC 7B13", frozenset({"avx2"}), 2, "AuthenticAMD", 25),  # Zen 3
                  CPU("AMD EPYC 9B45", zen4.flags, 2, "AuthenticAMD", 26),  # Zen 5: full width
                  CPU("Xeon", frozenset({"avx2", "avx512f", "amx_bf16"}), 2, "GenuineIntel", 6),
                  CPU("Xeon", frozenset({"avx2", "avx512f"}), 2, "GenuineIntel", 6),
                  CPU("?", frozenset(), 1)):
        assert blas_kernels(other) is None
        environ: dict[str, str] = {}
        assert prefer_blas_kernels(other, environ, {}) is None and environ == {}
    environ = {"PATH": "/bin"}
    assert prefer_blas_kernels(zen4, environ, {}) == "Haswell"
    assert environ == {"PATH": "/bin", "OPENBLAS_CORETYPE": "Haswell"}
    environ = {}  # NumPy already loaded: too late, nothing changed
    assert prefer_blas_kernels(zen4, environ, {"numpy": object()}) is None and environ == {}
    environ = {"OPENBLAS_CORETYPE": "SkylakeX"}  # the user's own choice stands
    assert prefer_blas_kernels(zen4, environ, {}) is None
    assert environ == {"OPENBLAS_CORETYPE": "SkylakeX"}


def test_importing_convnet_first_gives_numpy_the_kernels_for_this_cpu():
    """A fresh process that imports convnet before NumPy runs the kernels blas_kernels names for
    this machine's CPU (on others, OpenBLAS's own choice, the same as without convnet)."""
    import os
    import subprocess
    import sys

    from convnet.cpu import _read, blas_kernels
    from convnet.engines.numpy import blas
    if not blas.available():
        pytest.skip("this NumPy's BLAS is not an OpenBLAS that convnet knows")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    code = ("import os, convnet; from convnet.engines.numpy import blas; "
            "print(os.environ.get('OPENBLAS_CORETYPE'), blas.kernel())")
    asked, shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                  text=True, check=True).stdout.split()
    bare = subprocess.run([sys.executable, "-c", "import numpy; from convnet.engines.numpy "
                           "import blas; print(blas.kernel())"], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()
    wanted = blas_kernels(_read())
    assert asked == str(wanted)
    assert shown == (wanted if wanted is not None else bare)


@pytest.fixture()
def cpu_without_bf16(monkeypatch):
    from convnet import cpu

    monkeypatch.setenv("CONVNET_CPU_FLAGS", "avx2 avx512f")
    cpu.this_cpu.cache_clear()
    yield
    cpu.this_cpu.cache_clear()


@pytest.fixture()
def cpu_kind(monkeypatch):
    """cpu_kind(flags, cores): this_cpu() as a CPU with those flags and cores."""
    from convnet import cpu

    def pretend(flags: str, cores: int) -> None:
        monkeypatch.setenv("CONVNET_CPU_FLAGS", flags)
        monkeypatch.setattr(cpu, "_cores", lambda: cores)
        cpu.this_cpu.cache_clear()

    yield pretend
    cpu.this_cpu.cache_clear()


def test_the_ensemble_trains_as_many_members_as_cores_where_its_convolutions_are_avx512(cpu_kind):
    """Three members at once on 2 cores whose bf16 is AVX-512's share the cores (43–46 minutes
    on the AMD EPYC); two at once have a core each (26 minutes); so in float32 by AVX-512 (49
    minutes, 95.09%). With AMX on the bf16 path, in float32 by AVX2 alone (where two voted
    94.99%), on more cores or on a GPU the recipe keeps its three; --ensemble K decides over
    it."""
    from convnet import api
    from convnet.recipes import RECIPES, members_here, recipe

    assert RECIPES["ensemble"]["ensemble"] == 3
    avx512_bf16 = "avx2 avx512f avx512_bf16"
    for flags, cores, device, path, expected in (
            (avx512_bf16, 2, None, "bf16", 2),
            (avx512_bf16, 1, None, "bf16", 2),  # two a core at most (members.py)
            (avx512_bf16, 2, "cpu", "bf16", 2),
            (avx512_bf16, 3, None, "bf16", 3),
            (avx512_bf16, 16, None, "bf16", 3),
            (avx512_bf16 + " amx_bf16 amx_tile", 2, None, "bf16", 3),
            (avx512_bf16, 2, "cuda", "bf16", 3),
            (avx512_bf16, 2, None, "fp32", 2),  # float32's vector units: the same rule
            ("avx2 avx512f", 2, None, "fp32", 2),
            ("avx2 avx512f", 1, None, "fp32", 2),
            ("avx2 avx512f", 3, None, "fp32", 3),
            ("avx2 avx512f amx_bf16 amx_tile", 2, None, "fp32", 2),  # AMX is bf16's alone
            ("avx2 avx512f", 2, "cuda", "fp32", 3),
            ("avx2", 2, None, "fp32", 3),  # float32 by AVX2 alone: the recipe's three
            ("avx2", 1, None, "fp32", 3),
            ("avx2 fma", 16, None, "fp32", 3),
            ("", 2, None, "fp32", 3)):
        cpu_kind(flags, cores)
        assert recipe("ensemble", path, device)["ensemble"] == expected, (flags, cores, device)
        assert "ensemble" not in recipe("best", path, device)
    cpu_kind(avx512_bf16, 2)
    assert members_here(3) == (2, "2 models, not 3: this CPU's bf16 units are AVX-512's and 3 "
                                  "at once would share its 2 cores")
    chosen = api.settings(recipe="ensemble")
    assert chosen.ensemble == 2 and "; 2 models, not 3: this CPU's bf16" in chosen.recipe_line
    assert chosen.recipe_line.endswith("ensemble=2")
    given = api.settings(recipe="ensemble", ensemble=3)  # the command line's count wins
    assert given.ensemble == 3 and "2 models, not 3" not in given.recipe_line
    assert given.recipe_line.endswith("ensemble=3 (the recipe's: 2)")
    on_gpu = api.settings(recipe="ensemble", device="cuda")
    assert on_gpu.ensemble == 3 and "not 3" not in on_gpu.recipe_line
    cpu_kind("avx2 avx512f", 2)  # no bf16 units: the float32 path, two at once as well
    assert members_here(3, None, "fp32") == (2, "2 models, not 3: in float32, 3 at once would "
                                                "share its 2 cores")
    plain = api.settings(recipe="ensemble")
    assert plain.ensemble == 2 and plain.recipe_line.startswith(
        "recipe ensemble (float32 path: this CPU has no bf16 units")
    assert "; 2 models, not 3: in float32, 3 at once" in plain.recipe_line
    assert members_here(3, None, "bf16") == (3, None)  # a bf16 path it cannot take here
    cpu_kind("avx2 fma", 2)  # neither bf16 units nor AVX-512: three, at once
    assert members_here(3, None, "fp32") == (3, None)
    avx2 = api.settings(recipe="ensemble")
    assert avx2.ensemble == 3 and "not 3" not in avx2.recipe_line
    assert avx2.recipe_line.startswith("recipe ensemble (float32 path: this CPU has no bf16")
    assert avx2.recipe_line.endswith("ensemble=3")
    assert api.settings(recipe="ensemble", ensemble=2).ensemble == 2


def test_a_recipe_takes_the_float32_path_where_there_are_no_bf16_units(cpu_without_bf16):
    from convnet.recipes import FP32, RECIPES, path_for, recipe

    path, why = path_for()
    assert path == "fp32" and "no bf16 units" in why
    settings = recipe("fast91")
    assert settings["bf16"] is False
    assert all(settings[k] == v for k, v in FP32["fast91"].items())
    assert recipe("fast91", "bf16")["bf16"] is True
    assert path_for("numpy")[0] == "fp32" and RECIPES["fast91"]["bf16"] is True


def test_recipes_move_their_kernels_by_muon_where_it_was_measured():
    """Every recipe but fast91 moves its conv kernels by Muon on both paths: fast93 (5 epochs
    at rate 0.1 on both), fast94 (9 epochs at 0.2 with bf16, 11 at 0.1 on fast93's network in
    float32), best (30 epochs at 0.2 with bf16, 22 in float32) and the ensemble's members (35
    on both); fast91 keeps SGD, with no Muon rate left behind."""
    from convnet.recipes import EARLY_POOL, HEAD, recipe
    from convnet.train import TrainConfig

    for name, bf16_way, fp32_way in (("fast93", ("muon", 0.1, 5), ("muon", 0.1, 5)),
                                     ("fast94", ("muon", 0.2, 9), ("muon", 0.1, 11)),
                                     ("best", ("muon", 0.2, 30), ("muon", 0.2, 22)),
                                     ("ensemble", ("muon", 0.2, 35), ("muon", 0.2, 35)),
                                     ("fast91", ("sgd", None, 2), ("sgd", None, 2))):
        bf16, fp32 = recipe(name, "bf16"), recipe(name, "fp32")
        for settings, way in ((bf16, bf16_way), (fp32, fp32_way)):
            assert (settings["optimizer"], settings.get("muon_lr"), settings["epochs"]) == way
        if name == "fast93":  # float32 also votes over the test image shifted (since 12-04)
            assert {**fp32, "bf16": True, "channels_last": True, "tta_shift": 0} == \
                {"tta_shift": 0, **bf16} and fp32["tta_shift"] == 1
        if name == "fast94":  # the narrower network, everything else the bf16 path's
            assert fp32["network"] == EARLY_POOL + HEAD != bf16["network"]
            assert {**fp32, "bf16": True, "channels_last": True, "network": bf16["network"],
                    "epochs": 9, "muon_lr": 0.2} == bf16
        for settings in (bf16, fp32):
            settings.pop("ensemble", None)  # how many models: the command's, not a model's
            config = TrainConfig(**settings).check()
            assert config.optimizer_config().nesterov  # Muon's momentum is Nesterov's too


def test_the_ensembles_members_are_best_with_a_residual_block_on_either_path(cpu_kind):
    from convnet.recipes import PATHS, recipe
    from convnet.shapes import infer
    from convnet.spec import parse

    cpu_kind("avx2 avx512f avx512_bf16 amx_bf16 amx_tile", 4)  # three members (test above)
    for path in PATHS:
        members, best = recipe("ensemble", path), recipe("best", path)
        assert members.pop("ensemble") == 3
        network = members["network"]
        epochs = members["epochs"]
        assert {**members, "recipe": None} == \
            {**best, "recipe": None} | {"network": network, "epochs": epochs}
        # 35 epochs on both paths: five more than best's bf16 path (both with Muon), thirteen
        # more than its float32 path's 22 (95.05% and 95.01% a model in float32)
        assert epochs == 35 == recipe("best", "bf16")["epochs"] + 5
        spec = parse(network)
        assert infer(spec, (28, 28, 1))[-1].output == (10,)
        kinds = [layer.type for layer in spec.layers]
        # one residual block of two convs in place of best's second 64-filter conv
        assert kinds.count("residual") == 1
        assert network == recipe("ensemble", "bf16")["network"] != best["network"]


def test_train_says_which_path_a_recipe_takes(capsys, tmp_path, fashion_dir, cpu_without_bf16):
    code = main(["train", "--recipe", "fast91", "--data-dir", str(fashion_dir), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--val-size", "300"])
    out = capsys.readouterr().out
    assert code == 0 and "float32 path: this CPU has no bf16 units" in out.splitlines()[0]
    saved = json.loads((tmp_path / "run/train.json").read_text())
    assert saved["bf16"] is False


def test_the_recipe_line_shows_what_the_command_line_changed(capsys, tmp_path, fashion_dir,
                                                             cpu_without_bf16):
    net = "conv(4,3,pad=same,bias=false) pool(2) batchnorm relu fc(10)"
    code = main(["train", "--recipe", "fast91", net, "--data-dir", str(fashion_dir),
                 "--epochs", "1", "--out", str(tmp_path / "run"), "--val-size", "300"])
    first = capsys.readouterr().out.splitlines()[0]
    assert code == 0 and first.startswith("recipe fast91 (float32 path")
    # the run's network and epochs, each with the recipe's beside it; the rest as the recipe has it
    assert f": {net} (in place of the recipe's network) — " in first
    assert "epochs=1 (the recipe's: 2)" in first and "lr=0.3," in first
    assert "conv(16,3" not in first  # the recipe's own network is not what runs


def test_muon_trains_from_the_command_line_and_a_recipes_rate_leaves_with_it(
        capsys, tmp_path, fashion_dir, monkeypatch):
    """--optimizer muon trains (both engines) and is saved with the run; a recipe that brings
    Muon and its rate, run with another optimiser, drops the rate instead of refusing it."""
    from convnet import recipes

    for engine in ("numpy", "torch"):
        code = main(["train", SMALL, "--data-dir", str(fashion_dir), "--epochs", "1",
                     "--val-size", "300", "--engine", engine, "--optimizer", "muon",
                     "--muon-lr", "0.05", "--out", str(tmp_path / engine)])
        assert code == 0, capsys.readouterr().err
        saved = json.loads((tmp_path / engine / "train.json").read_text())
        assert saved["optimizer"] == "muon" and saved["muon_lr"] == 0.05
    monkeypatch.setitem(recipes.RECIPES, "muon-test", {
        "network": SMALL, "epochs": 1, "optimizer": "muon", "muon_lr": 0.05, "engine": "numpy",
        "val_size": 300})
    monkeypatch.setitem(recipes.FP32, "muon-test", {})
    code = main(["train", "--recipe", "muon-test", "--optimizer", "sgd", "--data-dir",
                 str(fashion_dir), "--out", str(tmp_path / "sgd")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    saved = json.loads((tmp_path / "sgd/train.json").read_text())
    assert saved["optimizer"] == "sgd" and saved["muon_lr"] is None


def test_fast93_on_the_float32_path_whitens_its_first_conv(capsys, tmp_path, fashion_dir,
                                                           cpu_without_bf16):
    from convnet.recipes import recipe

    assert recipe("fast93", "fp32")["whiten"] and recipe("fast91", "fp32")["whiten"]
    code = main(["train", "--recipe", "fast93", "--data-dir", str(fashion_dir), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--val-size", "300", "--batch-size", "64"])
    assert code == 0 and "whiten=True" in capsys.readouterr().out.splitlines()[0]
    saved = json.loads((tmp_path / "run/train.json").read_text())
    assert saved["whiten"] is True and saved["ema"] == 0.98 and saved["bf16"] is False


def test_a_recipe_leaves_out_its_whitening_for_a_network_without_a_first_conv(
        capsys, tmp_path, fashion_dir, cpu_without_bf16):
    code = main(["train", "--recipe", "fast93", "pool(2) conv(4,3) relu fc(10)", "--data-dir",
                 str(fashion_dir), "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--val-size", "300"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "recipe fast93: the first layer is pool(2), not a conv, so it is not initialised " \
           "by whitening" in captured.out + captured.err
    assert json.loads((tmp_path / "run/train.json").read_text())["whiten"] is False
    # asked for by hand, the same network is an error: the user said --whiten
    code = main(["train", "pool(2) conv(4,3) relu fc(10)", "--whiten", "--data-dir",
                 str(fashion_dir), "--epochs", "1", "--out", str(tmp_path / "run2")])
    assert code == 2 and "--whiten sets the first layer's filters" in capsys.readouterr().err


def test_a_recipe_on_the_numpy_engine_takes_its_float32_path(capsys, tmp_path, fashion_dir):
    code = main(["train", "--recipe", "fast91", "--engine", "numpy", "--data-dir",
                 str(fashion_dir), "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--val-size", "300"])
    out = capsys.readouterr().out
    assert code == 0 and "float32 path: the NumPy engine computes in float32" in out
