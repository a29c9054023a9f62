"""`convnet export DIR --onnx FILE`: a trained model as ONNX, the format the world deploys.

The graph does what `predict` does, so any ONNX runtime gives the same probabilities:

    input  "images"         float32 N×H×W×C, values 0–1 (uint8 pixels / 255), any N
    output "probabilities"  float32 N×classes

inside: N×H×W×C → N×C×H×W, the training set's normalisation, the network, the mirror's vote when
the model was trained with test-time flips, and the softmax. Checkpoints of either engine export,
and so does a saved ensemble: its members side by side, combined as the ensemble combines them.

PyTorch's exporter writes its own opset and converts down to the one asked for; when that
conversion fails it quietly keeps its own. convnet checks the file's opset, and when it is not the
one asked for, exports the layers one by one to say which layer the opset cannot express.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

from . import checkpoint
from .errors import UserError, first_line
from .files import atomic_file


def _member_module(net):
    """One trained network as a module: N×H×W×C images in [0, 1] → logits."""
    import torch

    sequential = net.engine.model.float().eval()
    channels = net.input_shape[2]
    mean, std = net.normalization or ((0.0,) * channels, (1.0,) * channels)

    class Member(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = sequential
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
            self.tta = bool(net.tta)

        def forward(self, images):
            x = (images.permute(0, 3, 1, 2) - self.mean) / self.std
            logits = self.net(x)
            if self.tta:  # the mirror image votes too
                logits = (logits + self.net(x.flip(3))) / 2
            return logits

    return Member()


def _deployed_module(members: list, combine: str):
    """Images → probabilities: one network's softmax, or an ensemble's combination."""
    import torch

    class Deployed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, images):
            scores = [member(images) for member in self.members]
            if len(scores) == 1:
                return torch.softmax(scores[0], dim=1)
            if combine == "logits":  # the lab code's sum of logits
                return torch.softmax(torch.stack(scores).sum(0), dim=1)
            return torch.stack([torch.softmax(s, dim=1) for s in scores]).mean(0)

    return Deployed().eval()


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter and the ONNX version converter print progress, warnings and, when a
    conversion fails, a traceback they then ignore; convnet says one line instead."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export(module, example, path: Path, opset: int | None) -> None:
    import torch

    batch = torch.export.Dim("n", min=1, max=1 << 20)
    torch.onnx.export(module, (example,), str(path), input_names=["images"],
                      output_names=["probabilities"], dynamic_shapes=({0: batch},),
                      opset_version=opset, verbose=False)


def _opset(model) -> int:
    return max(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def _opset_of(path: Path) -> int:
    import onnx

    return _opset(onnx.load(str(path), load_external_data=False))


def _layer_that_cannot(net, opset: int | None, scratch: Path) -> str | None:
    """Exports each layer alone; the first one the opset can't express, as 'layer i text'."""
    import torch

    from .shapes import infer
    from .spec import layer_to_string

    sequential = net.engine.model.float().eval()
    for info, module in zip(infer(net.spec, net.input_shape), sequential):
        shape = info.input if len(info.input) == 1 else (info.input[2], *info.input[:2])
        target = scratch / f"layer{info.index}.onnx"
        try:
            _export(module, torch.rand(2, *shape), target, opset)
            reached, reason = opset is None or _opset_of(target) == opset, ""
        except Exception as failure:  # noqa: BLE001 - the exporter's words explain it
            reached, reason = False, f" ({first_line(failure)})"
        finally:
            target.unlink(missing_ok=True)
        if not reached:
            return f"layer {info.index} {layer_to_string(info.layer)}{reason}"
    return None


def export_onnx(model_dir: str, path: Path, opset: int | None = None) -> dict[str, Any]:
    import torch

    loaded, meta = checkpoint.open_model(model_dir, engine="torch")
    networks = list(getattr(loaded, "members", [loaded]))  # an ensemble's, or the one network
    deployed = _deployed_module([_member_module(n) for n in networks],
                                meta.get("combine", "softmax"))
    import onnx.defs

    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not 7 <= opset <= newest:
        raise UserError(f"--opset {opset}: this ONNX writes opsets 7 to {newest}")
    h, w, c = loaded.input_shape
    example = torch.rand(2, h, w, c)
    description = meta.get("description") or f"an ensemble of {len(networks)} models"
    import tempfile

    import onnx

    # The exporter may put the weights in a side file named after its target; exporting into a
    # scratch folder and saving one self-contained file keeps the result whole and atomic.
    with tempfile.TemporaryDirectory(prefix="convnet-onnx-") as scratch, _quiet_exporter():
        staged = Path(scratch) / "model.onnx"
        try:
            _export(deployed, example, staged, opset)
            model = onnx.load(str(staged))
        except Exception as failure:  # noqa: BLE001
            culprit = _culprit(networks, opset)
            raise UserError(f"ONNX export of {description} failed"
                            + (f" at {culprit}" if culprit else "")
                            + f": {first_line(failure)}") from None
        written = _opset(model)
        if opset is not None and written != opset:
            culprit = _culprit(networks, opset)
            raise UserError(f"ONNX opset {opset} cannot express "
                            + (culprit or "the layout change, normalisation or softmax around "
                                          "the layers")
                            + f": the exporter wrote opset {written} and could not convert it; "
                            f"leave --opset out or try a newer one")
        with atomic_file(path) as temporary:
            onnx.save_model(model, str(temporary))
    return {"path": str(path), "input": [None, h, w, c], "classes": list(meta["classes"]),
            "opset": written}


def _culprit(networks: list, opset: int | None) -> str | None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="convnet-onnx-") as scratch:
        for i, net in enumerate(networks):
            found = _layer_that_cannot(net, opset, Path(scratch))
            if found:
                return found if len(networks) == 1 else f"member {i}'s {found}"
    return None
