"""A bounded load on `convnet serve` at 127.0.0.1: the figures of docs/RELIABILITY.md.

    .venv/bin/python scripts/load_serve.py RUN_DIR                  # 32 clients, 2 rounds of 30 s
    .venv/bin/python scripts/load_serve.py RUN_DIR --clients 8 --seconds 10

Starts the server on a free port, sends each kind of request once, then runs the rounds: each
client picks requests at random from the page's ordinary calls (real test images for predict and
activations) and hostile ones (a decompression bomb, truncated and flipped PNGs, bytes that are
no image, an empty file, a 9 MiB body, broken JSON, a 600,000-character description), while slow
clients announce uploads and send a byte a second. Prints latencies per request, status codes,
5xx (must be 0), errors without the documented shape (0), hostile requests not refused with 4xx
(0), the server's memory after each round, and what the slow clients got.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loading import load  # noqa: E402
from serving import server_process  # noqa: E402

from convnet import cpu  # noqa: E402
from convnet.checkpoint import load as load_model  # noqa: E402
from convnet.evaluate import data_for  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--data-dir")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--slow", type=int, default=4, help="slow clients beside them")
    args = p.parse_args()
    net, meta = load_model(args.model, engine="numpy")
    data = data_for(meta, net.input_shape, None, args.data_dir)
    images = [data.test.images[i] for i in range(8)]
    images = [image[..., 0] if image.shape[-1] == 1 else image for image in images]
    with server_process(Path(args.model), Path(args.data_dir or ".")) as (url, server):
        report = load(url, server.pid, images, args.clients, args.seconds, args.slow,
                      slow_pause=1.0, rounds=args.rounds)
        alive = server.poll() is None
    print(f"# convnet serve {args.model}; {cpu.describe()}")
    print(report.table())
    print(f"server still running at the end: {alive}")
    bad = report.server_errors() or report.malformed() or report.hostile_not_refused()
    return 1 if bad or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
