"""The web application behind `convnet serve`: one page and a JSON API (FastAPI).

    GET  /                  the page (index.html, static/app.js and static/app.css beside this
                            file; nothing from elsewhere)
    GET  /api/model         the network: description, input, classes, layers, arithmetic
    GET  /api/version       which checkpoint answers now (the page polls it)
    POST /api/predict       an uploaded image → class probabilities
    POST /api/activations   an uploaded image → every layer's maps, softmax taken apart, and
                            the image's id; GET with ?image=ID for an image given before
    GET  /api/cell          one number of one layer worked out (as `convnet show --cell`)
    GET  /api/layer         one layer's output with all its maps
    GET  /api/animation     a filter sliding over an input: the lecture's examples or the
                            model's first layer
    POST /api/inspect       a description (text only) and an input shape → shapes, or the
                            error and its fixes
    GET  /api/examples      test images with their labels and the model's answers;
                            /api/examples/{i} one as PNG
    GET  /api/filters       a conv layer's filters
    GET  /api/training      a training run's epochs so far
    GET  /openapi.json      the API's OpenAPI schema

Every mistake in a request (not an image, too large, a bad layer or cell, a malformed field) is
answered with a 4xx and {"error": "..."}; a run with no checkpoint yet, or one that cannot be
read, with 503 and why. What a request may cost is bounded before any work: bodies per endpoint
(413), the size of a description (the parser's limits), the pixels of an image and how many
images are decoded at once (both derived from the machine's memory), and the Host header (a
page on another site cannot reach the server through DNS rebinding). The page never interprets
data as HTML, and a Content-Security-Policy forbids inline script and any origin but the
server's own. The model is shared by the requests under a lock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import ipaddress
import math
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from .. import inspector
from ..by_hand import cell_kind, one_number, one_number_text
from ..data.folder import DECODE_BYTES_PER_PIXEL, MAX_PIXELS, read_image
from ..errors import GeometryError, UserError
from ..inside import activations, find, inputs_of
from ..network import Network
from ..resources import available_memory
from ..shapes import format_shape, infer
from ..spec import MAX_NUMBER, MAX_TEXT, Conv, layer_to_string, parse, parse_input_shape
from .source import Loaded, ModelSource, Waiting

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


# A client that sends its body slowly (or stops) holds only its own connection, and not for
# long: each part of a body must come within BODY_PAUSE seconds and the whole within BODY_TIME.
BODY_PAUSE = 10.0
BODY_TIME = 60.0


class _TooSlow(HTTPException):
    def __init__(self) -> None:
        super().__init__(408, f"the request body came too slowly (each part within "
                              f"{BODY_PAUSE:g} s, all of it within {BODY_TIME:g} s)")


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
        received, deadline, whole = 0, None, False

        async def limited():
            nonlocal received, deadline, whole
            if whole:  # the body is in: later calls wait for the client to go (no limit)
                return await receive()
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + BODY_TIME
            try:
                message = await asyncio.wait_for(
                    receive(), max(0.0, min(BODY_PAUSE, deadline - loop.time())))
            except asyncio.TimeoutError:
                raise _TooSlow() from None
            whole = message["type"] != "http.request" or not message.get("more_body", False)
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
        except (_TooLarge, _TooSlow) as e:  # raised outside an endpoint (else FastAPI answers)
            if not started:
                await _answer(secured, e.status_code, str(e.detail))


# ---------------------------------------------------------------------------------------------
# Numbers as pictures: the page colours them itself (a canvas per map), so the server sends
# each layer's values as bytes on the layer's own scale, and the scale.

MAPS_SHOWN = 16  # maps per layer in the overview; the rest on request
MAPS_MAX = 512  # at most this many in one answer
VECTOR_SHOWN = 1024  # values of a vector layer in the overview
IMAGES_HELD = 32  # images the server remembers, so that a cell is asked for by the image's id
VIEWS_HELD = 4  # images whose every layer's output is kept, at most VIEWS_BYTES together
VIEWS_BYTES = 256 << 20
EXAMPLE_MACS = 20_000_000_000  # the test strip's answers cost at most this many multiply-adds


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def png_base64(array: np.ndarray) -> str:
    return base64.b64encode(png_bytes(array)).decode("ascii")


def scale_of(values: np.ndarray) -> dict[str, Any]:
    """The colour scale of a layer: diverging about 0 when it holds negative values (white is
    0), else sequential from its smallest to its largest value."""
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    if low < 0:
        bound = max(-low, high) or 1.0
        return {"kind": "diverging", "low": -bound, "high": bound, "min": low, "max": high}
    return {"kind": "sequential", "low": low, "high": high if high > low else low + 1.0,
            "min": low, "max": high}


def quantized(values: np.ndarray, scale: dict[str, Any]) -> str:
    """The values as bytes 0–255 on `scale`, base64."""
    span = scale["high"] - scale["low"]
    q = np.clip(np.round((values.astype(np.float64) - scale["low"]) / span * 255), 0, 255)
    return base64.b64encode(np.nan_to_num(q).astype(np.uint8).tobytes()).decode("ascii")


def colour_table(name: str) -> list[list[int]]:
    """A matplotlib colour map as 256 RGB triples, for the page to colour with."""
    import matplotlib

    rgba = matplotlib.colormaps[name](np.linspace(0, 1, 256))
    return (rgba[:, :3] * 255).round().astype(int).tolist()


def values_entry(values: np.ndarray, limit: int) -> dict[str, Any]:
    """A layer's output for the page: maps (the first `limit`, map after map) or a vector."""
    scale = scale_of(values)
    if values.ndim == 3:
        h, w, c = values.shape
        shown = min(c, limit)
        data = np.ascontiguousarray(values[:, :, :shown].transpose(2, 0, 1))
        return {"kind": "maps", "height": h, "width": w, "count": c, "shown": shown,
                "scale": scale, "data": quantized(data, scale)}
    shown = min(values.size, max(limit, VECTOR_SHOWN))
    return {"kind": "vector", "length": int(values.size), "shown": shown, "scale": scale,
            "data": quantized(values[:shown], scale),
            "values": [float(v) for v in values[:64]] if values.size <= 64 else None}


