"""`convnet serve` tried as an attacker would: other hosts, large bodies, file names sent as
descriptions, huge numbers, decompression bombs, many decodes at once, and stopping cleanly."""

from __future__ import annotations

import io
import signal
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convnet import checkpoint
from convnet.cli import main
from convnet.data.folder import DECODE_BYTES_PER_PIXEL, MAX_PIXELS
from convnet.web import app as web
from serving import server_process


@pytest.fixture(scope="module")
def net_and_meta(served_model):
    return checkpoint.load(served_model, engine="numpy")


def make_client(net_and_meta, **options):
    from fastapi.testclient import TestClient

    net, meta = net_and_meta
    return TestClient(web.create_app(net, meta, **options), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def client(net_and_meta):
    return make_client(net_and_meta)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# -- hosts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1", True), ("127.0.0.1:8000", True), ("localhost:8000", True), ("LOCALHOST", True),
    ("[::1]:8000", True), ("evil.example", False), ("evil.example:8000", False),
    ("127.0.0.1.nip.io", False), ("10.0.0.5:8000", False), ("", False),
])
def test_only_the_servers_own_names_are_answered(client, host, ok):
    response = client.get("/api/model", headers={"host": host})
    assert response.status_code == (200 if ok else 400)
    if not ok:
        assert "does not answer for the host" in response.json()["error"]


def test_listening_on_every_interface_answers_addresses_but_not_other_names(net_and_meta):
    hosts, any_address = web.allowed_hosts("0.0.0.0")
    client = make_client(net_and_meta, hosts=hosts, any_address=any_address)
    assert client.get("/api/model", headers={"host": "192.168.1.20:8000"}).status_code == 200
    assert client.get("/api/model", headers={"host": "[fe80::1]:8000"}).status_code == 200
    assert client.get("/api/model", headers={"host": "attacker.example"}).status_code == 400
    assert web.allowed_hosts("192.168.1.20") == (("127.0.0.1", "localhost", "::1",
                                                  "192.168.1.20"), False)


def test_serve_on_every_interface_warns(monkeypatch, capsys, served_model):
    import uvicorn

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(options))
    assert main(["serve", str(served_model), "--host", "0.0.0.0", "--allow-host",
                 "convnet.lan"]) == 0
    err = capsys.readouterr().err
    assert "warning: --host 0.0.0.0 listens on every network interface" in err
    assert started["host"] == "0.0.0.0" and started["timeout_graceful_shutdown"] > 0
    assert main(["serve", str(served_model)]) == 0
    assert "warning" not in capsys.readouterr().err


