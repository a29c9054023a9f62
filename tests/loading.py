"""A bounded load on a running `convnet serve` (127.0.0.1 only): many clients at once, ordinary
and hostile requests mixed, slow clients beside them; latencies, status codes and the server's
memory.

Used by tests/test_load.py (a few clients for a few seconds) and scripts/load_serve.py (32 clients
for 30 s, the figures in docs/RELIABILITY.md).
"""

from __future__ import annotations

import http.client
import io
import json
import random
import socket
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
from PIL import Image


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb() -> bytes:
    """A 20,000 × 20,000 PNG of one colour: 400 megapixels in a few hundred kilobytes."""
    buffer = io.BytesIO()
    Image.new("L", (20_000, 20_000)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def multipart(data: bytes, name: str = "image.png") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\""
            f"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    path: str
    body: bytes = b""
    content_type: str = ""
    hostile: bool = False


def requests_for(images: list[np.ndarray]) -> list[Request]:
    """The mix: the page's ordinary calls with real images, and hostile uploads and bodies."""
    ordinary = [Request("page", "GET", "/"), Request("model", "GET", "/api/model"),
                Request("examples", "GET", "/api/examples"),
                Request("filters", "GET", "/api/filters"),
                Request("inspect", "POST", "/api/inspect",
                        json.dumps({"description": "conv(6,5) relu pool(2) fc(10)",
                                    "input": "32x32x3"}).encode(), "application/json")]
    for i, image in enumerate(images):
        body, kind = multipart(png(image))
        ordinary += [Request("predict", "POST", "/api/predict", body, kind),
                     Request("activations", "POST", "/api/activations", body, kind)]
    real = png(images[0])
    hostile = [("bomb", bomb()), ("truncated", real[: len(real) // 2]),
               ("not an image", bytes(random.Random(0).randbytes(4000))), ("empty", b""),
               ("flipped bytes", bytes(b ^ 0xFF if i % 7 == 3 else b
                                       for i, b in enumerate(real)))]
    for name, data in hostile:
        body, kind = multipart(data)
        ordinary.append(Request(name, "POST", "/api/predict", body, kind, hostile=True))
    big, kind = multipart(b"\0" * (9 << 20))
    ordinary.append(Request("9 MiB body", "POST", "/api/predict", big, kind, hostile=True))
    ordinary.append(Request("bad json", "POST", "/api/inspect", b"{\"description\": [1,",
                            "application/json", hostile=True))
    ordinary.append(Request("huge description", "POST", "/api/inspect",
                            json.dumps({"description": "conv(6,5) " * 60_000}).encode(),
                            "application/json", hostile=True))
    return ordinary


@dataclass
class Outcome:
    name: str
    status: int
    seconds: float
    well_formed: bool  # an error answer has the documented {"error": "..."} shape
    hostile: bool


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    memory_kib: dict[str, int] = field(default_factory=dict)
    slow: list[str] = field(default_factory=list)  # what each slow client got, and when
    seconds: float = 0.0
    clients: int = 0

    def server_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status >= 500 or o.status == 0]

    def malformed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.well_formed]

    def hostile_not_refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.hostile and not 400 <= o.status < 500]

    def latencies(self, hostile: bool | None = None) -> tuple[float, float]:
        times = sorted(o.seconds for o in self.outcomes
                       if hostile is None or o.hostile == hostile)
        if not times:
            return float("nan"), float("nan")
        return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]

    def table(self) -> str:
        lines = [f"{'request':20} {'count':>6} {'statuses':24} {'p50 ms':>8} {'p99 ms':>8}"]
        for name in dict.fromkeys(o.name for o in self.outcomes):
            mine = [o for o in self.outcomes if o.name == name]
            times = sorted(o.seconds for o in mine)
            statuses = ", ".join(f"{s}×{n}" for s, n in sorted(
                {s: sum(o.status == s for o in mine) for s in {o.status for o in mine}}.items()))
            lines.append(f"{name:20} {len(mine):6} {statuses:24} "
                         f"{1000 * statistics.median(times):8.1f} "
                         f"{1000 * times[min(len(times) - 1, int(0.99 * len(times)))]:8.1f}")
        p50, p99 = self.latencies(hostile=False)
        lines.append(f"{len(self.outcomes):,} requests from {self.clients} clients in "
                     f"{self.seconds:.0f} s ({len(self.outcomes) / self.seconds:.0f}/s); "
                     f"ordinary p50 {1000 * p50:.1f} ms, p99 {1000 * p99:.1f} ms; 5xx or no "
                     f"answer: {len(self.server_errors())}; errors not shaped "
                     f"{{\"error\": …}}: {len(self.malformed())}; hostile requests not "
                     f"answered 4xx: {len(self.hostile_not_refused())}")
        lines.append("server memory (RSS): " + ", ".join(
            f"{k} {v / 1024:.0f} MiB" for k, v in self.memory_kib.items()))
        lines += [f"slow client: {s}" for s in self.slow]
        return "\n".join(lines)


