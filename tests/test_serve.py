"""`convnet serve`: every API endpoint, bad uploads, and the real server from the command line."""

from __future__ import annotations

import base64
import io
import urllib.request

import numpy as np
import pytest
from PIL import Image

from convnet import checkpoint
from convnet.cli import main
from convnet.data import load_dataset
from serving import running_server

@pytest.fixture(scope="module")
def model(served_model):
    return served_model


@pytest.fixture(scope="module")
def client(model, fashion_dir):
    from fastapi.testclient import TestClient

    from convnet.web.app import create_app
    net, meta = checkpoint.load(model, engine="numpy")
    test = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test
    return TestClient(create_app(net, meta, test.images[:5], labels=test.labels[:5]),
                      base_url="http://127.0.0.1")


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if mode != "CMYK" else "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def boot(fashion_dir) -> bytes:
    return png(load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test.images[0, :, :, 0])


def test_the_page_needs_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and "convnet: inside the network" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN assets
    assert client.get("/docs").status_code == 404  # the Swagger page would load a CDN


def test_model_and_openapi(client):
    model = client.get("/api/model").json()
    assert model["state"] == "ready" and model["input"] == [28, 28, 1]
    assert len(model["classes"]) == 10 and model["first_conv"] == "0"
    assert model["explain"][0].startswith("0 conv(6,5): (28 − 5 + 2·0)/1 + 1 = 24")
    assert model["inspect"]["params"] == sum(layer["params"] for layer in
                                             model["inspect"]["layers"])
    assert [layer["cell"] for layer in model["layers"]] == [
        "conv", "elementwise", "maxpool", "conv", "elementwise", "maxpool", None, "fc", None]
    assert len(model["colours"]["sequential"]) == 256
    korean = client.get("/api/model?lang=ko").json()
    assert "가중치" in korean["explain"][0]
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/model", "/api/predict", "/api/activations", "/api/cell", "/api/inspect",
            "/api/examples", "/api/examples/{index}", "/api/animation", "/api/layer",
            "/api/filters", "/api/training", "/api/version"} <= set(paths)


def test_predict_matches_the_model(client, model, boot):
    result = client.post("/api/predict", files={"file": ("boot.png", boot, "image/png")}).json()
    net, _ = checkpoint.load(model, engine="numpy")
    expected = net.predict(np.asarray(Image.open(io.BytesIO(boot)))[None, :, :, None])[0]
    assert np.allclose(result["probabilities"], expected, atol=1e-6)
    assert result["top"][0]["probability"] == max(result["probabilities"])


def dequantized(entry: dict) -> np.ndarray:
    """The values the page draws, back from their bytes and scale."""
    data = np.frombuffer(base64.b64decode(entry["data"]), np.uint8).astype(np.float64)
    scale = entry["scale"]
    return scale["low"] + data / 255 * (scale["high"] - scale["low"])


def test_activations_of_every_layer_are_the_networks(client, model, boot):
    from convnet.inside import activations

    result = client.post("/api/activations", files={"file": ("b.png", boot, "image/png")}).json()
    net, _ = checkpoint.load(model, engine="numpy")
    image = np.asarray(Image.open(io.BytesIO(boot)))[:, :, None]
    views = activations(net, image)
    layers = result["layers"]
    assert [layer["name"] for layer in layers] == [str(i) for i in range(9)]
    for layer, view in zip(layers, views):
        if layer["kind"] == "maps":
            h, w, c = view.values.shape
            assert (layer["height"], layer["width"], layer["count"]) == (h, w, c)
            expected = view.values[:, :, :layer["shown"]].transpose(2, 0, 1).ravel()
        else:
            expected = view.values[:layer["shown"]]
        step = (layer["scale"]["high"] - layer["scale"]["low"]) / 255
        assert np.abs(dequantized(layer) - expected).max() <= step / 2 + 1e-6
        assert layer["scale"]["min"] == pytest.approx(float(view.values.min()))
    assert abs(sum(result["probabilities"]) - 1) < 1e-6
    softmax = result["softmax"]  # taken apart: exp(z − max) / sum
    z = np.array(softmax["logits"])
    assert np.allclose(softmax["exp"], np.exp(z - z.max()))
    assert np.allclose(softmax["probabilities"], result["probabilities"], atol=1e-6)
    assert result["input"]["resized"] is False and result["input"]["original"] == [28, 28]
    again = client.get(f"/api/activations?image={result['image']}").json()
    assert again["probabilities"] == result["probabilities"]