def rows_by_name(shapes) -> dict[str, Any]:
    return {row.name: row for top in shapes for row in top.walk()}


def _plain(array: np.ndarray | None) -> Any:
    """An array as JSON: nested lists, −inf (padding under max pooling) as null."""
    if array is None:
        return None
    values = np.asarray(array, dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan).tolist() if not \
        np.isfinite(values).all() else values.tolist()


def _json_safe(value: Any) -> Any:
    """NaN (from _plain) → None, recursively."""
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# The lecture's pictures, animated: a 7×7 input and a 3×3 filter at stride 1, 2 and 3 (which does
# not fit), a border of zeros, and the 4×4 max pool that gives 6, 8, 3, 4.

LECTURE_INPUT = np.array([[0, 1, 1, 2, 0, 1, 0],
                          [1, 3, 2, 1, 0, 0, 1],
                          [0, 2, 4, 3, 1, 0, 0],
                          [1, 1, 3, 4, 2, 1, 0],
                          [0, 0, 1, 3, 4, 2, 1],
                          [1, 0, 0, 1, 2, 3, 1],
                          [0, 1, 0, 0, 1, 1, 2]], dtype=np.float64)
LECTURE_FILTER = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=np.float64)  # edges
LECTURE_POOL = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]],
                        dtype=np.float64)
ANIMATIONS = {  # name: (description, input)
    "stride1": ("conv(1,3)", LECTURE_INPUT),
    "stride2": ("conv(1,3,stride=2)", LECTURE_INPUT),
    "stride3": ("conv(1,3,stride=3)", LECTURE_INPUT),
    "pad1": ("conv(1,3,pad=1)", LECTURE_INPUT),
    "maxpool": ("pool(2)", LECTURE_POOL),
}
MAX_ANIMATION_STEPS = 65_536


def _steps(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
           out: tuple[int, int] | None) -> list[list[int]]:
    """Where the window stands at each step, in padded coordinates (`size` is the padded
    input's), row after row. When the stride does not fit (`out` None), the steps along the
    side that does not fit — the first row, or else the first column — until one falls off."""
    if out is not None:
        return [[r * stride[0], c * stride[1]] for r in range(out[0]) for c in range(out[1])]
    across = (size[1] - kernel[1]) % stride[1] != 0 or size[1] < kernel[1]
    side = 1 if across or (size[0] - kernel[0]) % stride[0] == 0 and size[0] >= kernel[0] else 0
    steps, at = [], 0
    while True:
        steps.append([0, at] if side == 1 else [at, 0])
        if at + kernel[side] > size[side]:
            return steps
        at += stride[side]


