"""The PyTorch engine: the description built as nn.Sequential (build.py), trained and run on
the CPU or a CUDA GPU behind the same interface as the NumPy engine (engine.py)."""