def test_an_image_of_another_size_is_resized_and_the_answer_says_so(client):
    wide = png(np.tile((np.arange(500) % 256).astype(np.uint8), (3, 1)))  # a 500×3 drawing
    result = client.post("/api/activations", files={"file": ("w.png", wide, "image/png")})
    assert result.status_code == 200
    assert result.json()["input"]["resized"] is True
    assert result.json()["input"]["original"] == [500, 3]


def held(client, image: bytes) -> str:
    return client.post("/api/activations", files={"file": ("b.png", image, "image/png")}
                       ).json()["image"]


@pytest.mark.parametrize("layer, channel, row, column", [
    ("0", 2, 10, 13), ("3", 5, 0, 11), ("2", 1, 3, 4), ("7", 4, 0, 0), ("1", 0, 5, 5)])
def test_one_number_is_the_one_show_cell_prints(client, model, boot, tmp_path, capsys, layer,
                                                channel, row, column):
    """The page's numbers come from the same code as `convnet show --cell`: the same lines."""
    key = held(client, boot)
    cell = client.get("/api/cell", params={"image": key, "layer": layer, "row": row,
                                           "column": column, "channel": channel}).json()
    (tmp_path / "b.png").write_bytes(boot)
    assert main(["show", str(model), str(tmp_path / "b.png"), "--out", str(tmp_path / "s.png"),
                 "--cell", f"{layer},{row},{column},{channel}"]) == 0
    printed = capsys.readouterr().out.splitlines()[1:]
    assert cell["lines"] == printed
    if cell["kind"] in ("conv", "fc"):
        w, x = np.array(cell["weights"]), np.array(cell["window"])
        assert np.allclose(cell["products"], w * x)
        assert cell["total"] == pytest.approx(float(np.sum(w * x)) + cell["bias"])
        assert cell["output"] == pytest.approx(cell["total"], abs=1e-4)  # the layer's own
        assert cell["relu"] == (None if layer == "7" else pytest.approx(max(cell["total"], 0.0)))
    if cell["kind"] == "maxpool":
        assert cell["total"] == max(v for r in cell["window"] for v in r)
    if cell["kind"] == "conv" and layer == "0":
        assert cell["receptive"] == [row, column, row + 4, column + 4]
    korean = client.get("/api/cell", params={"image": key, "layer": layer, "row": row,
                                             "column": column, "channel": channel,
                                             "lang": "ko"}).json()
    assert korean["lines"] != cell["lines"] and korean["total"] == cell["total"]


@pytest.mark.parametrize("params, status, message", [
    ({"layer": "6", "channel": 0, "row": 0, "column": 0}, 422, "layer 6 flatten is not a conv"),
    ({"layer": "0", "channel": 6, "row": 0, "column": 0}, 422, "outside layer 0's output 24x24x6"),
    ({"layer": "0", "channel": 0, "row": 24, "column": 0}, 422, "outside layer 0's output"),
    ({"layer": "12", "channel": 0, "row": 0, "column": 0}, 422, "no layer '12'"),
    ({"layer": "0", "channel": 0, "row": -1, "column": 0}, 422, "row"),
    ({"layer": "0", "channel": 0, "row": 0, "column": "x"}, 422, "column"),
])
def test_a_cell_that_does_not_exist(client, boot, params, status, message):
    response = client.get("/api/cell", params={"image": held(client, boot), **params})
    assert response.status_code == status and message in response.json()["error"]


