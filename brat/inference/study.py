"""One verdict for a study: every slice classified in batches, then one rule over the slices.

The rule (chosen by measurement, docs/studies.md): the study's probabilities are the mean of the
calibrated probabilities of its slices that pass the not-a-brain-MRI check (all slices when none
does). Its prediction set is the conformal set of those probabilities at the error rate asked,
calibrated on single slices: for a study it is a rule, not a guarantee. The verdict follows
`brat.inference.verdict.decide`: "not a brain MRI" when no slice passes the check, "uncertain"
when the set holds several classes or most of the slices are unlike the training scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brat.data.preprocess import prepare_slice
from brat.data.studies import Study
from brat.inference.conformal import ERROR_RATE
from brat.inference.verdict import decide

BATCH_SIZE = 64
RULES = ("mean", "log-mean", "vote")


@dataclass(frozen=True)
class StudyResult:
    """A study's verdict, and the per-slice evidence behind it."""

    name: str
    kind: str
    slices: int  # analysed
    skipped: int  # left out as outside the head
    label: str
    verdict: str
    reasons: list[str]
    probabilities: dict[str, float]
    prediction_set: list[str] | None
    error_rate: float
    slice_probabilities: np.ndarray = field(repr=False)  # (slices, classes), calibrated
    slice_in_distribution: np.ndarray = field(repr=False)  # (slices,) bool
    indices: list[int] = field(default_factory=list)  # each slice's index in the volume
    left_out: str | None = None  # files not read into the study, in words (`Study.left_out`)

    @property
    def strongest_slice(self) -> int:
        """The position (in `slice_probabilities`) of the slice surest of the study's class."""
        column = list(self.probabilities).index(self.label)
        return int(self.slice_probabilities[:, column].argmax())

    def to_json(self) -> dict:
        classes = list(self.probabilities)
        return {
            "study": self.name,
            "kind": self.kind,
            "slices": self.slices,
            "skipped_outside_head": self.skipped,
            "left_out": self.left_out,
            "verdict": self.verdict,
            "label": self.label,
            "reasons": self.reasons,
            "probabilities": {c: round(p, 6) for c, p in self.probabilities.items()},
            "prediction_set": self.prediction_set,
            "error_rate": self.error_rate,
            "strongest_slice": self.indices[self.strongest_slice],
            "per_slice": [
                {
                    "index": index,
                    "in_distribution": bool(inside),
                    **{c: round(float(p), 6) for c, p in zip(classes, row, strict=True)},
                }
                for index, row, inside in zip(
                    self.indices,
                    self.slice_probabilities,
                    self.slice_in_distribution,
                    strict=True,
                )
            ],
        }


def analyze_study(study: Study, explainer, error_rate: float = ERROR_RATE) -> StudyResult:
    """Classify every slice of `study` with `explainer` (`brat.inference.analysis.explainer_for`)
    and apply the study rule (module docstring)."""
    classifier = explainer.classifier
    size = classifier.image_size
    prepared = np.stack([prepare_slice(pixels, size)[0] for pixels in study.slices])
    parts = [
        classifier.checked(*explainer.forward(prepared[i : i + BATCH_SIZE]), error_rate=error_rate)
        for i in range(0, len(prepared), BATCH_SIZE)
    ]
    probabilities = np.concatenate([p.probabilities for p in parts])
    inside = _joined([p.in_distribution for p in parts], len(probabilities), True)
    familiar = _joined([p.familiar for p in parts], len(probabilities), True)
    chosen = inside if inside.any() else np.ones_like(inside)
    study_probabilities = combined(probabilities, inside, "mean")
    label = classifier.classes[int(study_probabilities.argmax())]
    prediction_set = None
    if classifier.conformal is not None:
        members = classifier.conformal.sets(study_probabilities[None], error_rate)[0]
        prediction_set = [c for c, m in zip(classifier.classes, members, strict=True) if m]
    verdict, reasons = decide(
        label,
        float(study_probabilities.max()),
        prediction_set,
        in_distribution=bool(inside.any()),
        familiar=bool(familiar[chosen].mean() >= 0.5),
    )
    return StudyResult(
        name=study.name,
        kind=study.kind,
        slices=len(study.slices),
        skipped=study.skipped,
        left_out=study.left_out,
        label=label,
        verdict=verdict,
        reasons=reasons,
        probabilities=dict(zip(classifier.classes, map(float, study_probabilities), strict=True)),
        prediction_set=prediction_set,
        error_rate=error_rate,
        slice_probabilities=probabilities,
        slice_in_distribution=inside,
        indices=study.indices,
    )


def combined(probabilities: np.ndarray, inside: np.ndarray, rule: str = "mean") -> np.ndarray:
    """One study's probabilities from its slices' (n, classes) under `rule`: "mean" of the
    slices that pass the not-a-brain-MRI check (all of them when none does; the shipped rule),
    "log-mean" (their normalised geometric mean) or "vote" (each slice's top class)."""
    chosen = probabilities[inside] if inside.any() else probabilities
    if rule == "mean":
        return chosen.mean(axis=0)
    if rule == "log-mean":
        geometric = np.exp(np.log(np.clip(chosen, 1e-9, 1.0)).mean(axis=0))
        return geometric / geometric.sum()
    if rule == "vote":
        return np.bincount(chosen.argmax(axis=1), minlength=chosen.shape[1]) / len(chosen)
    raise ValueError(f"`rule` must be one of {RULES}. Received: {rule!r}")


def _joined(values: list, n: int, default: bool) -> np.ndarray:
    """A check's per-slice results across batches, or `default` for every slice without it."""
    if any(v is None for v in values):
        return np.full(n, default)
    return np.concatenate(values).astype(bool)
