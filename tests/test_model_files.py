"""Model directories from strangers: every wrong model.json, weights file, ensemble and resume
state ends in one line and exit status 2 for predict, eval and serve — before anything large is
allocated, and never as a model that silently answers differently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from convnet import checkpoint
from convnet.cli import main


@pytest.fixture(scope="module")
def best(served_model) -> Path:
    return checkpoint.resolve(served_model)


def copy_with(best: Path, target: Path, change) -> Path:
    """A copy of the model whose model.json is change(meta) (a dict, or any JSON text)."""
    shutil.copytree(best, target)
    meta = json.loads((target / "model.json").read_text())
    changed = change(meta)
    text = changed if isinstance(changed, str) else json.dumps(changed)
    (target / "model.json").write_text(text)
    return target


def one_line_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "", captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convnet: error:"), captured.err
    return lines[0]


def refused_everywhere(capsys, monkeypatch, model: Path, fragment: str) -> None:
    """predict, eval and serve all refuse the model with `fragment` in their one line."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served a bad model"))
    image = model.parent / "image.png"
    from PIL import Image
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    for argv in (["predict", model, image], ["eval", model], ["serve", model]):
        assert fragment in one_line_error(capsys, *argv), argv


def _set(path: str, value):
    """A change that sets meta[a][b]... = value for path 'a.b...'."""
    def change(meta):
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
        return meta
    return change


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("change, fragment", [
    (lambda m: [m], "is not a convnet checkpoint"),
    (lambda m: '"just text"', "is not a convnet checkpoint"),
    (lambda m: "5", "is not a convnet checkpoint"),
    (lambda m: "{not json", "damaged checkpoint"),
    (_set("version", "1"), "'version' must be a whole number"),
    (_set("normalization", "0.5"), "'normalization' must be null or"),
    (_set("normalization", {"mean": ["0.5"], "std": [0.2]}), "normalization 'mean' must be a "
                                                              "list of 1 finite numbers"),
    (_set("normalization", {"mean": [0.5], "std": [0.0]}), "'std' values must be positive"),
    (_set("normalization", {"mean": [0.5, 0.5], "std": [1, 1]}), "list of 1 finite numbers"),
    (_set("spec.layers.0.kernel", 5), "'spec' is not a valid network description"),
    (_set("spec.layers.0.filters", "6"), "'spec' is not a valid network description"),
    (_set("spec.layers.0.type", "lstm"), "'spec' is not a valid network description"),
    (_set("spec", [1, 2]), "'spec' must be an object with a list of 'layers'"),
    (_set("classes", "0123456789"), "'classes' must be a list of names, got text"),
    (_set("classes", list(range(10))), "'classes' must be a list of names"),
    (_set("classes", ["a"] * 10), "class names repeat: a"),
    (_set("classes", ["a", "b"]), "2 class names for a network with 10 outputs"),
    (_set("classes", ["x" * 2000] + [str(i) for i in range(9)]), "1 to 1,000 characters"),
    (_set("tta", "false"), "'tta' must be true/false, got 'false'"),
    (_set("tta", 0), "'tta' must be true/false"),
    (_set("dtype", "float16"), "'dtype' must be 'float32' or 'float64'"),
    (_set("input", "28x28x1"), "'input' must be [height, width, channels]"),
    (_set("input", [28, 28, -1]), "input channels must be between 1 and 65,536"),
    (_set("input", [28, 28, 1.5]), "'input' must be [height, width, channels]"),
    (_set("input", [32, 32, 1]), "'spec' is for input 28x28x1 but 'input' says 32x32x1"),
    (_set("description", "conv(7,5) relu"), "'description' and 'spec' describe different"),
    (_set("training", "fashion-mnist"), "'training' must be an object"),
    (_set("training.data", 5), "'data' must be text or null"),
    (_set("metrics", _nested(10)), "'metrics' must be an object"),
    (lambda m: json.dumps(m)[:-1] + ', "deep": ' + _nested(100_000) + "}", "nested too deeply"),
    (lambda m: json.dumps(m)[:-1] + ', "deep": ' + _nested(40) + "}", "more than 32 deep"),
    (_set("kind", "zoo"), "unknown kind 'zoo'"),
])
def test_a_wrong_model_json_is_one_line(capsys, monkeypatch, tmp_path, best, change, fragment):
    model = copy_with(best, tmp_path / "model", change)
    refused_everywhere(capsys, monkeypatch, model, fragment)