def test_an_image_the_server_no_longer_holds(client):
    response = client.get("/api/cell", params={"image": "0" * 20, "layer": "0", "row": 0,
                                               "column": 0, "channel": 0})
    assert response.status_code == 404 and "give it again" in response.json()["error"]


@pytest.mark.parametrize("name, description", [
    ("stride1", "conv(1,3)"), ("stride2", "conv(1,3,stride=2)"), ("pad1", "conv(1,3,pad=1)"),
    ("maxpool", "pool(2)")])
def test_the_lecture_animations_step_to_the_inspectors_size(client, name, description):
    from convnet import inspector
    from convnet.spec import parse

    answer = client.get(f"/api/animation?name={name}").json()
    size = (len(answer["input"]), len(answer["input"][0]), 1)
    output = inspector.as_json(parse(description), size)["layers"][0]["output"]
    assert answer["size"] == output[:2] and len(answer["steps"]) == output[0] * output[1]
    assert np.array(answer["output"]).shape == tuple(output[:2])
    top, _, left, _ = answer["pad"]
    padded = np.pad(np.array(answer["input"]), ((top, top), (left, left)),
                    constant_values=-np.inf if name == "maxpool" else 0)
    kh, kw = answer["kernel"]
    for i, (y, x) in enumerate(answer["steps"]):  # each step's window makes its output cell
        window = padded[y:y + kh, x:x + kw]
        r, c = divmod(i, output[1])
        made = window.max() if name == "maxpool" else \
            float(np.sum(window * np.array(answer["filter"])[:, :, 0])) + answer["bias"]
        assert answer["output"][r][c] == pytest.approx(made)
    if name == "maxpool":
        assert answer["output"] == [[6, 8], [3, 4]]  # the lecture's
    if name == "pad1":
        assert answer["pad"] == [1, 1, 1, 1] and answer["size"] == [7, 7]


def test_stride_3_falls_off_the_edge_with_the_inspectors_fixes(client):
    answer = client.get("/api/animation?name=stride3").json()
    assert answer["fits"] is False and answer["output"] is None
    assert "Fix: stride=1 (→ 5x5)" in answer["error"]
    assert answer["steps"] == [[0, 0], [0, 3], [0, 6]]  # 6 + 3 > 7: off the edge
    korean = client.get("/api/animation?name=stride3&lang=ko").json()
    assert korean["error"] != answer["error"]


def test_the_model_animation_is_its_first_layer(client, model, boot):
    key = held(client, boot)
    answer = client.get(f"/api/animation?name=model&image={key}&map=3").json()
    assert answer["layer"] == "0" and answer["size"] == [24, 24] and len(answer["steps"]) == 576
    cell = client.get("/api/cell", params={"image": key, "layer": "0", "row": 7, "column": 9,
                                           "channel": 3}).json()
    assert answer["output"][7][9] == pytest.approx(cell["output"])
    y, x = answer["steps"][7 * 24 + 9]
    window = np.array(answer["input"])[y:y + 5, x:x + 5]
    assert np.allclose(window, np.array(cell["window"]))
    assert client.get(f"/api/animation?name=model&image={key}&map=6").status_code == 422
    assert client.get("/api/animation?name=model").status_code == 422
    assert client.get("/api/animation?name=stride9").status_code == 422


def test_filters_are_the_first_layers_weights(client, model):
    answer = client.get("/api/filters").json()
    net, _ = checkpoint.load(model, engine="numpy")
    weight = net.state_dict()["0.weight"].transpose(0, 2, 3, 1)
    assert answer["shape"] == list(weight.shape) and answer["layer"] == "0"
    step = (answer["scale"]["high"] - answer["scale"]["low"]) / 255
    assert np.abs(dequantized(answer) - weight.ravel()).max() <= step / 2 + 1e-6