def custom_example(h: int, w: int, kernel: int, stride: int, pad: int
                   ) -> tuple[str, np.ndarray, np.ndarray]:
    """A playground's network, input and filter: small whole numbers, the same for the same
    sizes."""
    rng = np.random.default_rng(h * 1_000 + w * 10 + kernel)
    values = rng.integers(0, 5, size=(h, w)).astype(np.float64)
    weights = rng.integers(-1, 2, size=(kernel, kernel)).astype(np.float64)
    return f"conv(1,{kernel},stride={stride},pad={pad})", values, weights


# ---------------------------------------------------------------------------------------------
# The app.

class InspectRequest(BaseModel):
    description: str = Field(max_length=MAX_TEXT,
                             description="the network as text, e.g. conv(6,5) relu pool(2) "
                                         "fc(10); never a file name")
    input: str = Field(max_length=64, description="HxWxC (or HxW for one channel), e.g. 32x32x3")
    lang: str = Field("en", pattern="^(en|ko)$", description="en or ko (Korean)")


def _validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of problems as one line: 'row: Input should be ...'."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "the request is not valid"


@dataclass(frozen=True)
class HeldImage:
    """An image as the network sees it (its input size), and what was done to fit it."""

    pixels: np.ndarray  # H×W×C uint8 at the model's input size
    original: tuple[int, int] | None  # the upload's width and height


LANG = Query("en", pattern="^(en|ko)$", description="en or ko (Korean)")