def test_a_huge_layer_is_refused_before_anything_is_allocated(capsys, monkeypatch, tmp_path,
                                                                best):
    """A 1 KB model.json asking for a 10⁹-unit layer: refused by the parser's bounds; one
    within the bounds but larger than the machine: refused by the memory check, not by a
    MemoryError after gigabytes."""
    def billion(meta):
        meta["spec"]["layers"][-2]["units"] = 10**9
        meta.pop("description")
        return meta

    model = copy_with(best, tmp_path / "billion", billion)
    refused_everywhere(capsys, monkeypatch, model, "must be at most 65,536")

    def wide(meta):
        layers = meta["spec"]["layers"]
        layers[-2]["units"] = 65536
        layers.insert(-1, {"type": "fc", "units": 65536, "bias": True})
        layers.insert(-1, {"type": "fc", "units": 10, "bias": True})
        meta.pop("description")
        return meta

    model = copy_with(best, tmp_path / "wide", wide)
    monkeypatch.setenv("CONVNET_MEMORY", str(1 << 30))
    refused_everywhere(capsys, monkeypatch, model, "needs about")


def test_a_model_json_larger_than_the_limit_is_not_read(capsys, monkeypatch, tmp_path, best):
    model = copy_with(best, tmp_path / "big", lambda m: {**m, "padding": "x" * (17 << 20)})
    refused_everywhere(capsys, monkeypatch, model, "a convnet JSON file is at most")


def rewrite_weights(model: Path, change) -> None:
    state = load_file(str(model / "model.safetensors"))
    save_file(change(state), str(model / "model.safetensors"))


@pytest.mark.parametrize("change, fragment", [
    (lambda s: {k: v.astype(np.int32) if v.dtype.kind == "f" else v for k, v in s.items()},
     "is stored as I32; it must be floating point"),
    (lambda s: {k: v for k, v in s.items() if k != "0.bias"}, "missing 0.bias"),
    (lambda s: {**s, "extra.weight": np.zeros(3, np.float32)}, "unexpected extra.weight"),
    (lambda s: {**s, "0.bias": np.zeros(7, np.float32)}, "weight 0.bias has shape (7,)"),
    (lambda s: {**s, "0.bias": np.full(6, np.nan, np.float32)}, "contains NaN or infinity"),
])
def test_weights_that_do_not_fit_are_refused(capsys, monkeypatch, tmp_path, best, change,
                                             fragment):
    model = copy_with(best, tmp_path / "model", lambda m: m)
    rewrite_weights(model, change)
    refused_everywhere(capsys, monkeypatch, model, fragment)


def test_a_safetensors_header_that_lies_is_refused(capsys, monkeypatch, tmp_path, best):
    model = copy_with(best, tmp_path / "model", lambda m: m)
    data = bytearray((model / "model.safetensors").read_bytes())
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_size])
    name = next(k for k in header if k != "__metadata__")
    header[name]["data_offsets"] = [0, 10**12]  # claims a terabyte
    text = json.dumps(header).encode()
    text += b" " * (header_size - len(text)) if len(text) <= header_size else b""
    (model / "model.safetensors").write_bytes(len(text).to_bytes(8, "little") + text +
                                              data[8 + header_size:])
    refused_everywhere(capsys, monkeypatch, model, "damaged checkpoint")


