"""A scan's classification with its checks, and the verdict they give (`Prediction`): what
`brat.analyze` returns beside the heatmap, and all that batch scoring returns."""

from __future__ import annotations

from dataclasses import dataclass

from brat import DISCLAIMER
from brat.inference.verdict import (
    LOW_CONFIDENCE,
    SEVERAL_CLASSES,
    UNCERTAIN,
    UNCERTAIN_BELOW,
    UNFAMILIAR,
    decide,
)


@dataclass(kw_only=True)
class Prediction:
    label: str  # the predicted class
    probabilities: dict[str, float]  # calibrated, summing to 1
    in_distribution: bool = True  # whether the input looks like a brain MRI the model knows
    ood_score: float | None = None  # higher = less like a training slice; None = not checked
    plane: str | None = None  # axial, coronal or sagittal; None when the model has no plane model
    plane_confidence: float | None = None
    prediction_set: list[str] | None = None  # the conformal set; None when the model has none
    error_rate: float | None = None  # the set's error rate
    familiarity_score: float | None = None  # higher = less like the training slices
    familiar: bool | None = None  # within the unfamiliar-scan threshold; None = not checked
    site: str | None = None  # the site whose calibration answered (`brat.inference.site`)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    @property
    def _decision(self) -> tuple[str, list[str]]:
        return decide(
            self.label,
            self.confidence,
            self.prediction_set,
            in_distribution=self.in_distribution,
            familiar=self.familiar,
        )

    @property
    def verdict(self) -> str:
        """The label, "uncertain", or "not a brain MRI" (`brat.inference.verdict.decide`)."""
        return self._decision[0]

    @property
    def reasons(self) -> list[str]:
        """Why the verdict is not the label (empty when it is)."""
        return self._decision[1]

    @property
    def uncertain(self) -> bool:
        return self.verdict == UNCERTAIN

    @property
    def set_text(self) -> str:
        """The prediction set in words ("glioma_tumor or meningioma_tumor"); "" without one."""
        if not self.prediction_set:
            return ""
        *rest, last = self.prediction_set
        return f"{', '.join(rest)} or {last}" if rest else last

    def verdict_reason(self, ood_threshold: float | None) -> str:
        """Why the verdict is not the label, in a sentence or two ("" when it is the label)."""
        if not self.in_distribution:
            return (
                "This does not look like a brain MRI slice (out-of-distribution score "
                f"{self.ood_score:.0f}, threshold {ood_threshold:.0f}), so BraTum gives no "
                "diagnosis. The model's output is shown for transparency only and is not "
                "meaningful."
            )
        sentences = []
        if SEVERAL_CLASSES in self.reasons:
            sentences.append(
                f"Uncertain: two or more classes are possible ({self.set_text}); the true class "
                f"lies in this set for all but {self.error_rate:.0%} of scans like the "
                "calibration scans."
            )
        if LOW_CONFIDENCE in self.reasons:
            sentences.append(
                f"Uncertain: the most likely class has a calibrated probability of "
                f"{self.confidence:.0%}, below the {UNCERTAIN_BELOW:.0%} the model card sets for "
                "a definite answer."
            )
        if UNFAMILIAR in self.reasons:
            sentences.append(
                "Uncertain: this scan is unlike the scans the model was trained on (another "
                "scanner, sequence or view?), so its probabilities cannot be trusted "
                f"(unfamiliar-scan score {self.familiarity_score:.2f})."
            )
        return " ".join(sentences)


def prediction_fields(classifier, checked) -> list[dict]:
    """The fields of a `Prediction` for each scan of a batch's `Classifier.checked` outputs (and
    its plane, where the model has a plane classifier)."""
    classes = classifier.classes
    planes = (
        classifier.planes.predict(checked.features, checked.images)
        if classifier.planes
        else [(None, None)] * len(checked.logits)
    )
    fields = []
    for i, probabilities in enumerate(checked.probabilities):
        fields.append(
            {
                "label": classes[int(probabilities.argmax())],
                "probabilities": {c: float(p) for c, p in zip(classes, probabilities, strict=True)},
                "in_distribution": _item(checked.in_distribution, i, True),
                "ood_score": _item(checked.ood_scores, i),
                "plane": planes[i][0],
                "plane_confidence": planes[i][1],
                "prediction_set": None
                if checked.sets is None
                else [c for c, inside in zip(classes, checked.sets[i], strict=True) if inside],
                "error_rate": checked.error_rate if checked.sets is not None else None,
                "familiarity_score": _item(checked.familiarity_scores, i),
                "familiar": _item(checked.familiar, i),
                "site": classifier.site_name,
            }
        )
    return fields


def _item(values, index: int, default=None):
    """One element of a check's array as a Python value, or `default` without the check."""
    return default if values is None else values[index].item()


def prediction_record(
    path: str,
    analysis: Prediction | None,
    error: str | None = None,
    *,
    input_sha256: str | None = None,
    error_kind: str | None = None,
) -> dict:
    """One scan's result as `brat predict` writes it and the Diagnose page's batch table shows
    it: the verdict, calibrated probabilities and checks, or the reason the file was not read
    (`error`, and `error_kind` in a few words). `input_sha256`, the hash of the file's bytes, is
    added when given."""
    identity = {"path": path, "input_sha256": input_sha256} if input_sha256 else {"path": path}
    if analysis is None:
        kind = {"error_kind": error_kind} if error_kind else {}
        return {**identity, "error": error, **kind, "disclaimer": DISCLAIMER}
    return {
        **identity,
        "label": analysis.label,
        "verdict": analysis.verdict,
        "confidence": round(analysis.confidence, 6),
        "probabilities": {c: round(p, 6) for c, p in analysis.probabilities.items()},
        "reasons": analysis.reasons,
        "prediction_set": analysis.prediction_set,
        "error_rate": analysis.error_rate,
        "in_distribution": analysis.in_distribution,
        "ood_score": analysis.ood_score,
        "familiar": analysis.familiar,
        "familiarity_score": analysis.familiarity_score,
        "plane": analysis.plane,
        "plane_confidence": analysis.plane_confidence,
        **({"site": analysis.site} if analysis.site else {}),
        "disclaimer": DISCLAIMER,
    }
