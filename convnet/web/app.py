"""The web application behind `convnet serve`: one page and a JSON API (FastAPI).

    GET  /                  the page (index.html beside this file; no assets from elsewhere)
    GET  /api/model         the network: description, input, classes, inspect figures, arithmetic
    POST /api/predict       an uploaded image → class probabilities
    POST /api/activations   an uploaded image → every layer's maps (PNG mosaics) and arithmetic
    POST /api/cell          an uploaded image and a conv output cell → the window, the filter,
                            the bias and the one number ReLU(W·x + b)
    POST /api/inspect       a description and an input shape → shapes, or the error and fixes
    GET  /api/examples/{i}  test-set image i of the model's data set, as PNG
    GET  /openapi.json      the API's OpenAPI schema

Mistakes in what is sent (not an image, too large, a bad layer or cell) are answered with a 4xx
and {"error": "..."}; the model is shared by the requests under a lock.
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from .. import inspector
from ..data.folder import read_image
from ..errors import UserError
from ..figures import tile
from ..by_hand import layer_inputs, one_number
from ..inside import activations
from ..network import Network
from ..shapes import format_shape
from ..spec import Conv, load as load_spec, parse_input_shape

MAX_UPLOAD_BYTES = 8 << 20
PAGE = Path(__file__).with_name("index.html")


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
    description: str  # e.g. "conv(6,5) relu pool(2) fc(10)"
    input: str  # HxWxC, e.g. "32x32x3"


def create_app(net: Network, meta: dict[str, Any], examples: np.ndarray | None = None,
               voter=None) -> FastAPI:
    """The app for one network; with `voter` (an ensemble whose first member `net` is), the
    maps are the member's and the probabilities the ensemble's."""
    app = FastAPI(title="convnet", version="1", docs_url=None, redoc_url=None,
                  description="Look inside a trained ConvNet: predictions, activation maps, the "
                              "arithmetic of every layer.")
    lock = threading.Lock()
    classes = list(meta["classes"])
    explained = inspector.explain(net.spec, net.input_shape).splitlines()[1:-1]

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    def image_from(upload: UploadFile) -> np.ndarray:
        data = upload.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the image is larger than {MAX_UPLOAD_BYTES >> 20} MiB")
        if not data:
            raise HTTPException(400, "the upload is empty")
        try:
            return read_image(data, net.input_shape)
        except Exception as e:  # noqa: BLE001 - whatever Pillow says, it's the upload
            raise HTTPException(415, f"not a readable image ({e})") from None

    def views_of(image: np.ndarray):
        with lock:
            return activations(net, image, voter)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

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
            layers.append({"index": view.index, "layer": view.text,
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
    def cell(file: UploadFile = File(...), layer: int = Form(...), channel: int = Form(...),
             row: int = Form(...), column: int = Form(...)) -> dict[str, Any]:
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
        """Shapes, weights and cost of any description, or the error with its fixes."""
        try:
            spec = load_spec(request.description)
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

