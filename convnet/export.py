"""`convnet export DIR --onnx FILE`: a trained model as ONNX, the format the world deploys.

The graph does what `predict` does, so any ONNX runtime gives the same probabilities:

    input  "images"         float32 N×H×W×C, values 0–1 (uint8 pixels / 255), any N
    output "probabilities"  float32 N×classes

inside: N×H×W×C → N×C×H×W, the training set's normalisation, the network, the mirror's vote when
the model was trained with test-time flips, and the softmax. Checkpoints of either engine export.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

from . import checkpoint
from .errors import UserError
from .files import atomic_file


def export_onnx(model_dir: str, path: Path, opset: int | None = None) -> dict:
    import torch

    net, meta = checkpoint.load(model_dir, engine="torch")
    sequential = net.engine.model.float().eval()
    mean, std = net.normalization or ((0.0,) * net.input_shape[2], (1.0,) * net.input_shape[2])

    class Deployed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = sequential
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

        def forward(self, images):  # N×H×W×C in [0, 1]
            x = (images.permute(0, 3, 1, 2) - self.mean) / self.std
            logits = self.net(x)
            if net.tta:
                logits = (logits + self.net(x.flip(3))) / 2
            return torch.softmax(logits, dim=1)

    h, w, c = net.input_shape
    example = torch.rand(2, h, w, c)
    batch = torch.export.Dim("n", min=1, max=1 << 20)
    chatter = io.StringIO()  # the exporter reports its progress; we print one line instead
    # and its logger notes torchvision operators it skips, which no convnet network uses
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with atomic_file(path) as temporary, contextlib.redirect_stdout(chatter), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Deployed().eval(), (example,), str(temporary),
                              input_names=["images"], output_names=["probabilities"],
                              dynamic_shapes={"images": {0: batch}}, opset_version=opset,
                              verbose=False)
    except Exception as e:  # noqa: BLE001 - the exporter's own words are the best explanation
        raise UserError(f"ONNX export of {meta['description']} failed: "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return {"path": str(path), "input": [None, h, w, c], "classes": list(meta["classes"])}
