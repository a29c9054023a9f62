"""convnet: the ConvNet of lecture 11 (모두의 딥러닝) — describe, inspect, train, look inside."""

__version__ = "0.1.0"

from .cpu import prefer_blas_kernels  # noqa: E402

prefer_blas_kernels()  # before anything imports NumPy: OpenBLAS picks its kernels as it loads

from .errors import UserError  # noqa: E402
from .spec import Spec, parse  # noqa: E402
from .network import Network  # noqa: E402
from .api import fit, load, predict_files, read_images  # noqa: E402

__all__ = ["Network", "Spec", "UserError", "fit", "load", "parse", "predict_files", "read_images",
           "__version__"]
