"""`brat.analyze`: one scan in, its calibrated prediction and a heatmap on the original image out.

The app, the command line and the tests all call this one function.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from brat.classifier import Classifier, load_classifier
from brat.decode import decode_image
from brat.explain import Explainer, to_image_space
from brat.metrics import softmax
from brat.ood import UNCERTAIN_BELOW
from brat.preprocess import prepare_slice
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
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    @property
    def uncertain(self) -> bool:
        """A brain MRI slice whose top class is below the model card's confidence threshold."""
        return self.in_distribution and self.confidence < UNCERTAIN_BELOW

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
    def verdict(self) -> str:
        """The label, "uncertain", or "not a brain MRI"."""
        if not self.in_distribution:
            return "not a brain MRI"
        return "uncertain" if self.uncertain else self.label


@lru_cache(maxsize=4)
def _explainer(path: Path) -> Explainer:
    return Explainer(load_classifier(path))


def explainer_for(model: str | Path | Classifier | None = None) -> Explainer:
    """The (cached) explainer of a model folder, of a loaded classifier, or of the active model."""
    if isinstance(model, Classifier):
        return Explainer(model)
    return _explainer(Path(model or active_model_path()).resolve())


def analyze(
    source,
    method: str = "gradcam",
    target_class: str | None = None,
    *,
    model: str | Path | Classifier | Explainer | None = None,
    name: str | None = None,
    window: tuple[float, float] | None = None,
) -> Analysis:
    """Classify `source` (a path, bytes, an upload or an array) and explain one class.

    `target_class` None explains the predicted class. Raises UnreadableImageError for input that
    is not an image, and ValueError for an unknown method or class. `window` = (centre, width)
    sets a DICOM file's display window (window/level); other formats ignore it.
    """
    timings = {}
    start = time.perf_counter()
    explainer = model if isinstance(model, Explainer) else explainer_for(model)
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
    maps = explainer.maps(image[None], method, np.array([target]))
    timings["model"] = time.perf_counter() - start

    start = time.perf_counter()
    heatmap = to_image_space(maps.maps[0], box, decoded.pixels.shape)
    timings["map"] = time.perf_counter() - start

    probabilities = softmax(maps.logits, classifier.temperature)[0]
    classes = classifier.classes
    ood_score = float(classifier.ood.scores(maps.features)[0]) if classifier.ood else None
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
        in_distribution=ood_score is None or ood_score <= classifier.ood.threshold,
        ood_score=ood_score,
        plane=plane,
        plane_confidence=plane_confidence,
        timings=timings,
    )