def create_app(model: "ModelSource | Network", meta: dict[str, Any] | None = None,
               examples: np.ndarray | None = None, voter=None, *,
               hosts: Iterable[str] = LOOPBACK, any_address: bool = False,
               budget: DecodeBudget | None = None, labels: np.ndarray | None = None) -> FastAPI:
    """The app for a model: a ModelSource (watched on disk), or a Network with its metadata
    (and optionally test images and labels; with `voter`, an ensemble whose first member the
    network is: the maps are the member's, the probabilities the ensemble's). `hosts` are the
    names the server answers for; `any_address` lets any IP address through too (listening on
    all interfaces)."""
    if isinstance(model, Network):
        fixed = Loaded(model, dict(meta or {}), voter, "1", (),
                       None if examples is None else (examples, labels))
        source: Any = _Fixed(fixed)
    else:
        source = model
    app = FastAPI(title="convnet", version="2", docs_url=None, redoc_url=None,
                  description="Look inside a ConvNet: predictions, every layer's activation "
                              "maps, the arithmetic of any one number, the convolution animated, "
                              "and a training run as it goes.")
    upload_limit = MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD
    app.add_middleware(Guard, hosts=hosts, any_address=any_address, limits={
        "/api/predict": upload_limit, "/api/activations": upload_limit,
        "/api/inspect": MAX_INSPECT_BYTES})
    lock = threading.Lock()  # the NumPy engine reuses its buffers: one forward pass at a time
    budget = budget or DecodeBudget.for_machine()
    decoding = threading.BoundedSemaphore(budget.slots)
    held: OrderedDict[str, HeldImage] = OrderedDict()
    predictions: dict[str, list[dict[str, Any]]] = {}  # per model version
    files = {name: (HERE / "static" / name).read_text(encoding="utf-8")
             for name in ("app.js", "app.css")}
    page_text = (HERE / "index.html").read_text(encoding="utf-8")
    colours = {"sequential": colour_table("viridis"), "diverging": colour_table("RdBu_r")}
    icon = png_bytes(_icon())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    def loaded() -> Loaded:
        try:
            return source.current()
        except Waiting as e:
            raise HTTPException(503, str(e)) from None
        except UserError as e:
            raise HTTPException(503, f"the model cannot be read: {e}") from None

    def decode(data: bytes, shape: tuple[int, int, int]) -> HeldImage:
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the image is larger than {_size(MAX_UPLOAD_BYTES)}")
        if not data:
            raise HTTPException(400, "the file is empty")
        if not decoding.acquire(timeout=DECODE_WAIT_SECONDS):
            raise HTTPException(503, "the server is busy decoding other images; try again")
        try:
            original = _size_of(data)
            pixels = read_image(data, shape, max_pixels=budget.max_pixels)
        except Exception as e:  # noqa: BLE001 - whatever Pillow says, it's the upload
            raise HTTPException(415, f"not a readable image ({_reason(e)})") from None
        finally:
            decoding.release()
        return HeldImage(pixels, original)

    def hold(image: HeldImage) -> str:
        key = hashlib.sha256(image.pixels.tobytes() + str(image.pixels.shape).encode()
                             ).hexdigest()[:20]
        held[key] = image
        held.move_to_end(key)
        while len(held) > IMAGES_HELD:
            held.popitem(last=False)
        return key

    def image_by(key: str, current: Loaded) -> HeldImage:
        image = held.get(key)
        if image is None:
            raise HTTPException(404, "that image is no longer held by the server; give it again")
        if image.pixels.shape != current.net.input_shape:
            raise HTTPException(409, "the model changed to another input size since this image "
                                     "was given; give it again")
        return image

    computed: OrderedDict[tuple[str, str], list] = OrderedDict()  # recent images' activations

    def views_of(current: Loaded, pixels: np.ndarray, key: str | None = None):
        """Every layer's output for the image; the last few kept (by model version and image),
        so that following cells of a large network does not run it again each time."""
        if key is not None and (current.version, key) in computed:
            computed.move_to_end((current.version, key))
            return computed[(current.version, key)]
        with lock:
            views = activations(current.net, pixels, current.voter)
        if key is not None:
            computed[(current.version, key)] = views
            size = sum(v.values.nbytes for top in views for v in top.walk())
            while len(computed) > max(1, min(VIEWS_HELD, VIEWS_BYTES // max(size, 1))):
                computed.popitem(last=False)
        return views

    def layer_tree(current: Loaded, lang: str) -> list[dict[str, Any]]:
        def entry(row) -> dict[str, Any]:
            item = {"name": row.name, "index": row.index, "text": layer_to_string(row.layer),
                    "label": inspector.label(row.layer), "shape": list(row.output),
                    "shape_text": format_shape(row.output), "params": row.params,
                    "macs": row.macs, "explain": inspector.explain_layer(row, lang),
                    "cell": cell_kind(row), "type": row.layer.type}
            if row.paths:
                item["paths"] = [{"name": name, "layers": [entry(r) for r in rows]}
                                 for name, rows in row.paths]
            return item
        return [entry(row) for row in current.net.shapes]

    def maps_tree(views, limit: int) -> list[dict[str, Any]]:
        def entry(view) -> dict[str, Any]:
            item = {"name": view.name, **values_entry(view.values, limit)}
            if view.paths:
                item["paths"] = [{"name": name, "layers": [entry(v) for v in inner]}
                                 for name, inner in view.paths]
            return item
        return [entry(view) for view in views]

    def answer_for(current: Loaded, key: str, image: HeldImage, limit: int) -> dict[str, Any]:
        views = views_of(current, image.pixels, key)
        classes = list(current.meta["classes"])
        probabilities = views[-1].values.astype(np.float64)
        logits = views[-2].values.astype(np.float64) if len(views) > 1 else None
        softmax = None
        if logits is not None and logits.ndim == 1 and logits.size == len(classes):
            shift = float(logits.max())
            exp = np.exp(logits - shift)
            softmax = {"logits": logits.tolist(), "max": shift, "exp": exp.tolist(),
                       "sum": float(exp.sum()), "probabilities": (exp / exp.sum()).tolist(),
                       "ensemble": current.voter is not None}
        order = np.argsort(-probabilities, kind="stable")
        h, w, c = current.net.input_shape
        pixels = image.pixels
        return {"model": current.version, "image": key,
                "input": {"png": png_base64(pixels[:, :, 0] if c == 1 else pixels),
                          "shape": [h, w, c], "original": image.original,
                          "resized": image.original is not None and
                          tuple(image.original) != (w, h)},
                "classes": classes, "probabilities": probabilities.tolist(),
                "top": [{"class": classes[i], "probability": float(probabilities[i])}
                        for i in order[:10]],
                "softmax": softmax, "layers": maps_tree(views, limit)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return page_text

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(icon, media_type="image/png", headers={"cache-control": "max-age=86400"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in files:
            raise HTTPException(404, f"no file {name[:60]!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(files[name], media_type=f"{kind}; charset=utf-8")

    @app.get("/api/model")
    def model_info(lang: str = LANG) -> dict[str, Any]:
        """The network: description, input shape, classes, inspect figures, each layer's
        arithmetic (in `lang`), and the colour tables the page paints with. Before a run's first
        epoch: {"state": "waiting"} and why."""
        try:
            current = source.current()
        except Waiting as e:
            return {"state": "waiting", "message": str(e), "run": True, "colours": colours}
        except UserError as e:
            raise HTTPException(503, f"the model cannot be read: {e}") from None
        net = current.net
        first = next((row.name for top in net.shapes for row in top.walk()
                      if isinstance(row.layer, Conv)), None)
        count = 0 if current.examples is None else len(current.examples[0])
        return {"state": "ready", "version": current.version,
                "description": str(net.spec.without_input()), "input": list(net.input_shape),
                "classes": list(current.meta["classes"]), "examples": count,
                "labels": current.examples is not None and current.examples[1] is not None,
                "inspect": inspector.as_json(net.spec, net.input_shape),
                "explain": [inspector.explain_layer(row, lang) for row in net.shapes],
                "layers": layer_tree(current, lang), "first_conv": first,
                "notes": [note.words(lang) if hasattr(note, "words") else str(note)
                          for note in current.notes], "run": bool(getattr(source, "run", False)),
                "problem": getattr(source, "problem", None), "colours": colours,
                "directory": current.meta.get("directory"),
                "metrics": _numbers(current.meta.get("metrics", {}))}

    @app.get("/api/version")
    def version() -> dict[str, Any]:
        """Which model answers now (the page polls this to notice a new checkpoint)."""
        try:
            current = source.current()
        except Waiting as e:
            return {"state": "waiting", "message": str(e)}
        except UserError as e:
            return {"state": "broken", "message": str(e)}
        return {"state": "ready", "version": current.version,
                "problem": getattr(source, "problem", None),
                "epoch": current.meta.get("metrics", {}).get("epoch")}

    @app.post("/api/predict")
    def predict(file: UploadFile = File(...)) -> dict[str, Any]:
        """Class probabilities for an uploaded image."""
        current = loaded()
        image = decode(file.file.read(MAX_UPLOAD_BYTES + 1), current.net.input_shape)
        with lock:
            probs = (current.voter or current.net).predict(image.pixels[None])[0]
        classes = list(current.meta["classes"])
        order = np.argsort(-probs, kind="stable")
        return {"top": [{"class": classes[i], "probability": float(probs[i])} for i in order],
                "probabilities": [float(p) for p in probs]}

    @app.post("/api/activations")
    def activations_of_upload(file: UploadFile = File(...),
                              maps: int = Query(MAPS_SHOWN, ge=1, le=MAPS_MAX)
                              ) -> dict[str, Any]:
        """Every layer's output for an uploaded image (resized to the input as `predict`
        does): the first `maps` maps of each layer as bytes on the layer's colour scale, the
        probabilities, softmax taken apart, and the image's id for /api/cell."""
        current = loaded()
        image = decode(file.file.read(MAX_UPLOAD_BYTES + 1), current.net.input_shape)
        return answer_for(current, hold(image), image, maps)

    @app.get("/api/activations")
    def activations_again(image: str = Query(..., max_length=64),
                          maps: int = Query(MAPS_SHOWN, ge=1, le=MAPS_MAX)) -> dict[str, Any]:
        """The same for an image given before (by its id), e.g. after the model changed."""
        current = loaded()
        return answer_for(current, image, image_by(image, current), maps)

    @app.get("/api/cell")
    def cell(image: str = Query(..., max_length=64), layer: str = Query(..., max_length=200),
             row: int = Query(..., ge=0, le=MAX_NUMBER),
             column: int = Query(..., ge=0, le=MAX_NUMBER),
             channel: int = Query(..., ge=0, le=MAX_NUMBER), lang: str = LANG) -> dict[str, Any]:
        """One number of one layer worked out, as `convnet show --cell` prints it: for a conv
        the window, the filter, their products, the sum, + b and the ReLU after it; for pooling
        the window and its largest value or mean; for fc the input and the weight row; for a
        block's output the addition. With the window's place in the layer before and what the
        number sees of the input."""
        current = loaded()
        held_image = image_by(image, current)
        views = views_of(current, held_image.pixels, image)
        try:
            with lock:  # the NumPy engine reuses its buffers
                found = one_number(current.net, views, held_image.pixels, layer, row, column,
                                   channel)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        return _json_safe({
            "model": current.version, "layer": found.layer, "text": found.text,
            "kind": found.kind, "row": found.row, "column": found.column,
            "channel": found.channel, "source": found.source, "origin": list(found.origin),
            "window": _plain(found.window), "weights": _plain(found.weights),
            "products": _plain(found.products), "bias": found.bias, "total": found.total,
            "output": found.output, "relu": found.relu,
            "chosen": None if found.chosen is None else list(found.chosen),
            "receptive": None if found.receptive is None else list(found.receptive),
            "shortcut": found.shortcut, "lines": one_number_text(found, lang=lang)})

    @app.get("/api/layer")
    def one_layer(image: str = Query(..., max_length=64), layer: str = Query(..., max_length=200),
                  maps: int = Query(MAPS_MAX, ge=1, le=MAPS_MAX)) -> dict[str, Any]:
        """One layer's output for an image given before, with up to `maps` maps."""
        current = loaded()
        held_image = image_by(image, current)
        views = views_of(current, held_image.pixels, image)
        try:
            view = find(views, layer)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        return {"model": current.version, "name": view.name, **values_entry(view.values, maps)}

    @app.get("/api/animation")
    def animation(name: str = Query(..., pattern="^(stride1|stride2|stride3|pad1|maxpool|model|"
                                                 "custom)$"),
                  image: str | None = Query(None, max_length=64),
                  map: int = Query(0, ge=0, le=MAX_NUMBER), lang: str = LANG,
                  h: int = Query(7, ge=1, le=32), w: int = Query(7, ge=1, le=32),
                  kernel: int = Query(3, ge=1, le=11), stride: int = Query(1, ge=1, le=8),
                  pad: int = Query(0, ge=0, le=5)) -> dict[str, Any]:
        """A window sliding over an input, step by step: the lecture's examples (7×7 with a
        3×3 filter at stride 1, 2 and 3, pad 1, and the 4×4 max pool), the playground's own
        (custom: an h×w input, a kernel×kernel filter, stride, pad), or map `map` of the
        model's first conv layer on an image given before. Each says what the inspector says
        of it, and one that does not fit says so with the inspector's fixes."""
        if name == "model":
            return _json_safe(model_animation(image, map, lang))
        if name == "custom":
            description, values, weights = custom_example(h, w, kernel, stride, pad)
        else:
            description, values = ANIMATIONS[name]
            weights = LECTURE_FILTER
        spec = parse(description)
        shape = (*values.shape, 1)
        try:
            rows = infer(spec, shape)
        except GeometryError as e:
            layer = spec.layers[0]
            p = layer.pad if isinstance(layer.pad, int) else 0
            return _json_safe({
                "name": name, "description": description, "kind": "conv",
                "input": values.tolist(), "channels": 1, "pad": [p, p, p, p],
                "kernel": list(layer.kernel), "stride": list(layer.stride),
                "filter": weights[:, :, None].tolist(), "bias": 0.0, "output": None,
                "size": None, "fits": False, "error": e.korean if lang == "ko" else str(e),
                "explain": None,
                "steps": _steps((values.shape[0] + 2 * p, values.shape[1] + 2 * p),
                                layer.kernel, layer.stride, None)})
        row = rows[0]
        net = Network(spec, input=shape, engine="numpy", dtype="float64", seed=0)
        is_conv = isinstance(row.layer, Conv)
        if is_conv:
            net.load_state_dict({"0.weight": weights[None, None], "0.bias": np.zeros(1)})
        output = activations(net, values[:, :, None])[0].values[:, :, 0]
        return _json_safe({
            "name": name, "description": description,
            "kind": "conv" if is_conv else "maxpool", "input": values.tolist(), "channels": 1,
            "pad": list(row.padding), "kernel": list(row.layer.kernel),
            "stride": list(row.layer.stride),
            "filter": weights[:, :, None].tolist() if is_conv else None, "bias": 0.0,
            "output": output.tolist(), "size": list(row.output[:2]), "fits": True,
            "error": None, "explain": inspector.explain_layer(row, lang),
            "steps": _steps(values.shape, row.layer.kernel, row.layer.stride,
                            tuple(row.output[:2]))})

    def model_animation(key: str | None, k: int, lang: str) -> dict[str, Any]:
        current = loaded()
        if key is None:
            raise HTTPException(422, "give an image (its id) to animate the model's first layer")
        pixels = image_by(key, current).pixels
        net = current.net
        rows = rows_by_name(net.shapes)
        first = next((row for top in net.shapes for row in top.walk()
                      if isinstance(row.layer, Conv)), None)
        if first is None:
            raise HTTPException(422, "this network has no conv layer to animate")
        if k >= first.output[2]:
            raise HTTPException(422, f"layer {first.name} has maps 0 to {first.output[2] - 1}")
        views = views_of(current, pixels, key)
        given = inputs_of(views, net.prepare_images(pixels[None])[0])[first.name]
        out = tuple(first.output[:2])
        if out[0] * out[1] > MAX_ANIMATION_STEPS:
            raise HTTPException(422, f"layer {first.name}'s output has {out[0] * out[1]:,} "
                                     f"cells; the animation shows at most "
                                     f"{MAX_ANIMATION_STEPS:,}")
        state = net.engine.state_dict()
        weight = np.asarray(state[f"{first.name}.weight"][k], np.float64).transpose(1, 2, 0)
        bias = float(state[f"{first.name}.bias"][k]) if f"{first.name}.bias" in state else 0.0
        top, bottom, left, right = first.padding
        padded_size = (given.shape[0] + top + bottom, given.shape[1] + left + right)
        return {"name": "model", "description": layer_to_string(first.layer),
                "layer": first.name, "map": k, "maps": first.output[2], "kind": "conv",
                "input": np.asarray(given, np.float64).tolist(), "channels": given.shape[2],
                "pad": list(first.padding), "kernel": list(first.layer.kernel),
                "stride": list(first.layer.stride), "filter": weight.tolist(), "bias": bias,
                "output": np.asarray(find(views, first.name).values[:, :, k],
                                     np.float64).tolist(),
                "size": list(out), "fits": True, "error": None,
                "explain": inspector.explain_layer(rows[first.name], lang),
                "steps": _steps(padded_size, first.layer.kernel, first.layer.stride, out)}

    @app.post("/api/inspect")
    def inspect(request: InspectRequest) -> dict[str, Any]:
        """Shapes, weights and cost of a description (its text; never a file), or the error
        with its fixes (in `lang`)."""
        try:
            spec = parse(request.description)
            shape = parse_input_shape(request.input)
            return {**inspector.as_json(spec, shape),
                    "explain": inspector.explain(spec, shape, request.lang).splitlines()}
        except GeometryError as e:
            raise HTTPException(400, e.korean if request.lang == "ko" else str(e)) from None
        except UserError as e:
            raise HTTPException(400, str(e)) from None

    @app.get("/api/examples")
    def example_list() -> dict[str, Any]:
        """The test images the page offers, each with its label and the model's answer (the
        mistakes are the ones to look at)."""
        current = loaded()
        if current.examples is None:
            return {"count": 0, "items": []}
        images, labels = current.examples
        if current.version not in predictions:
            # answers for as many as EXAMPLE_MACS multiply-adds allow (all of a small network's,
            # a few of VGG-16's), so that the page never waits long for its strip
            macs = sum(row.macs for row in current.net.shapes) * (
                len(current.voter.members) if hasattr(current.voter, "members") else 1)
            count = int(min(len(images), max(1, EXAMPLE_MACS // max(macs, 1))))
            with lock:
                probs = (current.voter or current.net).predict(images[:count])
            classes = list(current.meta["classes"])
            items = []
            for i in range(len(images)):
                label = None if labels is None else classes[int(labels[i])]
                if i >= count:
                    items.append({"index": i, "predicted": None, "probability": None,
                                  "label": label, "correct": None})
                    continue
                guess = int(np.argmax(probs[i]))
                items.append({"index": i, "predicted": classes[guess],
                              "probability": float(probs[i][guess]), "label": label,
                              "correct": None if label is None else classes[guess] == label})
            predictions.clear()
            predictions[current.version] = items
        items = predictions[current.version]
        return {"count": len(items), "items": items,
                "mistakes": sum(1 for item in items if item["correct"] is False)}

    @app.get("/api/examples/{index}", responses={200: {"content": {"image/png": {}}}})
    def example(index: int) -> Response:
        """Test-set image `index` of the data set the model was trained on, as PNG."""
        current = loaded()
        if current.examples is None or not 0 <= index < len(current.examples[0]):
            raise HTTPException(404, f"no example {index}")
        image = current.examples[0][index]
        return Response(png_bytes(image[:, :, 0] if image.shape[2] == 1 else image),
                        media_type="image/png", headers={"cache-control": "no-store"})

    @app.get("/api/sample", responses={200: {"content": {"image/png": {}}}})
    def sample() -> Response:
        """An image to start with when the model has no test set: a few shapes drawn at the
        model's input size."""
        current = loaded()
        return Response(png_bytes(sample_image(current.net.input_shape)), media_type="image/png")

    @app.get("/api/filters")
    def filters(layer: str | None = Query(None, max_length=200),
                limit: int = Query(64, ge=1, le=MAPS_MAX)) -> dict[str, Any]:
        """A conv layer's filters (the first conv layer's unless `layer` names one), as bytes on
        a colour scale about 0, filter after filter (K×kh×kw×C)."""
        current = loaded()
        rows = rows_by_name(current.net.shapes)
        name = layer or next((n for n, r in rows.items() if isinstance(r.layer, Conv)), None)
        if name is None or name not in rows or not isinstance(rows[name].layer, Conv):
            raise HTTPException(422, f"no conv layer {name!r}" if name else
                                     "this network has no conv layer")
        weight = np.asarray(current.net.engine.state_dict()[f"{name}.weight"], np.float64)
        weight = weight[:limit].transpose(0, 2, 3, 1)  # K×kh×kw×C
        scale = scale_of(np.concatenate([weight.ravel(), -weight.ravel()]))
        return {"model": current.version, "layer": name, "text": layer_to_string(rows[name].layer),
                "shape": list(weight.shape), "count": rows[name].output[2],
                "scale": scale, "data": quantized(weight, scale)}

    @app.get("/api/training")
    def training() -> dict[str, Any]:
        """A training run's epochs so far (loss and accuracy), and whether it has finished."""
        report = source.training() if hasattr(source, "training") else {"run": False}
        return report

    return app


class _Fixed:
    """A model given as objects (tests, an ensemble built in memory): it never changes."""

    run = False
    problem = None

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded

    def current(self) -> Loaded:
        return self.loaded

    def training(self) -> dict[str, Any]:
        return {"run": False}


def _icon() -> np.ndarray:
    """The page's icon: a 3×3 filter over a grid, in the page's blue."""
    icon = np.full((32, 32, 4), 0, np.uint8)
    icon[2:30, 2:30] = (47, 95, 179, 255)
    for i in range(3):
        for j in range(3):
            top, left = 5 + 8 * i, 5 + 8 * j
            icon[top:top + 6, left:left + 6] = (255, 255, 255, 255) if (i + j) % 2 == 0 else \
                (166, 196, 240, 255)
    return icon


def sample_image(shape: tuple[int, int, int]) -> np.ndarray:
    """A disc, a bar and a ramp, at the input size: something with edges for the filters to
    find."""
    h, w, c = shape
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    disc = ((y - 0.38) ** 2 + (x - 0.38) ** 2) < 0.22 ** 2
    bar = (np.abs(x + y - 1.25) < 0.08) & (x > 0.45)
    grey = np.where(disc, 0.95, 0.0) + np.where(bar, 0.7, 0.0)
    if c == 1:
        return (np.clip(grey, 0, 1) * 255).astype(np.uint8)
    rgb = np.stack([np.where(disc, 0.9, 0.15 + 0.3 * x), np.where(bar, 0.8, 0.2 + 0.2 * y),
                    np.where(disc, 0.2, 0.45)], axis=-1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def _size_of(data: bytes) -> tuple[int, int] | None:
    """The width and height an image file says it has (its header only), or None."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb is refused by read_image, with its reason
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Exception:  # noqa: BLE001 - read_image says what is wrong with it
        return None


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


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
