"""`convnet serve` under a bounded load on 127.0.0.1: no 5xx, every bad request a 4xx with its
reason, memory that does not keep growing, and slow clients that hold up nobody
(tests/loading.py; `scripts/load_serve.py` is the 32-client, 30-second version)."""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from loading import load, rss_kib
from serving import free_port, server_process

PART = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"


@pytest.fixture(scope="module")
def test_images(fashion_dir):
    from convnet.data import load_dataset

    data = load_dataset("fashion-mnist", str(fashion_dir), download_ok=False)
    return [data.test.images[i][..., 0] for i in range(3)]


def test_the_server_under_load_answers_everything_and_refuses_the_hostile(
        served_model, fashion_dir, test_images):
    with server_process(served_model, fashion_dir) as (url, server):
        report = load(url, server.pid, test_images, clients=4, seconds=2.0, rounds=2,
                      slow_clients=1, slow_pause=0.5)
        assert server.poll() is None
        print(report.table())
    assert len(report.outcomes) > 50
    assert not report.server_errors(), report.table()
    assert not report.malformed(), [o for o in report.malformed()][:5]
    assert not report.hostile_not_refused(), report.hostile_not_refused()[:5]
    names = {o.name for o in report.outcomes}
    assert {"predict", "activations", "bomb", "truncated", "9 MiB body"} <= names
    grew = report.memory_kib["after round 2"] - report.memory_kib["after round 1"]
    assert grew < 64 * 1024, report.memory_kib  # the second round does not keep what it took


def test_a_slow_body_is_cut_off_and_holds_up_nobody(monkeypatch, served_model, fashion_dir):
    """A client that stops sending its body gets 408 after BODY_PAUSE; meanwhile the server
    answers others at once."""
    from convnet.web import app as web_app
    from convnet.web.serve import Background

    monkeypatch.setattr(web_app, "BODY_PAUSE", 0.5)
    monkeypatch.setattr(web_app, "BODY_TIME", 2.0)
    port = free_port()
    server = Background(served_model, "127.0.0.1", port, str(fashion_dir)).start()
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.1)
        slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
        for s in slow:  # 8 bodies announced, a few bytes sent, then nothing
            s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      b"multipart/form-data; boundary=x\r\nContent-Length: 5000\r\n\r\n--x")
        started = time.perf_counter()
        fast = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        fast.request("GET", "/api/model", headers={"Host": "127.0.0.1"})
        assert fast.getresponse().status == 200
        assert time.perf_counter() - started < 2.0  # not behind the slow ones
        for s in slow:
            answer = s.recv(4096).split(b"\r\n", 1)[0]
            assert b" 408 " in answer, answer
            s.close()
        # a body that trickles in (a byte every 0.3 s, under the pause) meets the total limit
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                  b"multipart/form-data; boundary=x\r\nContent-Length: 5000\r\n\r\n" + PART)
        s.settimeout(0.3)
        started, answer = time.perf_counter(), b""
        while time.perf_counter() - started < 8 and not answer:
            try:
                answer = s.recv(4096)
            except socket.timeout:
                s.sendall(b"x")
        assert b" 408 " in answer.split(b"\r\n", 1)[0], answer[:100]
        assert 1.5 < time.perf_counter() - started < 5
        s.close()
    finally:
        server.stop()


def test_rss_is_read(served_model):
    import os

    assert rss_kib(os.getpid()) > 1000
