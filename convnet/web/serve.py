"""Starting the page: `convnet serve MODEL` in the foreground, or beside a training run
(`convnet train --serve`) in a background thread that watches the run's directory."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import UserError
from .source import ModelSource, Waiting

EXAMPLES = 100  # test images offered on the page


def examples_loader(data_dir: str | None):
    """A function giving (images, labels) of the first test images of the data set a model
    learned from, or None when it cannot be found here (examples are a convenience)."""
    def load(meta: dict[str, Any], shape: tuple[int, int, int]):
        from ..data import load_dataset

        name = meta.get("training", {}).get("data")
        if not name:
            return None
        try:
            data = load_dataset(name, data_dir or meta.get("training", {}).get("data_dir"),
                                shape=shape, download_ok=False)
        except (UserError, OSError):
            return None
        if data.shape != shape or not len(data.test.images):
            return None
        return data.test.images[:EXAMPLES], data.test.labels[:EXAMPLES]
    return load


def check_port(host: str, port: int) -> None:
    """A port that is free to listen on, or a one-line error."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen on {host} port {port} ({e.strerror or e}); is "
                            "another server using it? choose another with --port") from None


def _app(source: ModelSource, host: str, allow_hosts: list[str]):
    from .app import allowed_hosts, create_app

    hosts, any_address = allowed_hosts(host)
    if any_address:
        print(f"convnet: warning: --host {host} listens on every network interface: anyone who "
              "can reach this machine can use the page and the API", file=sys.stderr)
    return create_app(source, hosts=hosts + tuple(allow_hosts), any_address=any_address)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000,
          allow_hosts: list[str] | None = None, data_dir: str | None = None) -> int:
    """Serve the page for `model` until SIGINT or SIGTERM."""
    source = ModelSource(model, examples_loader(data_dir))
    try:
        current = source.current()
        for note in current.notes:
            print(f"convnet: note: {note}", file=sys.stderr)
    except Waiting as e:
        print(f"convnet: note: {e}; the page will show it when it comes", file=sys.stderr)
    check_port(host, port)
    import uvicorn

    app = _app(source, host, allow_hosts or [])
    where = Path(model)
    print(f"convnet: serving {where if source.run or where.exists() else model} on "
          f"{_url(host, port)}", flush=True)
    # uvicorn stops on SIGTERM and SIGINT; requests still running get a few seconds to finish
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5,
                timeout_keep_alive=5)
    return 0


class Background:
    """The page served from a thread while this process does something else (training)."""

    def __init__(self, run_dir: Path, host: str, port: int, data_dir: str | None) -> None:
        import uvicorn

        check_port(host, port)
        self.source = ModelSource(str(run_dir), examples_loader(data_dir))
        config = uvicorn.Config(_app(self.source, host, []), host=host, port=port,
                                log_level="warning", timeout_graceful_shutdown=2,
                                timeout_keep_alive=5)
        self.server = uvicorn.Server(config)
        self.url = _url(host, port)
        self.thread = threading.Thread(target=self.server.run, name="convnet-serve",
                                       daemon=True)

    def start(self) -> "Background":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
