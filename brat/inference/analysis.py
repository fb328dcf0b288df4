"""`brat.analyze`: one scan in, its calibrated prediction and a heatmap on the original image out.

The app, the command line and the tests all call this one function.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from brat.data.decode import decode_image
from brat.data.preprocess import prepare_slice
from brat.inference.classifier import load_classifier
from brat.inference.conformal import ERROR_RATE
from brat.inference.explain import Explainer, to_image_space
from brat.inference.prediction import Prediction, prediction_fields
from brat.settings import active_model_path


@dataclass(kw_only=True)
class Analysis(Prediction):
    """A `Prediction` with the heatmap of one class on the decoded image."""

    heatmap: np.ndarray  # (H, W) float32 in [0, 1], on the decoded image
    target_class: str  # the class the heatmap explains
    method: str
    pixels: np.ndarray  # the decoded greyscale image (H, W) in [0, 1]
    box: tuple[int, int, int, int]  # the square the model saw (top, bottom, left, right)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    @property
    def heatmap_note(self) -> str:
        """What an empty heatmap means ("" when the map shows something)."""
        if float(self.heatmap.max()) > 0.0:
            return ""
        return (
            f"The model found no evidence for {self.target_class} anywhere in this scan, "
            "so the heatmap is empty."
        )


@lru_cache(maxsize=4)
def _explainer(path: Path) -> Explainer:
    return Explainer(load_classifier(path))


def explainer_for(model: str | Path | None = None, site: str | None = None) -> Explainer:
    """The explainer of a model folder (default: the active model), loaded once per process,
    answering with site `site`'s calibration when named (`brat.inference.site`)."""
    return _explainer(Path(model or active_model_path()).resolve()).for_site(site)


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

    checked = classifier.checked(
        maps.logits, maps.features, maps.penultimate, error_rate, images=image[None]
    )
    return Analysis(
        **prediction_fields(classifier, checked)[0],
        heatmap=heatmap,
        target_class=classifier.classes[int(maps.targets[0])],
        method=method,
        pixels=decoded.pixels,
        box=box,
        timings=timings,
    )
