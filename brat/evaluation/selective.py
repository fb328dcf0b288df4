"""Knowing when not to answer, measured: prediction-set coverage, answered share and accuracy,
the risk-coverage curve and how well each score tells wrong predictions from right ones."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from brat.inference.verdict import answered

# Shares answered at which the risk-coverage curve is read.
CURVE_SHARES = tuple(round(s, 2) for s in np.linspace(0.05, 1.0, 20))
READ_AT = 0.8  # the share answered whose accuracy the summary reports


@dataclass(frozen=True)
class Selective:
    n: int
    error_rate: float | None  # the prediction sets' error rate; None without sets
    coverage: float | None  # share of scans whose true class lies in the set
    mean_set_size: float | None
    per_class: dict[str, dict]  # true class -> n, coverage, mean set size
    answered: float  # share of scans the verdict rules answer with a class
    answered_accuracy: float | None  # accuracy of those
    unfamiliar: float | None  # share of scans flagged unlike the training scans
    error_auroc: dict[str, float | None]  # score -> ROC AUC for telling wrong from right
    accuracy_at: dict[str, float | None]  # score -> accuracy of the READ_AT surest scans
    curves: dict[str, list[dict]]  # score -> [{answered, accuracy}] along CURVE_SHARES

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Selective:
        return cls(**data)


def selective_metrics(
    truth: np.ndarray,
    probabilities: np.ndarray,
    classes: tuple[str, ...] | list[str],
    *,
    sets: np.ndarray | None = None,
    error_rate: float | None = None,
    familiarity: np.ndarray | None = None,
    familiar: np.ndarray | None = None,
    in_distribution: np.ndarray | None = None,
) -> Selective:
    """Every measure of answering and abstaining for scans with true class indices `truth`."""
    truth = np.asarray(truth)
    probabilities = np.asarray(probabilities)
    n = len(truth)
    right = probabilities.argmax(axis=1) == truth
    chosen = answered(probabilities, sets, in_distribution, familiar)
    scores = {"max_probability": 1.0 - probabilities.max(axis=1)}
    if familiarity is not None:
        scores["unfamiliar"] = np.asarray(familiarity, np.float64)
    covered = sets[np.arange(n), truth] if sets is not None else None
    size = sets.sum(axis=1) if sets is not None else None
    per_class = {}
    for index, name in enumerate(classes):
        members = truth == index
        if members.any():
            per_class[name] = {
                "n": int(members.sum()),
                "coverage": _mean(covered[members]) if covered is not None else None,
                "mean_set_size": _mean(size[members]) if size is not None else None,
            }
    return Selective(
        n=n,
        error_rate=error_rate if sets is not None else None,
        coverage=_mean(covered) if covered is not None else None,
        mean_set_size=_mean(size) if size is not None else None,
        per_class=per_class,
        answered=_mean(chosen),
        answered_accuracy=_mean(right[chosen]) if chosen.any() else None,
        unfamiliar=_mean(~np.asarray(familiar, bool)) if familiar is not None else None,
        error_auroc={name: error_auroc(right, score) for name, score in scores.items()},
        accuracy_at={
            name: accuracy_answering(right, score, READ_AT) for name, score in scores.items()
        },
        curves={
            name: [
                {"answered": share, "accuracy": accuracy_answering(right, score, share)}
                for share in CURVE_SHARES
            ]
            for name, score in scores.items()
        },
    )


def selective_of(
    classifier, truth: np.ndarray, outputs, chosen: np.ndarray | None = None
) -> Selective:
    """`selective_metrics` of the scans `chosen` (a mask; default all) of a batch's
    `brat.inference.classifier.Outputs` through a classifier's checks."""

    def part(values):
        return values if values is None or chosen is None else values[chosen]

    return selective_metrics(
        truth,
        part(outputs.probabilities),
        classifier.classes,
        sets=part(outputs.sets),
        error_rate=outputs.error_rate,
        familiarity=part(outputs.familiarity_scores),
        familiar=part(outputs.familiar),
        in_distribution=part(outputs.in_distribution),
    )


def error_auroc(right: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of `score` (higher = less to be trusted) for telling wrong predictions from right;
    None when all are right or all wrong."""
    from sklearn.metrics import roc_auc_score

    wrong = ~np.asarray(right, bool)
    if wrong.all() or not wrong.any():
        return None
    return round(float(roc_auc_score(wrong, score)), 4)


def accuracy_answering(right: np.ndarray, score: np.ndarray, share: float) -> float | None:
    """Accuracy of the `share` of scans with the lowest `score` (the ones answered first)."""
    count = round(share * len(right))
    if count == 0:
        return None
    order = np.argsort(score, kind="stable")[:count]
    return _mean(np.asarray(right)[order])


def _mean(values: np.ndarray) -> float:
    return round(float(np.mean(values)), 4)


def selective_text(s: Selective) -> str:
    """One line: set coverage and size, share answered and its accuracy, the error-detection
    AUROCs."""
    parts = []
    if s.coverage is not None:
        parts.append(
            f"sets at {s.error_rate:.0%} error: coverage {s.coverage:.4f}, "
            f"mean size {s.mean_set_size:.3f}"
        )
    accuracy = "-" if s.answered_accuracy is None else f"{s.answered_accuracy:.4f}"
    parts.append(f"answered {s.answered:.4f} at accuracy {accuracy}")
    if s.unfamiliar is not None:
        parts.append(f"unfamiliar {s.unfamiliar:.4f}")
    aurocs = ", ".join(
        f"{name} {value:.4f}" if value is not None else f"{name} -"
        for name, value in s.error_auroc.items()
    )
    return "; ".join(parts) + f"; error AUROC {aurocs}"


def selective_rows(by_key: dict[str, Selective]) -> list[dict]:
    """One row per source (or any key) for tables and the model card."""
    return [
        {
            "source": key,
            "n": s.n,
            "coverage": s.coverage,
            "mean set size": s.mean_set_size,
            "answered": s.answered,
            "accuracy answered": s.answered_accuracy,
            "unfamiliar": s.unfamiliar,
            **{f"error AUROC {name}": value for name, value in s.error_auroc.items()},
        }
        for key, s in by_key.items()
    ]
