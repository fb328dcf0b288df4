"""`brat.analyze`: one scan in, its calibrated prediction and a heatmap on the original image out.

The app, the command line and the tests all call this one function.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from brat import DISCLAIMER
from brat.data.decode import decode_image
from brat.data.preprocess import prepare_slice
from brat.inference.classifier import load_classifier
from brat.inference.conformal import ERROR_RATE
from brat.inference.explain import Explainer, to_image_space
from brat.inference.verdict import (
    LOW_CONFIDENCE,
    SEVERAL_CLASSES,
    UNCERTAIN,
    UNCERTAIN_BELOW,
    UNFAMILIAR,
    decide,
)
from brat.settings import active_model_path


@dataclass
class Analysis:
    label: str  # the predicted class
    probabilities: dict[str, float]  # calibrated, summing to 1
    heatmap: np.ndarray  # (H, W) float32 in [0, 1], on the decoded image
    target_class: str  # the class the heatmap explains
    method: str
    pixels: np.ndarray  # the decoded greyscale image (H, W) in [0, 1]
    box: tuple[
        int, int, int, int
    ]  # the square of the image the model saw (top, bottom, left, right)
    in_distribution: bool = True  # whether the input looks like a brain MRI the model knows
    ood_score: float | None = None  # higher = less like a training slice; None = not checked
    plane: str | None = None  # axial, coronal or sagittal; None when the model has no plane model
    plane_confidence: float | None = None
    prediction_set: list[str] | None = None  # the conformal set; None when the model has none
    error_rate: float | None = None  # the set's error rate
    familiarity_score: float | None = None  # higher = less like the training slices
    familiar: bool | None = None  # within the unfamiliar-scan threshold; None = not checked
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    @property
    def heatmap_note(self) -> str:
        """What an empty heatmap means ("" when the map shows something)."""
        if float(self.heatmap.max()) > 0.0:
            return ""
        return (
            f"The model found no evidence for {self.target_class} anywhere in this scan, "
            "so the heatmap is empty."
        )

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


def prediction_record(path: str, analysis: Analysis | None, error: str | None = None) -> dict:
    """One scan's result as `brat predict` writes it and the Diagnose page's batch table shows
    it: the verdict, calibrated probabilities and checks, or the reason the file was not read."""
    if analysis is None:
        return {"path": path, "error": error, "disclaimer": DISCLAIMER}
    return {
        "path": path,
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
        "disclaimer": DISCLAIMER,
    }


@lru_cache(maxsize=4)
def _explainer(path: Path) -> Explainer:
    return Explainer(load_classifier(path))


def explainer_for(model: str | Path | None = None) -> Explainer:
    """The explainer of a model folder (default: the active model), loaded once per process."""
    return _explainer(Path(model or active_model_path()).resolve())


def analyze(
    source,
    method: str = "gradcam",
    target_class: str | None = None,
    *,
    model: Explainer | None = None,
    name: str | None = None,
    window: tuple[float, float] | None = None,
    error_rate: float = ERROR_RATE,
) -> Analysis:
    """Classify `source` (a path, bytes, an upload or an array) and explain one class.

    `model` is the explainer of the model to use (`explainer_for(path)`); None is the active
    model's. `target_class` None explains the predicted class. Raises UnreadableImageError for input
    that is not an image, and ValueError for an unknown method or class. `window` = (centre, width)
    sets a DICOM file's display window (window/level); other formats ignore it. `error_rate` is
    the prediction set's: the share of scans whose true class may fall outside it.
    """
    timings = {}
    start = time.perf_counter()
    explainer = model or explainer_for()
    classifier = explainer.classifier
    if target_class is not None and target_class not in classifier.classes:
        raise ValueError(
            f"`target_class` must be one of {classifier.classes}. Received: {target_class!r}"
        )
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    decoded = decode_image(source, name=name, window=window)
    image, box = prepare_slice(decoded.pixels, classifier.image_size)
    timings["decode"] = time.perf_counter() - start

    start = time.perf_counter()
    target = -1 if target_class is None else classifier.classes.index(target_class)
    maps = explainer.predict(image[None], method, np.array([target]))
    timings["model"] = time.perf_counter() - start

    start = time.perf_counter()
    heatmap = to_image_space(maps.maps[0], box, decoded.pixels.shape)
    timings["map"] = time.perf_counter() - start

    checked = classifier.checked(maps.logits, maps.features, maps.penultimate, error_rate)
    probabilities = checked.probabilities[0]
    classes = classifier.classes
    plane, plane_confidence = (
        classifier.planes.predict(maps.features)[0] if classifier.planes else (None, None)
    )
    return Analysis(
        label=classes[int(probabilities.argmax())],
        probabilities={c: float(p) for c, p in zip(classes, probabilities, strict=True)},
        heatmap=heatmap,
        target_class=classes[int(maps.targets[0])],
        method=method,
        pixels=decoded.pixels,
        box=box,
        in_distribution=_first(checked.in_distribution, True),
        ood_score=_first(checked.ood_scores),
        plane=plane,
        plane_confidence=plane_confidence,
        prediction_set=None
        if checked.sets is None
        else [c for c, inside in zip(classes, checked.sets[0], strict=True) if inside],
        error_rate=error_rate if checked.sets is not None else None,
        familiarity_score=_first(checked.familiarity_scores),
        familiar=_first(checked.familiar),
        timings=timings,
    )


def _first(values: np.ndarray | None, default=None):
    """The first element of a check's array as a Python value, or `default` without the check."""
    return default if values is None else values[0].item()
