"""Starting weights beyond random draws (both are tricks of the fastest CIFAR-10 recipes):

    --whiten          the first conv layer's filters whiten the images' patches: the
                      eigenvectors of the patches' covariance, each scaled by 1/√(eigenvalue),
                      and their negatives (so that a ReLU after lets both signs through) —
                      the layer starts out seeing every direction of the data equally
    --identity-init   a conv from C channels to C channels starts as the identity (its centre
                      tap 1 on its own channel) plus its random draw, so a deep stack starts
                      out passing its input through

Both change a network's state through Network.load_state_dict, so they work on either engine.
"""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .spec import Conv

PATCHES = 10_000  # patches drawn to estimate the covariance
CHUNK = 256  # images read at a time to cut them from
FIRST = 20_000  # the patches come from the first images only
EPSILON = 5e-4  # added to the eigenvalues: the smallest directions are mostly noise


def first_conv(net):
    """The LayerShape of the network's first layer, if it is a conv; else a UserError."""
    first = net.shapes[0]
    if not isinstance(first.layer, Conv):
        raise UserError(f"--whiten sets the first layer's filters, but the first layer is "
                        f"{first.layer.to_text()}, not a conv")
    return first


def can_whiten(network, shape: tuple[int, ...]) -> bool:
    """Whether whitening can start this network (a Spec) on H×W×C images: its first layer a
    conv whose kernel fits in them (the patches it whitens are kernel-sized pieces of them)."""
    first = network.layers[0] if network.layers else None
    return isinstance(first, Conv) and first.kernel[0] <= shape[0] and first.kernel[1] <= shape[1]


def patches(images, kh: int, kw: int, count: int, seed: int,
            first: int | None = None) -> np.ndarray:
    """`count` random kh×kw×C patches of N×H×W×C images (of the `first` images only, when
    given), flattened (count × kh·kw·C), in the images' own type. `images` may be a memory map
    or a data set's rows: only the images the patches come from are read, CHUNK at a time, so a
    folder larger than memory whitens too."""
    n, h, w, c = images.shape
    n = n if first is None else min(n, first)
    rng = np.random.default_rng([seed, 7])
    which = rng.integers(0, n, count)
    ys = rng.integers(0, h - kh + 1, count)
    xs = rng.integers(0, w - kw + 1, count)
    out = np.empty((count, kh, kw, c), images.dtype)
    order = np.argsort(which, kind="stable")  # the images in file order
    for start in range(0, count, CHUNK):
        part = order[start:start + CHUNK]
        chosen = np.unique(which[part])
        read = images[chosen]  # at most CHUNK images
        local = np.searchsorted(chosen, which[part])
        rows = ys[part, None] + np.arange(kh)[None, :]
        cols = xs[part, None] + np.arange(kw)[None, :]
        out[part] = read[local[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(count, -1)


def whitening_filters(net, images, seed: int = 0) -> np.ndarray:
    """K×C×kh×kw filters for the first conv layer that whiten the (normalised) images'
    patches; where K is more than twice the patch size, the rest keep their random draw. The
    patches come from the first FIRST images."""
    info = first_conv(net)
    kh, kw = info.layer.kernel
    k = info.output[2]
    h, w, c = info.input
    if not can_whiten(net.spec, info.input):
        raise UserError(f"--whiten cuts {kh}×{kw} patches out of the images for the first "
                        f"layer's filters, but the images are {h}×{w}")
    if not hasattr(images, "shape"):
        images = np.asarray(images)
    net.prepare_images(images[:1])  # the images' shape and type are the network's
    if len(images.shape) == 3:  # N×H×W grey images
        images = np.asarray(images)[..., None]
    cut = patches(images, kh, kw, PATCHES, seed, first=FIRST)
    # normalised as prepare_images normalises whole images (per channel, the same arithmetic)
    x = net.scale_images(cut.reshape(PATCHES, kh, kw, c)).reshape(PATCHES, -1)
    x = x.astype(np.float64)
    x -= x.mean(axis=0)
    covariance = x.T @ x / len(x)
    values, vectors = np.linalg.eigh(covariance)  # ascending
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    half = min(k // 2, vectors.shape[1])
    scaled = (vectors[:, :half] / np.sqrt(values[:half] + EPSILON)).T  # half × (kh·kw·C)
    filters = np.concatenate([scaled, -scaled])  # both signs: a ReLU keeps one of each pair
    current = np.asarray(net.state_dict()[f"{info.name}.weight"])
    out = current.astype(np.float64)
    made = filters.reshape(len(filters), kh, kw, c).transpose(0, 3, 1, 2)
    out[:len(made)] = made
    return out.astype(current.dtype)  # the network's own type


def whiten(net, images: np.ndarray, seed: int = 0) -> None:
    """Set the first conv layer's filters to whitening_filters (and its bias to 0)."""
    info = first_conv(net)
    state = net.state_dict()
    state[f"{info.name}.weight"] = whitening_filters(net, images, seed)
    if f"{info.name}.bias" in state:
        state[f"{info.name}.bias"] = np.zeros_like(state[f"{info.name}.bias"])
    net.load_state_dict(state)


def identity_init(net) -> int:
    """Add the identity to every conv from C to C channels with an odd kernel (after the
    first layer); returns how many were changed."""
    state = net.state_dict()
    changed = 0
    for top in net.shapes:
        for row in top.walk():
            layer = row.layer
            if not isinstance(layer, Conv) or row.name == net.shapes[0].name:
                continue
            kh, kw = layer.kernel
            c_in, c_out = row.input[2], row.output[2]
            if c_in != c_out or kh % 2 == 0 or kw % 2 == 0:
                continue
            weight = state[f"{row.name}.weight"]
            weight[np.arange(c_out), np.arange(c_in), kh // 2, kw // 2] += 1.0
            changed += 1
    if changed:
        net.load_state_dict(state)
    return changed