# -- ensembles ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ensemble(served_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ens") / "ensemble"
    assert main(["ensemble", str(served_model), str(served_model), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("members, fragment", [
    ([], "an ensemble has 2 to 256 members, this one 0"),
    (["members/0"], "this one 1"),
    ([".", "."], "member '.' is not a folder inside the ensemble's directory"),
    (["members/0", ""], "member '' is not a folder inside"),
    (["members/0", "../elsewhere"], "member '../elsewhere' is not a folder inside"),
    (["members/0", "/etc"], "member '/etc' is not a folder inside"),
    (["members/0", "members/nothing"], "member 'members/nothing' has no model.json"),
    (["members/0", 1], "'members' must be a list of member directories"),
])
def test_an_ensemble_holds_two_or_more_models_inside_itself(capsys, monkeypatch, tmp_path,
                                                            ensemble, members, fragment):
    model = copy_with(ensemble, tmp_path / "ens", _set("members", members))
    refused_everywhere(capsys, monkeypatch, model, fragment)


def test_an_ensemble_inside_an_ensemble_is_refused(capsys, monkeypatch, tmp_path, ensemble):
    outer = copy_with(ensemble, tmp_path / "outer", _set("members", ["members/0", "inner"]))
    shutil.copytree(ensemble, outer / "inner")
    refused_everywhere(capsys, monkeypatch, outer, "is itself an ensemble")


def test_a_symlink_out_of_the_ensemble_is_refused(capsys, monkeypatch, tmp_path, ensemble):
    model = copy_with(ensemble, tmp_path / "ens", lambda m: m)
    shutil.rmtree(model / "members" / "1")
    (model / "members" / "1").symlink_to(ensemble / "members" / "0")
    refused_everywhere(capsys, monkeypatch, model, "member 'members/1' is not a folder inside")


# -- resuming ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(served_model) -> Path:
    return Path(served_model)


@pytest.mark.parametrize("file, change, fragment", [
    ("train.json", _set("epochs", "5"), "'epochs' must be a number"),
    ("train.json", _set("lr", True), "'lr' must be a number"),
    ("train.json", _set("tta", "false"), "'tta' must be true/false"),
    ("train.json", _set("surprise", 1), "unknown settings: surprise"),
    ("train.json", lambda m: [m], "must be a JSON object"),
    ("last/training.json", _set("epoch", "2"), "'epoch' must be a whole number"),
    ("last/training.json", _set("best", 3), "'best' must be"),
    ("last/training.json", _set("rng", "seed"), "'rng' must be an object or null"),
])
def test_a_wrong_run_state_is_refused_on_resume(capsys, tmp_path, run_dir, file, change,
                                                fragment):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    path = run / file
    changed = change(json.loads(path.read_text()))
    path.write_text(json.dumps(changed))
    assert fragment in one_line_error(capsys, "train", "--resume", run, "--epochs", "3")


def test_resume_points_from_a_checkpoint_to_its_run(capsys, run_dir):
    error = one_line_error(capsys, "train", "--resume", run_dir / "best")
    assert f"--resume takes the run directory, not one of its checkpoints: --resume {run_dir}" \
        in error


def test_a_numpy_checkpoint_names_pytorch_without_importing_it(tmp_path):
    """Saving names the PyTorch installed (from its metadata) but doesn't import it: the
    import took 1.7 s of a NumPy-engine run that never used PyTorch."""
    import subprocess
    import sys
    from importlib import metadata

    code = (
        "import sys, json; from pathlib import Path\n"
        "from convnet import Network, checkpoint\n"
        "net = Network('conv(2,3) relu fc(2)', input=(5, 5, 1), engine='numpy', seed=0)\n"
        f"checkpoint.save(net, Path({str(tmp_path / 'model')!r}), classes=('a', 'b'))\n"
        "print(json.dumps('torch' in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "false"
    saved = json.loads((tmp_path / "model" / "model.json").read_text())
    assert saved["versions"]["torch"] == metadata.version("torch")
    assert saved["versions"]["numpy"] == np.__version__
