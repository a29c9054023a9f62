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
    examples = load_dataset("fashion-mnist", data_dir=str(fashion_dir)).test.images[:5]
    return TestClient(create_app(net, meta, examples), base_url="http://127.0.0.1")


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
    assert model["input"] == [28, 28, 1] and len(model["classes"]) == 10
    assert model["explain"][0].startswith("0 conv(6,5): (28 − 5 + 2·0)/1 + 1 = 24")
    assert model["inspect"]["params"] == sum(layer["params"] for layer in
                                             model["inspect"]["layers"])
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/model", "/api/predict", "/api/activations", "/api/cell", "/api/inspect",
            "/api/examples/{index}"} <= set(paths)


def test_predict_matches_the_model(client, model, boot):
    result = client.post("/api/predict", files={"file": ("boot.png", boot, "image/png")}).json()
    net, _ = checkpoint.load(model, engine="numpy")
    expected = net.predict(np.asarray(Image.open(io.BytesIO(boot)))[None, :, :, None])[0]
    assert np.allclose(result["probabilities"], expected, atol=1e-6)
    assert result["top"][0]["probability"] == max(result["probabilities"])


def test_activations_of_every_layer(client, boot):
    result = client.post("/api/activations", files={"file": ("b.png", boot, "image/png")}).json()
    layers = result["layers"]
    assert [layer["layer"] for layer in layers][:3] == ["conv(6,5)", "relu", "pool(2)"]
    assert len(layers) == 9 and layers[0]["conv"] and layers[0]["shape"] == "24x24x6"
    for layer in layers:
        image = Image.open(io.BytesIO(base64.b64decode(layer["png"])))
        if layer["kind"] == "maps":
            h, w = layer["map_height"], layer["map_width"]
            assert image.width == layer["columns"] * (w + 1) - 1 and h == int(layer["shape"]
                                                                             .split("x")[0])
    assert abs(sum(result["probabilities"]) - 1) < 1e-6


@pytest.mark.parametrize("layer, channel, row, column", [(0, 2, 10, 13), (3, 5, 0, 11)])
def test_one_number_is_relu_of_w_dot_x_plus_b(client, boot, layer, channel, row, column):
    cell = client.post("/api/cell", files={"file": ("b.png", boot, "image/png")},
                       data={"layer": layer, "channel": channel, "row": row,
                             "column": column}).json()
    w, x = np.array(cell["weights"]), np.array(cell["window"])
    assert w.shape == x.shape == ((5, 5, 1) if layer == 0 else (3, 3, 6))
    assert cell["w_dot_x_plus_b"] == pytest.approx(float(np.sum(w * x)) + cell["bias"])
    assert cell["output"] == pytest.approx(cell["w_dot_x_plus_b"], abs=1e-4)  # the conv's own
    assert cell["relu"] == pytest.approx(max(cell["w_dot_x_plus_b"], 0.0))


@pytest.mark.parametrize("data, message", [
    ({"layer": 1, "channel": 0, "row": 0, "column": 0}, "layer 1 is not a conv layer"),
    ({"layer": 0, "channel": 6, "row": 0, "column": 0}, "outside layer 0's output 24x24x6"),
    ({"layer": 0, "channel": 0, "row": 24, "column": 0}, "outside layer 0's output 24x24x6"),
])
def test_a_cell_that_does_not_exist(client, boot, data, message):
    response = client.post("/api/cell", files={"file": ("b.png", boot, "image/png")}, data=data)
    assert response.status_code == 422 and message in response.json()["error"]


def test_inspect_playground(client):
    ok = client.post("/api/inspect", json={"description": "conv(1,3,stride=2)",
                                           "input": "7x7x1"}).json()
    assert ok["layers"][0]["output"] == [3, 3, 1]
    bad = client.post("/api/inspect", json={"description": "conv(1,3,stride=3)",
                                            "input": "7x7x1"})
    assert bad.status_code == 400 and "Fix: stride=1 (→ 5x5)" in bad.json()["error"]
    assert client.post("/api/inspect", json={"description": "conv(",
                                             "input": "7x7x1"}).status_code == 400


def test_examples(client):
    image = client.get("/api/examples/0")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (28, 28)
    missing = client.get("/api/examples/99")
    assert missing.status_code == 404 and missing.json() == {"error": "no example 99"}


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
    (b"", 400, "the upload is empty"),
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