# -- what the page may run ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/model", "/api/examples/999",
                                  "/nowhere"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script_or_style(client):
    page = client.get("/").text
    assert "<script>" not in page and "<style" not in page and "style=" not in page
    assert '<script src="/static/app.js"' in page
    script = client.get("/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text.replace("never innerHTML", "")
    assert client.get("/static/../app.py").status_code == 404


# -- /api/inspect reads no files -----------------------------------------------------------------

def test_inspect_takes_description_text_never_a_file(client, tmp_path):
    """A file name sent as a description is parsed as text: the file is not read (its words
    never appear) and the answer does not say whether it exists."""
    secret = tmp_path / "lenet.net"
    secret.write_text("32x32x3 conv(6,5) relu pool(2) fc(10)\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("secretword and more\n")
    answers = []
    for path in (secret, notes, tmp_path / "missing.net"):
        response = client.post("/api/inspect", json={"description": str(path),
                                                     "input": "32x32x3"})
        assert response.status_code == 400
        answers.append(response.json()["error"].replace(str(path), "PATH"))
    assert answers[0] == answers[1] == answers[2]
    assert "unexpected character '/'" in answers[0] and "secretword" not in answers[1]
    relative = client.post("/api/inspect", json={"description": "lenet.net", "input": "7x7x1"})
    assert relative.status_code == 400 and "unexpected character '.'" in relative.json()["error"]


@pytest.mark.parametrize("description, message", [
    ("conv(1,3,stride=99999999999,pad=1)", "stride must be at most 65,536"),
    ("conv(1,3,pad=" + "9" * 5000 + ")", "got a number of 5,000 digits"),
    ("relu " * 5000, "more than 2,000 layers"),
    ("conv(1,3,stride=65536,pad=65536)", "is not a whole number"),
])
def test_inspect_refuses_huge_numbers_at_once(client, description, message):
    response = client.post("/api/inspect", json={"description": description, "input": "7x7x1"})
    assert response.status_code == 400 and message in response.json()["error"]


def test_inspect_refuses_a_huge_input_size(client):
    response = client.post("/api/inspect", json={"description": "relu",
                                                 "input": "7x7x" + "9" * 5000})
    assert response.status_code == 422 and "input" in response.json()["error"]
    response = client.post("/api/inspect", json={"description": "relu", "input": "7x7x99999"})
    assert response.status_code == 400 and "at most 65,536" in response.json()["error"]


# -- bodies ----------------------------------------------------------------------------------------

def test_a_large_body_is_refused_before_it_is_read(client):
    body = b'{"description": "' + b"relu " * (4 << 20) + b'", "input": "7x7x1"}'
    response = client.post("/api/inspect", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    response = client.post("/api/predict", files={"file": ("x.png", b"x" * (9 << 20))})
    assert response.status_code == 413


def test_a_chunked_body_is_cut_off_at_the_limit(client):
    def chunks():
        for _ in range(64):
            yield b"relu " * 20_000  # 100 KB each, no Content-Length

    response = client.post("/api/inspect", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"].startswith(
        "the request body is larger than")


@pytest.mark.parametrize("params, fragment", [
    ({}, "image: Field required"),
    ({"layer": "0", "channel": "x", "row": 0, "column": 0}, "channel: Input should be a valid "
                                                            "integer"),
    ({"layer": "9" * 5000, "channel": 0, "row": 0, "column": 0}, "layer:"),
    ({"layer": "0", "channel": 0, "row": -1, "column": 0}, "row: Input should be greater than "
                                                           "or equal to 0"),
    ({"layer": "0", "channel": 0, "row": 0, "column": 10 ** 9}, "column: Input should be less"),
])
def test_malformed_fields_get_the_documented_error_shape(client, params, fragment):
    image = png_bytes(np.zeros((28, 28), np.uint8))
    key = client.post("/api/activations", files={"file": ("b.png", image, "image/png")}
                      ).json()["image"]
    response = client.get("/api/cell", params={"image": key, **params} if params else {})
    assert response.status_code == 422
    assert list(response.json()) == ["error"] and fragment in response.json()["error"]


def test_wrong_json_gets_the_documented_error_shape(client):
    for body in ({"description": 5, "input": "7x7x1"}, {"input": "7x7x1"}, [1, 2]):
        response = client.post("/api/inspect", json=body)
        assert response.status_code == 422 and list(response.json()) == ["error"]


# -- images ----------------------------------------------------------------------------------------

def test_an_unreadable_upload_says_why_without_python_objects(client):
    response = client.post("/api/predict", files={"file": ("x.png", b"hello", "image/png")})
    error = response.json()["error"]
    assert response.status_code == 415 and "BytesIO" not in error and "0x" not in error
    assert "PNG, JPEG" in error


def test_the_pixel_cap_comes_from_the_decode_budget(net_and_meta):
    client = make_client(net_and_meta, budget=web.DecodeBudget(max_pixels=100 * 100, slots=1))
    small = png_bytes(np.zeros((100, 100), np.uint8))
    large = png_bytes(np.zeros((101, 100), np.uint8))
    assert client.post("/api/predict", files={"file": ("s.png", small)}).status_code == 200
    response = client.post("/api/predict", files={"file": ("l.png", large)})
    assert response.status_code == 415 and "more than 10,000" in response.json()["error"]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40), st.integers(1, 256))
def test_the_decode_budget_keeps_all_decodes_within_a_quarter_of_memory(available, cores):
    budget = web.DecodeBudget.for_machine(available, cores)
    assert 1 <= budget.slots <= cores and budget.max_pixels <= MAX_PIXELS
    if available // 4 >= 256 * 256 * DECODE_BYTES_PER_PIXEL:  # a machine that can decode at all
        assert budget.slots * budget.max_pixels * DECODE_BYTES_PER_PIXEL <= available // 4


def test_decodes_at_once_never_exceed_the_slots(net_and_meta, monkeypatch):
    busy, most, guard = 0, 0, threading.Lock()
    real = web.read_image

    def slow_read(data, shape, max_pixels):
        nonlocal busy, most
        with guard:
            busy += 1
            most = max(most, busy)
        time.sleep(0.05)
        with guard:
            busy -= 1
        return real(data, shape, max_pixels=max_pixels)

    monkeypatch.setattr(web, "read_image", slow_read)
    client = make_client(net_and_meta, budget=web.DecodeBudget(max_pixels=10**6, slots=2))
    image = png_bytes(np.zeros((28, 28), np.uint8))
    statuses = []
    threads = [threading.Thread(target=lambda: statuses.append(client.post(
        "/api/predict", files={"file": ("x.png", image)}).status_code)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 8 and most <= 2


# -- stopping ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_server_stops_cleanly_on_a_signal(served_model, fashion_dir, sig):
    with server_process(served_model, fashion_dir) as (url, server):
        # the request that once pinned a core for ever, then the signal
        request = urllib.request.Request(
            url + "/api/inspect", method="POST", headers={"content-type": "application/json"},
            data=b'{"description": "conv(1,3,stride=99999999999,pad=1)", "input": "7x7x1"}')
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 400
        server.send_signal(sig)
        code = server.wait(timeout=30)  # bounded: it stops, whatever was asked before
        # uvicorn finishes what is running, then ends by the signal it caught (as systemd
        # expects of a service), or convnet reports the interrupt
        assert code in (0, -sig, 128 + sig, 130), code
        err = server.stderr.read()
        assert "Traceback" not in err, err
