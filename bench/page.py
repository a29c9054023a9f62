"""How fast the page draws: the overview of every layer, in Chromium, after each image arrives.

    .venv/bin/python bench/page.py [MODEL] [--images 20]

MODEL defaults to the network `convnet train` builds for 28×28 grey images of 10 classes (its
weights do not change how long drawing takes). Starts `convnet serve` on 127.0.0.1, opens the
page in Debian's Chromium (headless) at 1366×768, uploads --images different images one after
the other, and reads what the page measured itself (window.convnetTimings):
  overview   from the answer's arrival to the overview, prediction and softmax drawn (the
             issue's target: under 300 ms for the default 28×28 model)
  request    from the upload to the answer's arrival (the server's forward pass and the JSON)
Prints the median and the largest of each, and the CPU.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]


def cpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("Model name")), platform.processor())
    flags = next((line for line in text.splitlines() if line.startswith("Flags")), "")
    extras = [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()]
    return f"{name} ({', '.join(extras) or 'no bf16/AMX'})"


def main() -> None:
    from convnet.train import default_network
    from serving import free_port

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?",
                   default="28x28x1 " + default_network((28, 28, 1), 10))
    p.add_argument("--images", type=int, default=20)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "convnet", "serve", args.model, "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/api/version", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        rng = np.random.default_rng(0)
        folder = Path(__import__("tempfile").mkdtemp())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768}, bypass_csp=True)
            page.goto(url + "/")
            page.wait_for_function("window.convnetTimings && window.convnetTimings.drawn >= 1",
                                   timeout=60_000)
            shape = page.evaluate("fetch('/api/model').then(r => r.json()).then(m => m.input)")
            overview, request = [], []
            for i in range(args.images):
                pixels = (rng.random(shape[:2] if shape[2] == 1 else shape) * 255).astype(
                    np.uint8)
                path = folder / f"{i}.png"
                Image.fromarray(pixels).save(path)
                before = page.evaluate("window.convnetTimings.drawn")
                page.set_input_files("#upload", str(path))
                page.wait_for_function(f"window.convnetTimings.drawn > {before}")
                overview.append(page.evaluate("window.convnetTimings.overview_ms"))
                request.append(page.evaluate("window.convnetTimings.request_ms"))
            browser.close()
    finally:
        server.terminate()
        server.wait()
    name = args.model if len(args.model) < 60 else args.model[:57] + "..."
    print(f"# {name}; {args.images} images; Chromium headless 1366×768; {cpu()}")
    print(f"{'':10} {'median ms':>10} {'largest ms':>11}")
    for label, values in (("overview", overview), ("request", request)):
        print(f"{label:10} {statistics.median(values):10.1f} {max(values):11.1f}")


if __name__ == "__main__":
    main()
