"""The from-scratch NumPy engine: every layer of the lecture, forward beside backward.

Arrays are N×H×W×C (the lecture's HxWxC, batch first); weights are kept in PyTorch's layouts so
a state dict loads unchanged into the equivalent `torch.nn.Sequential`.
"""

from .model import NumpyModel

__all__ = ["NumpyModel"]
