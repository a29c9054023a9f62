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
EPSILON = 5e-4  # added to the eigenvalues: the smallest directions are mostly noise


def first_conv(net):
    """The LayerShape of the network's first layer, if it is a conv; else a UserError."""
    first = net.shapes[0]
    if not isinstance(first.layer, Conv):
        raise UserError(f"--whiten sets the first layer's filters, but the first layer is "
                        f"{first.layer.to_text()}, not a conv")
    return first


def patches(images: np.ndarray, kh: int, kw: int, count: int, seed: int) -> np.ndarray:
    """`count` random kh×kw×C patches of N×H×W×C images, flattened (count × kh·kw·C)."""
    n, h, w, c = images.shape
    rng = np.random.default_rng([seed, 7])
    which = rng.integers(0, n, count)
    ys = rng.integers(0, h - kh + 1, count)
    xs = rng.integers(0, w - kw + 1, count)
    rows = ys[:, None] + np.arange(kh)[None, :]
    cols = xs[:, None] + np.arange(kw)[None, :]
    cut = images[which[:, None, None], rows[:, :, None], cols[:, None, :]]  # count×kh×kw×C
    return cut.reshape(count, -1)


def whitening_filters(net, images: np.ndarray, seed: int = 0) -> np.ndarray:
    """K×C×kh×kw filters for the first conv layer that whiten the (normalised) images'
    patches; where K is more than twice the patch size, the rest keep their random draw."""
    info = first_conv(net)
    kh, kw = info.layer.kernel
    k = info.output[2]
    prepared = net.prepare_images(np.asarray(images[:min(len(images), 20_000)]))
    x = patches(prepared.astype(np.float64), kh, kw, PATCHES, seed)
    x -= x.mean(axis=0)
    covariance = x.T @ x / len(x)
    values, vectors = np.linalg.eigh(covariance)  # ascending
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    c = info.input[2]
    half = min(k // 2, vectors.shape[1])
    scaled = (vectors[:, :half] / np.sqrt(values[:half] + EPSILON)).T  # half × (kh·kw·C)
    filters = np.concatenate([scaled, -scaled])  # both signs: a ReLU keeps one of each pair
    current = np.array(net.state_dict()[f"{info.name}.weight"], dtype=np.float64)
    out = current.copy()
    made = filters.reshape(len(filters), kh, kw, c).transpose(0, 3, 1, 2)
    out[:len(made)] = made
    return out.astype(current.dtype)


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
