"""The web application behind `convnet serve`: one page and a JSON API (FastAPI).

    GET  /                  the page (index.html, static/app.js and static/app.css beside this
                            file; nothing from elsewhere)
    GET  /api/model         the network: description, input, classes, inspect figures, arithmetic
    POST /api/predict       an uploaded image → class probabilities
    POST /api/activations   an uploaded image → every layer's maps (PNG mosaics) and arithmetic
    POST /api/cell          an uploaded image and a conv output cell → the window, the filter,
                            the bias and the one number ReLU(W·x + b)
    POST /api/inspect       a description (text only) and an input shape → shapes, or the
                            error and its fixes
    GET  /api/examples/{i}  test-set image i of the model's data set, as PNG
    GET  /openapi.json      the API's OpenAPI schema

Every mistake in a request (not an image, too large, a bad layer or cell, a malformed field) is
answered with a 4xx and {"error": "..."}. What a request may cost is bounded before any work:
bodies per endpoint (413), the size of a description (the parser's limits), the pixels of an
image and how many images are decoded at once (both derived from the machine's memory), and the
Host header (a page on another site cannot reach the server through DNS rebinding). The page
never interprets data as HTML, and a Content-Security-Policy forbids inline script and any
origin but the server's own. The model is shared by the requests under a lock.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from .. import inspector
from ..by_hand import layer_inputs, one_number
from ..data.folder import DECODE_BYTES_PER_PIXEL, MAX_PIXELS, read_image
from ..errors import UserError
from ..figures import tile
from ..inside import activations
from ..network import Network
from ..resources import available_memory
from ..shapes import format_shape
from ..spec import MAX_NUMBER, MAX_TEXT, Conv, parse, parse_input_shape

HERE = Path(__file__).parent
MAX_UPLOAD_BYTES = 8 << 20  # one image file
MAX_INSPECT_BYTES = 4 * MAX_TEXT + 4096  # a description of MAX_TEXT characters, as UTF-8 JSON
MAX_OTHER_BYTES = 64 << 10  # any other request (GETs have no body)
MULTIPART_OVERHEAD = 64 << 10  # the form's boundaries and fields around the file
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
DECODE_WAIT_SECONDS = 30  # a request waits this long for a decode slot, then gets 503

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


# ---------------------------------------------------------------------------------------------
# What decoding may cost.

@dataclass(frozen=True)
class DecodeBudget:
    """How large an image may be (pixels, after JPEG's reduced decode) and how many are decoded
    at once, so that all decodes together stay within a quarter of the memory available."""

    max_pixels: int
    slots: int

    @classmethod
    def for_machine(cls, available: int | None = None, cores: int | None = None
                    ) -> "DecodeBudget":
        available = available if available is not None else (available_memory() or 2 << 30)
        cores = cores or os.cpu_count() or 1
        budget = available // 4
        max_pixels = max(256 * 256, min(MAX_PIXELS, budget // DECODE_BYTES_PER_PIXEL))
        slots = max(1, min(cores, budget // (max_pixels * DECODE_BYTES_PER_PIXEL)))
        return cls(int(max_pixels), int(slots))


# ---------------------------------------------------------------------------------------------
# Middleware: plain ASGI, in front of everything, so nothing is parsed before it has looked.

class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {_size(limit)}")


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


async def _answer(send, status: int, message: str, headers: Iterable = ()) -> None:
    import json

    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def host_allowed(host_header: str | None, allowed: frozenset[str], any_address: bool) -> bool:
    """Whether a Host header names this server: one of `allowed` (with any port), or, when it
    listens on every interface, any IP address (a name that is not allowed may be an attacker's
    domain pointed at this machine; an address cannot be rebound)."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host in allowed:
        return True
    if any_address:
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return False
    return False


class Guard:
    """Refuses requests for other hosts (400) and bodies over their endpoint's limit (413), and
    adds the security headers to every response."""

    def __init__(self, app, hosts: Iterable[str], any_address: bool,
                 limits: dict[str, int]) -> None:
        self.app, self.limits = app, limits
        self.hosts = frozenset(h.lower().strip("[]") for h in hosts)
        self.any_address = any_address

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])

        async def secured(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                   *SECURITY_HEADERS]}
            await send(message)

        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.hosts, self.any_address):
            shown = host[:60] or "(none)"
            return await _answer(secured, 400, f"this server does not answer for the host "
                                               f"{shown!r}; open it at one of "
                                               f"{', '.join(sorted(self.hosts))}")
        limit = self.limits.get(scope["path"], MAX_OTHER_BYTES)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _answer(secured, 413, f"the request body is larger than {_size(limit)}")
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        started = False

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await secured(message)

        try:
            await self.app(scope, limited, watched)
        except _TooLarge as e:  # raised outside an endpoint (FastAPI answers it otherwise)
            if not started:
                await _answer(secured, 413, str(e.detail))