def send(connection: http.client.HTTPConnection, request: Request) -> Outcome:
    headers = {"Host": "127.0.0.1"}
    if request.content_type:
        headers["Content-Type"] = request.content_type
    started = time.perf_counter()
    try:
        connection.request(request.method, request.path, body=request.body or None,
                           headers=headers)
        response = connection.getresponse()
        data = response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        connection.close()
        return Outcome(request.name, 0, time.perf_counter() - started, False, request.hostile)
    seconds = time.perf_counter() - started
    well_formed = True
    if status >= 400:
        try:
            answer = json.loads(data)
            well_formed = isinstance(answer, dict) and isinstance(answer.get("error"), str) \
                and bool(answer["error"])
        except ValueError:
            well_formed = False
    if response.getheader("connection", "").lower() == "close":
        connection.close()
    return Outcome(request.name, status, seconds, well_formed, request.hostile)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slow_client(url: str, pause: float, stop: threading.Event, told: list[str]) -> None:
    """Announces a 100 kB upload and sends one byte every `pause` seconds (never finishing)."""
    parts = urlsplit(url)
    started = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout=120) as s:
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                  b"multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n"
                  b"--x\r\nContent-Disposition: form-data; name=\"file\"; "
                  b"filename=\"slow.png\"\r\n\r\n")
        s.settimeout(pause)
        while not stop.is_set():
            try:
                answer = s.recv(4096)
            except socket.timeout:
                try:
                    s.sendall(b"x")
                except OSError:
                    told.append(f"connection closed after {time.perf_counter() - started:.1f} s")
                    return
                continue
            except OSError as e:
                told.append(f"{e} after {time.perf_counter() - started:.1f} s")
                return
            first = answer.split(b"\r\n", 1)[0].decode("latin-1")
            told.append(f"{first!r} after {time.perf_counter() - started:.1f} s")
            return
        told.append(f"no answer in {time.perf_counter() - started:.1f} s")


def load(url: str, pid: int, images: list[np.ndarray], clients: int, seconds: float,
         slow_clients: int = 2, slow_pause: float = 1.0, rounds: int = 2, seed: int = 0
         ) -> Report:
    """`rounds` rounds of `clients` clients for `seconds` each (memory read after each), with
    `slow_clients` dribbling uploads alongside."""
    requests = requests_for(images)
    report = Report(clients=clients)
    parts = urlsplit(url)
    warm = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    for request in requests:  # every kind once, so memory is read after the first use
        send(warm, request)
    warm.close()
    report.memory_kib["after one of each"] = rss_kib(pid)
    stop_slow = threading.Event()
    slow = [threading.Thread(target=slow_client, args=(url, slow_pause, stop_slow, report.slow),
                             daemon=True) for _ in range(slow_clients)]
    for thread in slow:
        thread.start()
    lock = threading.Lock()
    started = time.perf_counter()
    for round_ in range(1, rounds + 1):
        deadline = time.perf_counter() + seconds

        def client(k: int) -> None:
            rng = random.Random(seed * 1000 + round_ * 100 + k)
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            mine = []
            while time.perf_counter() < deadline:
                mine.append(send(connection, rng.choice(requests)))
            connection.close()
            with lock:
                report.outcomes.extend(mine)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report.memory_kib[f"after round {round_}"] = rss_kib(pid)
    report.seconds = time.perf_counter() - started
    stop_slow.set()
    for thread in slow:
        thread.join(timeout=5)
    return report
