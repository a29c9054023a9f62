"""The engines that run a parsed network: `numpy` (from scratch) and `torch` (PyTorch)."""
