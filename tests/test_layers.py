"""One home per layer kind: every kind in the registry has what a kind must have — its
arithmetic and explanations in both languages, an entry in each engine, a row in the README —
and every kind is drawn by `show` and the page and exported to ONNX."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

from convnet import checkpoint, inspector, spec
from convnet.cli import main
from convnet.engines.numpy.model import BUILDERS
from convnet.engines.torch.build import MODULES
from convnet.layers import REGISTRY, markdown_table
from convnet.network import Network
from convnet.shapes import infer

README = Path(__file__).resolve().parent.parent / "README.md"
HANGUL = re.compile("[\uac00-\ud7a3]")


def missing_parts(cls) -> list[str]:
    """What a kind lacks, in words, or [] when it is complete."""
    missing = []
    for attribute in ("names", "usage", "summary", "example", "order"):
        if not getattr(cls, attribute, None):
            missing.append(f"its {attribute}")
    if cls not in BUILDERS:
        missing.append("an entry in the numpy engine (BUILDERS in engines/numpy/model.py)")
    if cls not in MODULES:
        missing.append("an entry in the torch engine (MODULES in engines/torch/build.py)")
    if f"`{cls.example}`" not in README.read_text(encoding="utf-8"):
        missing.append("a row in the README's layer table (scripts/update_readme.py)")
    try:
        network = spec.parse(cls.example)
        rows = [row for r in infer(network, cls.example_input) for row in r.walk()
                if type(row.layer) is cls]
        if not rows:
            missing.append(f"an example that uses it (got {cls.example!r})")
        for row in rows:
            english, korean = row.layer.explain(row, "en"), row.layer.explain(row, "ko")
            if not english:
                missing.append("an explanation in English")
            if not HANGUL.search(korean) and korean == english:
                missing.append("an explanation in Korean")
    except NotImplementedError:
        missing.append("its shape rule or explanation (geometry, explain)")
    return missing


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_kind_is_complete(name):
    cls = REGISTRY[name]
    assert missing_parts(cls) == [], f"{name} lacks " + ", ".join(missing_parts(cls))


def test_a_missing_engine_entry_is_named(monkeypatch):
    from convnet.layers.dropout import Dropout2d

    monkeypatch.delitem(BUILDERS, Dropout2d)
    assert missing_parts(Dropout2d) == [
        "an entry in the numpy engine (BUILDERS in engines/numpy/model.py)"]
    with pytest.raises(TypeError, match="the numpy engine has no layer for Dropout2d; add "
                                        "it to BUILDERS"):
        Network("conv(2,3) dropout2d(0.1) fc(2)", input="6x6x1")


def test_the_readme_holds_the_generated_layer_table():
    assert markdown_table() in README.read_text(encoding="utf-8"), \
        "the README's layer table is stale: run scripts/update_readme.py"


def test_help_lists_every_kind(capsys):
    with pytest.raises(SystemExit):
        main(["inspect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for cls in REGISTRY.values():
        for word in cls.names:
            assert word in text
        assert " ".join(cls.summary.split()) in text


# -- every kind drawn, served and exported ------------------------------------------------------

EVERY_KIND = [
    ("conv(4,3,pad=1,bias=false) batchnorm relu dropout2d(0.2) pool(3,stride=2,pad=1,floor=true) "
     "residual(conv(4,3,pad=1) relu conv(4,3,pad=1), shortcut=conv(4,1)) relu "
     "avgpool(2,floor=true) sigmoid globalavgpool dropout(0.1) fc(6) tanh fc(3)", (12, 12, 3)),
    ("maxpool(2) conv(3,3) flatten fc(5) relu fc(3) softmax", (10, 10, 1)),
]


def test_the_examples_cover_every_kind():
    used = {type(row.layer) for text, shape in EVERY_KIND
            for r in infer(spec.parse(text), shape) for row in r.walk()}
    assert set(REGISTRY.values()) <= used


@pytest.fixture(scope="module", params=range(len(EVERY_KIND)))
def saved(request, tmp_path_factory) -> Path:
    text, shape = EVERY_KIND[request.param]
    net = Network(text, input=shape, seed=request.param, engine="numpy")
    rng = np.random.default_rng(0)  # batch norm statistics that are not the defaults
    state = net.state_dict()
    for name, value in state.items():
        if name.endswith("running_mean"):
            state[name] = rng.normal(0, 0.1, value.shape).astype(value.dtype)
        if name.endswith("running_var"):
            state[name] = rng.uniform(0.5, 2, value.shape).astype(value.dtype)
    net.load_state_dict(state)
    directory = tmp_path_factory.mktemp("every") / "model"
    checkpoint.save(net, directory, classes=("a", "b", "c"))
    return directory


def image_file(directory: Path, shape: tuple[int, int, int]) -> Path:
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = directory.parent / "image.png"
    Image.fromarray(pixels[:, :, 0] if shape[2] == 1 else pixels).save(path)
    return path


def test_show_draws_every_kind(capsys, saved):
    net, _ = checkpoint.load(saved, engine="numpy")
    image = image_file(saved, net.input_shape)
    out = saved.parent / "inside.png"
    assert main(["show", str(saved), str(image), "--out", str(out)]) == 0
    assert f"{len(net.spec.layers) - 1} layers drawn" in capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_the_page_draws_every_kind(saved):
    from fastapi.testclient import TestClient
    from PIL import Image

    from convnet.web.app import create_app

    net, meta = checkpoint.load(saved, engine="numpy")
    client = TestClient(create_app(net, meta), base_url="http://127.0.0.1")
    image = image_file(saved, net.input_shape).read_bytes()
    result = client.post("/api/activations", files={"file": ("i.png", image, "image/png")}).json()
    model = client.get("/api/model").json()
    assert [layer["text"] for layer in model["layers"]] == \
        [layer.to_text() for layer in net.spec.layers]
    assert [layer["name"] for layer in result["layers"]] == \
        [row.name for row in net.shapes]
    for layer in result["layers"]:  # every layer's values, drawn by the page
        assert len(__import__("base64").b64decode(layer["data"])) > 0
    for i, layer in enumerate(model["layers"]):  # each beside its own arithmetic
        assert layer["explain"] == inspector.explain_layer(net.shapes[i])
        assert layer["explain"].startswith(f"{i} ")


def test_every_kind_exports_to_onnx(capsys, saved):
    import onnxruntime

    target = saved.parent / "model.onnx"
    assert main(["export", str(saved), "--onnx", str(target)]) == 0
    net, _ = checkpoint.load(saved, engine="numpy")
    images = np.random.default_rng(2).integers(0, 256, (5, *net.input_shape), dtype=np.uint8)
    session = onnxruntime.InferenceSession(str(target))
    probabilities = session.run(None, {"images": images.astype(np.float32) / 255})[0]
    assert np.abs(probabilities - net.predict(images)).max() < 1e-4
