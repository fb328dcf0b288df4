"""One verdict for a study: every slice classified in batches, then one rule over the slices.

The rule looks at the strongest slices, as a reader does (chosen by measurement on whole volumes,
docs/studies.md): a tumour shows on a few slices of a study and the others are normal, so an
average over every slice would blur it. Over the slices that pass the not-a-brain-MRI check (all
slices when none does), each slice's tumour evidence is its calibrated probability of not being
no_tumor. The strongest slices are the tenth of the slices with the most evidence (at least two:
a thin-sliced volume needs more slices than a thick-sliced one to show the same tumour); the
study's tumour probability is their mean evidence, and its tumour type is shared out by their
tumour-class probabilities summed. A study with no tumour slice is a no-tumour study.

Its prediction set is the conformal set of those probabilities at the error rate asked, calibrated
on single slices: for a study it is a rule, not a guarantee. The verdict follows
`brat.inference.verdict.decide`: "not a brain MRI" when no slice passes the check, "uncertain"
when the set holds several classes or most of the slices are unlike the training scans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from brat.data.preprocess import prepare_slice
from brat.data.studies import Study
from brat.inference.conformal import ERROR_RATE
from brat.inference.verdict import decide
from brat.labels import CLASSES, STUDY_RULES

BATCH_SIZE = 64
RULES = STUDY_RULES
# The slices whose evidence makes the study's: this share of its slices, and at least
# `MIN_STRONGEST` (a tumour seen on two slices of a thick-sliced study is a tumour study; one slice
# alone weighs half).
STRONGEST_SHARE = 0.1
MIN_STRONGEST = 2
# The slices the study view and its PDF show first.
STRONGEST_SHOWN = 3
NO_TUMOUR = "no_tumor"


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
    site: str | None = None  # the site whose calibration answered (`brat.inference.site`)

    def strongest_slices(self, k: int = STRONGEST_SHOWN) -> list[int]:
        """The positions (in `slice_probabilities`) of the `k` slices a reader looks at first,
        strongest first: for a tumour study the slices surest of its class; for a no-tumour
        study the slices with the most tumour evidence (what to check before agreeing). Slices
        that are not a brain MRI come last."""
        classes = list(self.probabilities)
        if self.label == NO_TUMOUR:
            score = 1.0 - self.slice_probabilities[:, classes.index(NO_TUMOUR)]
        else:
            score = self.slice_probabilities[:, classes.index(self.label)].copy()
        score = np.where(self.slice_in_distribution, score, score - 2.0)
        return [int(i) for i in np.argsort(-score, kind="stable")[:k]]

    @property
    def strongest_slice(self) -> int:
        """The position of the strongest slice (`strongest_slices`)."""
        return self.strongest_slices(1)[0]

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
            **({"site": self.site} if self.site else {}),
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


def analyze_study(
    study: Study, explainer, error_rate: float = ERROR_RATE, rule: str = RULES[0]
) -> StudyResult:
    """Classify every slice of `study` with `explainer` (`brat.inference.analysis.explainer_for`)
    and apply the study rule (module docstring; `rule` "mean" to compare with the rule before)."""
    classifier = explainer.classifier
    size = classifier.image_size
    prepared = np.stack([prepare_slice(pixels, size)[0] for pixels in study.slices])
    parts = [
        classifier.checked(*explainer.forward(batch), error_rate=error_rate, images=batch)
        for batch in (prepared[i : i + BATCH_SIZE] for i in range(0, len(prepared), BATCH_SIZE))
    ]
    probabilities = np.concatenate([p.probabilities for p in parts])
    inside = _joined([p.in_distribution for p in parts], len(probabilities), True)
    familiar = _joined([p.familiar for p in parts], len(probabilities), True)
    chosen = inside if inside.any() else np.ones_like(inside)
    study_probabilities = combined(probabilities, inside, rule, classifier.classes)
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
        site=classifier.site_name,
    )


def combined(
    probabilities: np.ndarray,
    inside: np.ndarray,
    rule: str = "strongest",
    classes: tuple[str, ...] | list[str] = CLASSES,
) -> np.ndarray:
    """One study's probabilities from its slices' (n, classes) under `rule` (module docstring;
    "mean": the mean of every slice's), over the slices that pass the not-a-brain-MRI check (all
    of them when none does)."""
    chosen = probabilities[inside] if inside.any() else probabilities
    if rule == "mean":
        return chosen.mean(axis=0)
    if rule != "strongest":
        raise ValueError(f"`rule` must be one of {RULES}. Received: {rule!r}")
    normal = list(classes).index(NO_TUMOUR)
    evidence = 1.0 - chosen[:, normal]
    strongest = max(MIN_STRONGEST, math.ceil(STRONGEST_SHARE * len(chosen)))
    order = np.argsort(-evidence, kind="stable")[:strongest]
    tumour = float(evidence[order].mean())
    types = chosen[order].sum(axis=0)
    types[normal] = 0.0
    shares = types / types.sum() if types.sum() > 0 else np.full(len(types), 1 / (len(types) - 1))
    study = tumour * shares
    study[normal] = 1.0 - tumour
    return study


def _joined(values: list, n: int, default: bool) -> np.ndarray:
    """A check's per-slice results across batches, or `default` for every slice without it."""
    if any(v is None for v in values):
        return np.full(n, default)
    return np.concatenate(values).astype(bool)
