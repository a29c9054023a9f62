"""The from-scratch NumPy engine: every layer of the lecture, forward beside backward.

Inside the engine, a batch of activation volumes is stored C×H×W×N — the lecture's H×W×C
volumes with the batch as the innermost axis — and a batch of vectors D×N. Why: every window
operation (im2col, pooling, col2im) then reads and writes runs of N (or W·N) contiguous values
instead of runs of C, which is what makes NumPy fast here; and a conv's matrix product
W (K × F·F·C) @ cols (F·F·C × Ho·Wo·N) lands directly in that layout for the next layer.
`Network` converts from and to the user's N×H×W×C at the edges.

Weights are kept in PyTorch's layouts, so a state dict loads unchanged into nn.Sequential.
"""

from .model import NumpyModel

__all__ = ["NumpyModel"]
