"""Classification metrics from true labels and predicted probabilities.

scikit-learn computes the standard ones; this module adds what it lacks: the Wilson interval of an
accuracy, the expected calibration error, the accuracy on tumour classes alone, and temperature
scaling.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from brat.labels import CLASSES, TUMOUR_CLASSES

# 15 equal-width confidence bins, as in Guo et al. 2017, "On Calibration of Modern Neural Networks".
ECE_BINS = 15


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def reliability_bins(probabilities: np.ndarray, truth: np.ndarray) -> list[dict]:
    """The non-empty equal-width confidence bins: their range, size, mean confidence and accuracy
    (the points of a reliability diagram)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(truth)
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    return [
        {
            "low": b / ECE_BINS,
            "high": (b + 1) / ECE_BINS,
            "n": int(inside.sum()),
            "confidence": float(confidence[inside].mean()),
            "accuracy": float(correct[inside].mean()),
        }
        for b in range(ECE_BINS)
        if (inside := bins == b).any()
    ]


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    if len(truth) == 0:
        return 0.0
    bins = reliability_bins(probabilities, truth)
    return float(sum(b["n"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / len(truth))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = np.asarray(logits, np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T).

    A golden-section search on log T over [1/20, 20]: the NLL is unimodal in T, one parameter
    needs no gradient machinery, and the result is deterministic.
    """
    if len(truth) == 0:
        return 1.0
    rows = np.arange(len(truth))

    def nll(log_t: float) -> float:
        return float(-np.log(softmax(logits, math.exp(log_t))[rows, truth] + 1e-12).mean())

    low, high = math.log(1 / 20), math.log(20)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(b)
    return round(math.exp((low + high) / 2), 4)


@dataclass(frozen=True)
class Metrics:
    """How well probabilities match the truth: `classification_metrics`' result."""

    n: int
    accuracy: float
    accuracy_ci95: list[float]  # Wilson 95% interval
    tumour_accuracy: float  # on the images of the three tumour classes
    tumour_accuracy_ci95: list[float]
    tumour_n: int
    macro_f1: float
    per_class: dict[str, dict]  # class -> precision, recall, f1, support
    confusion_matrix: list[list[int]]  # rows: truth, columns: prediction
    ece: float  # expected calibration error of the probabilities given
    ece_uncalibrated: float | None = None  # the same before temperature scaling, when known

    def to_json(self) -> dict:
        data = asdict(self)
        if self.ece_uncalibrated is None:
            del data["ece_uncalibrated"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Metrics:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def classification_metrics(
    truth: np.ndarray,
    probabilities: np.ndarray,
    classes: tuple[str, ...] = CLASSES,
    *,
    ece_uncalibrated: float | None = None,
) -> Metrics:
    """n, accuracy + Wilson 95% interval, tumour-only accuracy, per-class P/R/F1, macro-F1,
    confusion matrix (rows: truth, columns: prediction) and ECE.

    The tumour-only accuracy is the share of images of a tumour class (glioma, meningioma,
    pituitary) given their exact class; calling a tumour no_tumor counts as wrong.
    """
    # scikit-learn takes seconds to import: only when metrics are computed.
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    truth = np.asarray(truth, int)
    predicted = probabilities.argmax(axis=1)
    labels = list(range(len(classes)))
    n = len(truth)
    correct = int((predicted == truth).sum())
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    tumour = np.isin(truth, [classes.index(c) for c in TUMOUR_CLASSES if c in classes])
    tumour_correct = int((predicted[tumour] == truth[tumour]).sum())
    present = support > 0
    return Metrics(
        n=n,
        accuracy=float(accuracy_score(truth, predicted)) if n else 0.0,
        accuracy_ci95=list(wilson_interval(correct, n)),
        tumour_accuracy=tumour_correct / int(tumour.sum()) if tumour.any() else 0.0,
        tumour_accuracy_ci95=list(wilson_interval(tumour_correct, int(tumour.sum()))),
        tumour_n=int(tumour.sum()),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class={
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        confusion_matrix=confusion_matrix(truth, predicted, labels=labels).tolist(),
        ece=expected_calibration_error(probabilities, truth),
        ece_uncalibrated=ece_uncalibrated,
    )