def test_the_examples_with_the_models_mistakes(client, model, fashion_dir):
    answer = client.get("/api/examples").json()
    test = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test
    net, meta = checkpoint.load(model, engine="numpy")
    predicted = net.predict(test.images[:5]).argmax(axis=1)
    assert answer["count"] == 5
    for item, guess, label in zip(answer["items"], predicted, test.labels[:5]):
        assert item["predicted"] == meta["classes"][guess]
        assert item["label"] == meta["classes"][label]
        assert item["correct"] == (guess == label)
    assert answer["mistakes"] == int(np.sum(predicted != test.labels[:5]))


def test_a_layer_with_all_its_maps(client, boot):
    key = held(client, boot)
    first = client.post("/api/activations?maps=2", files={"file": ("b.png", boot, "image/png")})
    assert first.json()["layers"][0]["shown"] == 2
    layer = client.get(f"/api/layer?image={key}&layer=3").json()
    assert layer["shown"] == layer["count"] == 8
    assert client.get(f"/api/layer?image={key}&layer=99").status_code == 422


def test_inspect_playground(client):
    ok = client.post("/api/inspect", json={"description": "conv(1,3,stride=2)",
                                           "input": "7x7x1"}).json()
    assert ok["layers"][0]["output"] == [3, 3, 1]
    bad = client.post("/api/inspect", json={"description": "conv(1,3,stride=3)",
                                            "input": "7x7x1"})
    assert bad.status_code == 400 and "Fix: stride=1 (→ 5x5)" in bad.json()["error"]
    korean = client.post("/api/inspect", json={"description": "conv(1,3,stride=3)",
                                               "input": "7x7x1", "lang": "ko"})
    assert korean.status_code == 400 and korean.json()["error"] != bad.json()["error"]
    assert client.post("/api/inspect", json={"description": "conv(",
                                             "input": "7x7x1"}).status_code == 400


def test_examples(client):
    image = client.get("/api/examples/0")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (28, 28)
    missing = client.get("/api/examples/99")
    assert missing.status_code == 404 and missing.json() == {"error": "no example 99"}
    sample = client.get("/api/sample")
    assert Image.open(io.BytesIO(sample.content)).size == (28, 28)


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA", "I;16", "CMYK", "RGB"])
def test_images_of_any_mode(client, mode):
    array = (np.arange(40 * 30) % 256).astype(np.uint8).reshape(40, 30)
    if mode == "I;16":
        data = io.BytesIO()
        Image.fromarray(array.astype(np.uint16) * 257).save(data, format="PNG")
        content = data.getvalue()
    else:
        content = png(array, mode)
    response = client.post("/api/predict", files={"file": ("x", content, "image/png")})
    assert response.status_code == 200, response.text


def bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")  # 100 megapixels, tiny file
    return buffer.getvalue()


