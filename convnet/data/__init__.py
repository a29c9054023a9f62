"""Data sets as N×H×W×C uint8 arrays with labels and class names.

    from convnet.data import load_dataset
    data = load_dataset("fashion-mnist")          # or "mnist", "cifar10", or a folder path
    data.train.images, data.train.labels, data.classes
"""

from .dataset import Dataset, Split
from .sources import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "Split", "load_dataset"]