# ---------------------------------------------------------------------------------------------
# Pictures.

def png_base64(array: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def coloured(mosaic: np.ndarray) -> np.ndarray:
    """A 2-D array (NaN gaps) as RGB uint8 through the viridis colour map; gaps white."""
    import matplotlib

    low, high = np.nanmin(mosaic), np.nanmax(mosaic)
    scaled = (mosaic - low) / ((high - low) or 1.0)
    rgba = matplotlib.colormaps["viridis"](np.nan_to_num(scaled))
    rgba[np.isnan(mosaic)] = 1.0
    return (rgba[:, :, :3] * 255).astype(np.uint8)


class InspectRequest(BaseModel):
    description: str = Field(max_length=MAX_TEXT,
                             description="the network as text, e.g. conv(6,5) relu pool(2) "
                                         "fc(10); never a file name")
    input: str = Field(max_length=64, description="HxWxC, e.g. 32x32x3")


def _validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of problems as one line: 'row: Input should be ...'."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "the request is not valid"


def create_app(net: Network, meta: dict[str, Any], examples: np.ndarray | None = None,
               voter=None, *, hosts: Iterable[str] = LOOPBACK, any_address: bool = False,
               budget: DecodeBudget | None = None) -> FastAPI:
    """The app for one network; with `voter` (an ensemble whose first member `net` is), the
    maps are the member's and the probabilities the ensemble's. `hosts` are the names the
    server answers for; `any_address` lets any IP address through too (listening on all
    interfaces)."""
    app = FastAPI(title="convnet", version="1", docs_url=None, redoc_url=None,
                  description="Look inside a trained ConvNet: predictions, activation maps, the "
                              "arithmetic of every layer.")
    upload_limit = MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD
    app.add_middleware(Guard, hosts=hosts, any_address=any_address, limits={
        "/api/predict": upload_limit, "/api/activations": upload_limit,
        "/api/cell": upload_limit, "/api/inspect": MAX_INSPECT_BYTES})
    lock = threading.Lock()
    budget = budget or DecodeBudget.for_machine()
    decoding = threading.BoundedSemaphore(budget.slots)
    classes = list(meta["classes"])
    explained = [inspector.explain_layer(row) for row in net.shapes]  # one line per layer
    files = {name: (HERE / "static" / name).read_text(encoding="utf-8")
             for name in ("app.js", "app.css")}
    page_text = (HERE / "index.html").read_text(encoding="utf-8")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    def image_from(upload: UploadFile) -> np.ndarray:
        data = upload.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the image is larger than {_size(MAX_UPLOAD_BYTES)}")
        if not data:
            raise HTTPException(400, "the upload is empty")
        if not decoding.acquire(timeout=DECODE_WAIT_SECONDS):
            raise HTTPException(503, "the server is busy decoding other images; try again")
        try:
            return read_image(data, net.input_shape, max_pixels=budget.max_pixels)
        except Exception as e:  # noqa: BLE001 - whatever Pillow says, it's the upload
            raise HTTPException(415, f"not a readable image ({_reason(e)})") from None
        finally:
            decoding.release()

    def views_of(image: np.ndarray):
        with lock:
            return activations(net, image, voter)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return page_text

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in files:
            raise HTTPException(404, f"no file {name[:60]!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(files[name], media_type=f"{kind}; charset=utf-8")

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        """The network: description, input shape, classes, inspect figures and arithmetic."""
        return {"description": str(net.spec.without_input()), "input": list(net.input_shape),
                "classes": classes, "examples": 0 if examples is None else len(examples),
                "inspect": inspector.as_json(net.spec, net.input_shape), "explain": explained}

    @app.post("/api/predict")
    def predict(file: UploadFile = File(...)) -> dict[str, Any]:
        """Class probabilities for an uploaded image."""
        probs = views_of(image_from(file))[-1].values
        order = np.argsort(-probs, kind="stable")
        return {"top": [{"class": classes[i], "probability": float(probs[i])} for i in order],
                "probabilities": [float(p) for p in probs]}

    @app.post("/api/activations")
    def layer_maps(file: UploadFile = File(...)) -> dict[str, Any]:
        """Every layer's output for an uploaded image, as PNG mosaics with their value range."""
        image = image_from(file)
        views = views_of(image)
        layers = []
        for view, line in zip(views, explained):
            # maps side by side; a vector as one strip (1×D)
            values = view.values if view.values.ndim == 3 else view.values[None, :, None]
            h, w, c = values.shape
            columns = min(c, 16) if view.values.ndim == 3 else 1
            mosaic = tile(values.astype(np.float64), columns)
            layers.append({"index": view.index, "layer": view.text, "label": view.label,
                           "shape": format_shape(view.shape), "explain": line,
                           "kind": "maps" if view.values.ndim == 3 else "vector",
                           "png": png_base64(coloured(mosaic)), "min": float(np.min(values)),
                           "max": float(np.max(values)), "columns": columns, "map_height": h,
                           "map_width": w, "conv": isinstance(net.spec.layers[view.index], Conv)})
        probs = views[-1].values
        return {"input": png_base64(image[:, :, 0] if image.shape[2] == 1 else image),
                "classes": classes, "probabilities": [float(p) for p in probs],
                "layers": layers}

    @app.post("/api/cell")
    def cell(file: UploadFile = File(...), layer: int = Form(..., ge=0, le=MAX_NUMBER),
             channel: int = Form(..., ge=0, le=MAX_NUMBER),
             row: int = Form(..., ge=0, le=MAX_NUMBER),
             column: int = Form(..., ge=0, le=MAX_NUMBER)) -> dict[str, Any]:
        """The lecture's one number at one output cell of a conv layer: ReLU(W·x + b)."""
        image = image_from(file)
        try:
            with lock:  # the NumPy engine reuses its buffers
                found = one_number(net, layer_inputs(net, image), layer, row, column, channel)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        return {"layer": found.text, "window": found.window.tolist(),
                "weights": found.weights.tolist(), "bias": found.bias,
                "w_dot_x_plus_b": found.total, "output": found.output, "relu": found.relu}

    @app.post("/api/inspect")
    def inspect(request: InspectRequest) -> dict[str, Any]:
        """Shapes, weights and cost of a description (its text; never a file), or the error
        with its fixes."""
        try:
            spec = parse(request.description)
            shape = parse_input_shape(request.input)
            return {**inspector.as_json(spec, shape),
                    "explain": inspector.explain(spec, shape).splitlines()}
        except UserError as e:
            raise HTTPException(400, str(e)) from None

    @app.get("/api/examples/{index}", responses={200: {"content": {"image/png": {}}}})
    def example(index: int) -> Response:
        """Test-set image `index` of the data set the model was trained on, as PNG."""
        if examples is None or not 0 <= index < len(examples):
            raise HTTPException(404, f"no example {index}")
        image = examples[index]
        data = base64.b64decode(png_base64(image[:, :, 0] if image.shape[2] == 1 else image))
        return Response(data, media_type="image/png")

    return app


def _reason(error: Exception) -> str:
    """Pillow's words for a failed decode, without the object it was given
    ('cannot identify image file <_io.BytesIO object at 0x…>')."""
    text = str(error).split(" <_io.", 1)[0].strip() or type(error).__name__
    if text.startswith("cannot identify image file"):
        return "not a format convnet reads: PNG, JPEG, BMP, GIF, TIFF or WebP"
    return text[:200]


def allowed_hosts(host: str) -> tuple[tuple[str, ...], bool]:
    """The names a server listening on `host` answers for, and whether any IP address may be
    used (listening on every interface)."""
    any_address = host in WILDCARDS
    names = list(LOOPBACK)
    if not any_address:
        names.append(host)
    else:
        import socket

        names += [socket.gethostname(), socket.getfqdn()]
    return tuple(dict.fromkeys(n.lower() for n in names if n)), any_address