@pytest.mark.parametrize("content, status, message", [
    (b"hello, not an image", 415, "not a readable image"),
    (b"", 400, "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 415, "not a readable image"),
    (b"x" * ((8 << 20) + 1), 413, "larger than 8 MiB"),
])
def test_bad_uploads_get_a_4xx_and_a_message(client, content, status, message):
    response = client.post("/api/activations", files={"file": ("x.png", content, "image/png")})
    assert response.status_code == status and message in response.json()["error"]


def test_a_decompression_bomb_is_refused(client):
    response = client.post("/api/predict", files={"file": ("b.png", bomb(), "image/png")})
    assert response.status_code == 415 and "pixels" in response.json()["error"]
    assert client.get("/api/model").status_code == 200  # and the server goes on


def test_the_real_server_from_the_command_line(model, fashion_dir):
    with running_server(model, fashion_dir) as url:
        with urllib.request.urlopen(url + "/", timeout=5) as r:
            assert b"inside the network" in r.read()
        with urllib.request.urlopen(url + "/api/examples/0", timeout=5) as r:
            assert r.headers["content-type"] == "image/png"


def test_serve_refuses_a_missing_model(capsys, tmp_path):
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "no model directory" in capsys.readouterr().err


def test_serve_refuses_a_port_in_use(capsys, model):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(model), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in capsys.readouterr().err


@pytest.mark.parametrize("h, w, kernel, stride, pad", [
    (7, 7, 3, 2, 0), (9, 5, 3, 2, 1), (7, 7, 3, 3, 0), (8, 7, 3, 2, 0), (7, 8, 3, 2, 0),
    (3, 3, 5, 1, 0), (32, 32, 11, 8, 5)])
def test_the_playground_animates_any_sizes_or_says_why_not(client, h, w, kernel, stride, pad):
    from convnet import inspector
    from convnet.errors import GeometryError
    from convnet.spec import parse

    answer = client.get("/api/animation", params={"name": "custom", "h": h, "w": w,
                                                  "kernel": kernel, "stride": stride,
                                                  "pad": pad}).json()
    assert np.array(answer["input"]).shape == (h, w)
    try:
        out = inspector.as_json(parse(f"conv(1,{kernel},stride={stride},pad={pad})"),
                                (h, w, 1))["layers"][0]["output"]
    except GeometryError as e:
        assert answer["fits"] is False and answer["error"] == str(e)
        y, x = answer["steps"][-1]  # the last step falls off the padded input
        assert y + kernel > h + 2 * pad or x + kernel > w + 2 * pad
        assert all(a + kernel <= h + 2 * pad and b + kernel <= w + 2 * pad
                   for a, b in answer["steps"][:-1])
        return
    assert answer["size"] == out[:2] and len(answer["steps"]) == out[0] * out[1]


@pytest.mark.parametrize("params", [{"h": 0}, {"h": 33}, {"kernel": 12}, {"stride": "1e3"},
                                    {"pad": -1}])
def test_the_playground_refuses_sizes_out_of_range(client, params):
    response = client.get("/api/animation", params={"name": "custom", **params})
    assert response.status_code == 422 and list(response.json()) == ["error"]


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg16", "resnet18", "resnet20"])
def test_every_case_study_network_can_be_looked_inside(name):
    """Served by name (random weights): every layer's maps, a cell of the first layer and of the
    last fc layer, and the first layer animated."""
    from fastapi.testclient import TestClient

    from convnet.web.app import create_app
    from convnet.web.source import ModelSource

    client = TestClient(create_app(ModelSource(name)), base_url="http://127.0.0.1")
    model = client.get("/api/model").json()
    assert model["state"] == "ready" and model["notes"]  # says its weights are random
    sample = client.get("/api/sample").content
    answer = client.post("/api/activations", files={"file": ("s.png", sample, "image/png")}).json()
    assert len(answer["layers"]) == len(model["layers"])
    assert abs(sum(answer["probabilities"]) - 1) < 1e-5
    last_fc = [layer["name"] for layer in model["layers"] if layer["cell"] == "fc"][-1]
    for layer, kind in (("0", "conv"), (last_fc, "fc")):
        cell = client.get("/api/cell", params={"image": answer["image"], "layer": layer,
                                               "row": 0, "column": 0, "channel": 1}).json()
        assert cell["kind"] == kind and cell["output"] == pytest.approx(cell["total"], rel=1e-4,
                                                                         abs=1e-4)
    animation = client.get("/api/animation", params={"name": "model", "image": answer["image"]})
    assert animation.status_code == 200
    assert len(animation.json()["steps"]) == animation.json()["size"][0] * \
        animation.json()["size"][1]


def test_the_strip_answers_as_many_examples_as_the_budget_allows(model, fashion_dir,
                                                                 monkeypatch):
    from fastapi.testclient import TestClient

    from convnet.web import app as web

    net, meta = checkpoint.load(model, engine="numpy")
    macs = sum(row.macs for row in net.shapes)
    monkeypatch.setattr(web, "EXAMPLE_MACS", 3 * macs)  # three images' worth
    test = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test
    client = TestClient(web.create_app(net, meta, test.images[:5], labels=test.labels[:5]),
                        base_url="http://127.0.0.1")
    items = client.get("/api/examples").json()["items"]
    assert [item["predicted"] is not None for item in items] == [True] * 3 + [False] * 2
    assert all(item["label"] == meta["classes"][label] for item, label in
               zip(items, test.labels[:5]))
