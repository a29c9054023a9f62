"""Looking inside a trained network: every layer's activation maps for one image, and the
learned filters. Computed with the NumPy engine, whichever engine trained the model (every
checkpoint loads into it), because it hands back each layer's output as it goes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .network import Network, log_softmax
from .shapes import LayerShape, format_shape
from .spec import Conv, layer_to_string


@dataclass(frozen=True)
class LayerView:
    index: int
    text: str  # the layer as written, e.g. conv(6,5)
    shape: tuple[int, ...]  # H×W×C or D
    values: np.ndarray  # the activations for the image, in that shape
    label: str = ""  # the text a title shows (a block's: how many layers it holds)
    name: str = ""  # its state-name path: "3", or "3.inner.0" inside a block
    paths: tuple[tuple[str, tuple["LayerView", ...]], ...] = ()  # a block's layers' views

    def walk(self):
        """This view, then every view inside it, depth first."""
        yield self
        for _, views in self.paths:
            for view in views:
                yield from view.walk()

    @property
    def title(self) -> str:
        return f"{self.index} {self.label or self.text} → {format_shape(self.shape)}"


def as_numpy_network(net: Network) -> Network:
    """The same network and weights on the NumPy engine (itself if it already is)."""
    if net.engine.name == "numpy":
        return net
    twin = Network(net.spec, engine="numpy", normalization=net.normalization, tta=False)
    twin.load_state_dict(net.state_dict())
    return twin


def activations(net: Network, image: np.ndarray, voter=None) -> list[LayerView]:
    """Every layer's output for one H×W×C image (uint8 or float), the softmax's included.
    With `voter` (an ensemble of which `net` is a member) the last view holds the ensemble's
    probabilities, since the answer is the ensemble's."""
    numpy_net = as_numpy_network(net)
    batch = numpy_net.prepare_images(image[None])
    outputs = numpy_net.engine.model.activations(batch)
    views = _views(numpy_net.shapes, outputs)
    if views[-1].values is None or voter is not None:  # the softmax: from the logits before it
        last = views[-1]
        probabilities = voter.predict(image[None])[0] if voter is not None else \
            np.exp(log_softmax(views[-2].values[None].astype(np.float64)))[0]
        views[-1] = LayerView(last.index, last.text, last.shape, probabilities, last.label,
                              last.name)
    return views


def _views(shapes: list[LayerShape], outputs: list) -> list[LayerView]:
    views = []
    for info, (out, paths) in zip(shapes, outputs):
        inside = tuple((name, tuple(_views(list(rows), paths[name])))
                       for name, rows in info.paths)
        views.append(LayerView(info.index, layer_to_string(info.layer), info.output,
                               None if out is None else out[0], info.layer.short_text(),
                               info.name, inside))
    return views


def find(views: list[LayerView], name: str) -> LayerView:
    """The view of the layer named `name` ("7", "3.inner.0"), at any depth."""
    for top in views:
        for view in top.walk():
            if view.name == name:
                return view
    raise UserError(f"no layer {name!r}; the layers are 0 to {len(views) - 1}")


def inputs_of(views: list[LayerView], image: np.ndarray) -> dict[str, np.ndarray]:
    """Each layer's input by its name: the image (prepared) for the first, the layer before's
    output, or the block's input for a block's first layers."""
    found: dict[str, np.ndarray] = {}

    def walk(sequence, given: np.ndarray) -> None:
        current = given
        for view in sequence:
            found[view.name] = current
            for _, inside in view.paths:
                walk(inside, current)
            current = view.values
    walk(views, image)
    return found


def pick_layers(shapes: list[LayerShape], wanted: list[str] | None) -> set[int]:
    """Layer indices from --layer values: numbers, or names such as conv or relu."""
    if not wanted:
        return {s.index for s in shapes}
    chosen: set[int] = set()
    for item in wanted:
        for part in item.split(","):
            part = part.strip()
            if part.isdigit():
                if int(part) >= len(shapes):
                    raise UserError(f"--layer {part}: the network has layers 0 to "
                                    f"{len(shapes) - 1}")
                chosen.add(int(part))
                continue
            matches = {s.index for s in shapes if layer_to_string(s.layer).split("(")[0] == part}
            if not matches:
                names = sorted({layer_to_string(s.layer).split("(")[0] for s in shapes})
                raise UserError(f"--layer {part!r} matches no layer; use a number or one of "
                                f"{', '.join(names)}")
            chosen |= matches
    return chosen


def conv_filters(net: Network) -> list[tuple[LayerShape, np.ndarray]]:
    """Each conv layer and its weight, K×C×kh×kw."""
    state = net.state_dict()
    return [(s, state[f"{s.index}.weight"]) for s in net.shapes if isinstance(s.layer, Conv)]
