"""`convnet serve RUN_DIR` on a run that is still training, and `convnet train --serve`: the page
waits for the first epoch, follows each new checkpoint, and keeps answering when one is replaced,
damaged or removed."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from convnet import checkpoint
from convnet.network import Network
from convnet.web.source import ModelSource
from serving import free_port

CLASSES = ("a", "b", "c")


@pytest.fixture()
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.json").write_text(json.dumps({"epochs": 4, "data": "nowhere"}))
    return run


def client_for(source):
    from fastapi.testclient import TestClient

    from convnet.web.app import create_app
    return TestClient(create_app(source), base_url="http://127.0.0.1")


def save(run, name: str, description: str, epoch: int, seed: int = 0, shape=(8, 8, 1)) -> None:
    net = Network(description, input=shape, seed=seed)
    checkpoint.save(net, run / name, classes=CLASSES, metrics={"epoch": epoch})
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_accuracy": 0.3 + 0.1 * e}
            for e in range(1, epoch + 1)]
    checkpoint.write_lines(run / "metrics.jsonl", [json.dumps(r) for r in rows])


def image_bytes(size=8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.arange(size * size) * 3 % 256).astype(np.uint8).reshape(size, size)
                    ).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_run_before_its_first_epoch_waits_then_shows_each_checkpoint(run_dir):
    client = client_for(ModelSource(str(run_dir)))
    model = client.get("/api/model").json()
    assert model["state"] == "waiting" and "waiting for the first epoch" in model["message"]
    response = client.post("/api/activations", files={"file": ("x.png", image_bytes(), "image/png")})
    assert response.status_code == 503 and "waiting for the first epoch" in response.json()["error"]
    assert client.get("/api/training").json() == {"run": True, "rows": [], "epochs": 4,
                                                  "finished": False}

    save(run_dir, "last", "conv(4,3) relu fc(3)", 1)
    model = client.get("/api/model").json()
    assert model["state"] == "ready" and model["description"].startswith("conv(4,3)")
    key = client.post("/api/activations", files={"file": ("x.png", image_bytes(), "image/png")}
                      ).json()["image"]
    first = client.get("/api/version").json()
    assert first["epoch"] == 1
    training = client.get("/api/training").json()
    assert [row["epoch"] for row in training["rows"]] == [1]

    save(run_dir, "last", "conv(4,3) relu fc(3)", 2, seed=1)  # the next epoch: new weights
    second = client.get("/api/version").json()
    assert second["version"] != first["version"] and second["epoch"] == 2
    again = client.get(f"/api/activations?image={key}")  # the same image, the new weights
    assert again.status_code == 200 and again.json()["model"] == second["version"]

    save(run_dir, "best", "conv(4,3) relu fc(3)", 2, seed=1)  # the newest of last/ and best/
    assert client.get("/api/version").json()["epoch"] == 2


def test_a_checkpoint_replaced_by_another_network(run_dir):
    save(run_dir, "last", "conv(4,3) relu fc(3)", 1)
    client = client_for(ModelSource(str(run_dir)))
    key = client.post("/api/activations", files={"file": ("x.png", image_bytes(), "image/png")}
                      ).json()["image"]
    time.sleep(0.01)
    save(run_dir, "last", "conv(6,5) relu pool(2) fc(3)", 2, shape=(12, 12, 1))
    model = client.get("/api/model").json()
    assert model["input"] == [12, 12, 1] and model["layers"][0]["text"] == "conv(6,5)"
    stale = client.get("/api/cell", params={"image": key, "layer": "0", "row": 0, "column": 0,
                                            "channel": 0})
    assert stale.status_code == 409 and "give it again" in stale.json()["error"]


def test_a_damaged_or_removed_checkpoint_leaves_the_one_before(run_dir):
    save(run_dir, "last", "conv(4,3) relu fc(3)", 1)
    client = client_for(ModelSource(str(run_dir)))
    version = client.get("/api/version").json()["version"]
    damaged = run_dir / "last"
    (damaged / "model.json").write_text("{ not json")
    answer = client.get("/api/version").json()
    assert answer["version"] == version and "cannot be read now" in answer["problem"]
    assert client.post("/api/predict", files={"file": ("x.png", image_bytes(), "image/png")}
                       ).status_code == 200  # the server answers on, with the model before
    assert "cannot be read now" in client.get("/api/model").json()["problem"]
    shutil.rmtree(damaged)
    assert client.get("/api/version").json()["version"] == version
    save(run_dir, "last", "conv(4,3) relu fc(3)", 2, seed=3)  # a good one arrives
    answer = client.get("/api/version").json()
    assert answer["version"] != version and answer["problem"] is None


def test_a_run_that_never_wrote_a_checkpoint_is_not_an_error_for_serve(run_dir, capsys):
    """serve starts on it, saying it waits (the server itself is not started here)."""
    from convnet.web.source import Waiting

    with pytest.raises(Waiting):
        ModelSource(str(run_dir)).current()


def wait_for(url: str, predicate, timeout: float = 120):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                last = json.loads(response.read())
                if predicate(last):
                    return last
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url}: last answer {last}")


def test_train_serve_shows_the_run_as_it_trains(tmp_path):
    """`convnet train --serve`: the page answers while training, follows each epoch, and stays up
    afterwards until stopped."""
    data = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (data / name).mkdir(parents=True)
        for i in range(24):
            pixels = rng.integers(0, 60, size=(10, 10), dtype=np.uint8)
            pixels[:, 3 * k:3 * k + 3] = 250  # a bar whose place is the class
            Image.fromarray(pixels).save(data / name / f"{i}.png")
    port = free_port()
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "convnet", "train", "conv(4,3) relu fc(3)", "--data", str(data),
         "--epochs", "3", "--out", str(run), "--serve", "--port", str(port), "--no-cache"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        url = f"http://127.0.0.1:{port}"
        training = wait_for(url + "/api/training", lambda r: r.get("finished"))
        assert [row["epoch"] for row in training["rows"]] == [1, 2, 3]
        model = wait_for(url + "/api/model", lambda m: m.get("state") == "ready")
        assert model["classes"] == list(CLASSES) and model["run"] is True
        deadline = time.time() + 60  # the command says so once it has printed the test result
        while not any("the page stays at" in line for line in lines) and time.time() < deadline:
            time.sleep(0.1)
        assert process.poll() is None  # it stays up after training
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)
    assert f"watch it at http://127.0.0.1:{port}/" in output
    assert "the page stays at" in output


def test_train_serve_refuses_a_port_in_use_before_writing_anything(tmp_path, capsys):
    import socket

    from convnet.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["train", "--data", str(tmp_path / "none"), "--serve", "--port", str(port),
                     "--out", str(tmp_path / "run")]) == 2
    assert "cannot listen" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
