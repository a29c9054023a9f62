"""Starting `convnet serve` for a test: a real server process on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(model: Path, data_dir: Path, timeout: float = 60
                   ) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yields the server's base URL, once it answers, and its process; stops it afterwards
    (bounded)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "convnet", "serve", str(model), "--port",
                               str(port), "--data-dir", str(data_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/api/model", timeout=5):
                    break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"the server stopped: {server.stderr.read()}") from None
                if time.time() > deadline:
                    raise TimeoutError("the server did not start") from None
                time.sleep(0.3)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextlib.contextmanager
def running_server(model: Path, data_dir: Path, timeout: float = 60) -> Iterator[str]:
    """Yields the server's base URL once it answers; stops it afterwards (bounded)."""
    with server_process(model, data_dir, timeout) as (url, _):
        yield url
