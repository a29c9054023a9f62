"""Evaluation of a trained model on a data set: accuracy, per-class precision and recall, and
the confusion matrix (rows: true class, columns: predicted class)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .network import Network, log_softmax


@dataclass
class Report:
    accuracy: float
    loss: float
    classes: list[str]
    confusion: np.ndarray  # K×K counts
    images: int
    predicted: np.ndarray  # each image's predicted class
    confidence: np.ndarray  # the probability it gave that class
    views: str = ""  # how a prediction was made, where more than the image alone voted

    @property
    def precision(self) -> np.ndarray:
        predicted = self.confusion.sum(axis=0)
        return np.divide(np.diag(self.confusion), predicted, out=np.full(len(predicted), np.nan),
                         where=predicted > 0)

    @property
    def recall(self) -> np.ndarray:
        true = self.confusion.sum(axis=1)
        return np.divide(np.diag(self.confusion), true, out=np.full(len(true), np.nan),
                         where=true > 0)

    def to_json(self) -> dict:
        def number(v: float) -> float | None:
            return None if np.isnan(v) else float(v)
        return {
            "accuracy": self.accuracy, "loss": self.loss, "images": self.images,
            "classes": [{"class": c, "precision": number(p), "recall": number(r),
                         "support": int(s)}
                        for c, p, r, s in zip(self.classes, self.precision, self.recall,
                                              self.confusion.sum(axis=1))],
            "confusion": self.confusion.tolist(),
            "views": self.views or None,
        }

    def text(self) -> str:
        width = max(len("class"), *(len(c) for c in self.classes))
        lines = [f"accuracy {self.accuracy:.2%} on {self.images:,} images (loss {self.loss:.4f})",
                 *([self.views] if self.views else []),
                 "", f"{'class':<{width}}  precision   recall  images"]
        for c, p, r, s in zip(self.classes, self.precision, self.recall,
                              self.confusion.sum(axis=1)):
            p_text = "–" if np.isnan(p) else f"{p:.2%}"
            r_text = "–" if np.isnan(r) else f"{r:.2%}"
            lines.append(f"{c:<{width}}  {p_text:>9}  {r_text:>7}  {s:6,}")
        return "\n".join(lines)


def evaluate(net: Network, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> Report:
    return report(net.logits(images), labels, classes, net.views())


def report(logits: np.ndarray, labels: np.ndarray, classes: list[str], views: str = ""
           ) -> Report:
    """The report of scores already computed (N×classes logits, or log-probabilities); `views`:
    how they were made, where more than the image alone voted (Network.views)."""
    log_probs = log_softmax(logits)
    predicted = logits.argmax(axis=1)
    k = len(classes)
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    confidence = np.exp(log_probs[np.arange(len(labels)), predicted])
    return Report(float((predicted == labels).mean()),
                  -float(log_probs[np.arange(len(labels)), labels].mean()), classes, confusion,
                  len(labels), predicted, confidence, views)


def data_for(model_meta: dict, input_shape: tuple[int, int, int], name: str | None = None,
             data_dir: str | None = None):
    """The data set to evaluate a model on — `name`, or the one it was trained on — checked
    against the model: the same image shape and the same classes, in the same order."""
    from .data import load_dataset

    name = name or model_meta.get("training", {}).get("data")
    if not name:
        raise UserError("this model does not say which data it was trained on; give --data")
    data = load_dataset(name, data_dir, shape=input_shape, seed=0)
    if data.shape != tuple(input_shape):
        raise UserError(f"the model takes {'x'.join(map(str, input_shape))} images but "
                        f"{data.name}'s are {'x'.join(map(str, data.shape))}")
    classes = list(model_meta["classes"])
    if list(data.classes) != classes:
        raise UserError(f"{data.name}'s classes ({', '.join(data.classes)}) are not the model's "
                        f"({', '.join(classes)})")
    return data
