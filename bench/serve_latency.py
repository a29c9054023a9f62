"""How fast `convnet serve` answers: the time of each API call the page makes, for one model.

    .venv/bin/python bench/serve_latency.py runs/fashion-mnist-…/best [--requests 30]

Calls the app in-process (FastAPI's test client: no network in between) with a real test image
and prints median and 90th-percentile milliseconds per endpoint.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--requests", type=int, default=30)
    args = p.parse_args()
    from fastapi.testclient import TestClient
    from PIL import Image

    from convnet import checkpoint
    from convnet.data import load_dataset
    from convnet.web.app import create_app

    net, meta = checkpoint.load(args.model, engine="numpy")
    image = load_dataset(meta["training"]["data"]).test.images[0]
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buffer, format="PNG")
    upload = {"file": ("x.png", buffer.getvalue(), "image/png")}
    client = TestClient(create_app(net, meta), base_url="http://127.0.0.1")
    key = client.post("/api/activations", files=upload).json()["image"]
    calls = {
        "GET /api/model": lambda: client.get("/api/model"),
        "POST /api/predict": lambda: client.post("/api/predict", files=upload),
        "POST /api/activations": lambda: client.post("/api/activations?maps=10", files=upload),
        "GET /api/cell (conv)": lambda: client.get("/api/cell", params={
            "image": key, "layer": "0", "channel": 0, "row": 3, "column": 3}),
        "GET /api/animation (model)": lambda: client.get("/api/animation", params={
            "name": "model", "image": key}),
    }
    print(f"# {meta['description']} on {'x'.join(map(str, net.input_shape))}, "
          f"{args.requests} requests each")
    for name, call in calls.items():
        call()
        times = []
        for _ in range(args.requests):
            start = time.perf_counter()
            assert call().status_code == 200
            times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        print(f"{name:24} median {statistics.median(times):6.1f} ms   "
              f"p90 {times[int(0.9 * len(times)) - 1]:6.1f} ms")


if __name__ == "__main__":
    main()
