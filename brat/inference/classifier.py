"""A trained model folder, loaded for prediction with its calibration and its checks.

`load_classifier` reads the folder through `brat.model_folder` (which checks model.keras against
its recorded SHA-256, so a damaged file is named as such) and adds the fitted not-a-brain-MRI and
view-plane checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brat.data.preprocess import prepare_slice
from brat.errors import BratError, DamagedModelError
from brat.evaluation.metrics import softmax
from brat.inference.conformal import ERROR_RATE, ConformalSets, load_conformal
from brat.inference.familiarity import Familiarity, load_familiarity
from brat.inference.ood import OOD_LAYER, OutOfDistribution, features_model, load_ood
from brat.inference.planes import PlaneClassifier, load_planes
from brat.model_folder import (
    CONFORMAL_FILE,
    FAMILIARITY_FILE,
    OOD_FILE,
    PLANES_FILE,
    ModelMeta,
    load_keras_model,
    model_folder,
    read_meta,
    read_model_manifest,
)
from brat.settings import active_model_path
from brat.training.model import FEATURES_LAYER

if TYPE_CHECKING:
    from brat.data.manifest import ManifestRow
    from brat.inference.site import SiteProfile


def batched_outputs(model, images: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Every output of a Keras model on prepared slices ((n, S, S) uint8, or float in [0, 1]),
    in batches that keep memory flat."""
    images = np.asarray(images)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    parts: list[list[np.ndarray]] | None = None
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)[..., None] / scale
        outputs = model(batch, training=False)
        outputs = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
        parts = parts or [[] for _ in outputs]
        for part, value in zip(parts, outputs, strict=True):
            part.append(np.asarray(value, np.float64))
    if parts is None:
        return [np.zeros((0, *(int(d) for d in o.shape[1:]))) for o in model.outputs]
    return [np.concatenate(part) for part in parts]


def model_outputs(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The first output of a Keras model (a classifier's logits, a feature model's features; a
    model still carrying its mask output gives its logits) on prepared slices."""
    return batched_outputs(model, images, batch_size)[0]


def pooled_outputs(
    model, images: np.ndarray, features_layer: str = OOD_LAYER, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, features, penultimate) of prepared slices in one pass per batch: the spatial means
    of `features_layer` (the not-a-brain-MRI check's) and of the last feature map."""
    import keras

    pooled = [
        keras.layers.GlobalAveragePooling2D()(model.get_layer(layer).output)
        for layer in (features_layer, FEATURES_LAYER)
    ]
    heads = keras.Model(model.inputs[0], [model.outputs[0], *pooled])
    logits, features, penultimate = batched_outputs(heads, images, batch_size)
    return logits, features, penultimate


@dataclass
class Outputs:
    """A batch of slices through the model and its checks (None: the folder lacks that check)."""

    logits: np.ndarray  # (n, classes)
    probabilities: np.ndarray  # (n, classes) calibrated
    features: np.ndarray  # (n, d) the not-a-brain-MRI check's features (a middle layer, pooled)
    penultimate: np.ndarray  # (n, 1280) the last feature map, pooled
    ood_scores: np.ndarray | None  # (n,) higher = less like a brain MRI slice
    in_distribution: np.ndarray | None  # (n,) bool: passes the not-a-brain-MRI check
    familiarity_scores: np.ndarray | None  # (n,) higher = less like the training slices
    familiar: np.ndarray | None  # (n,) bool: within the unfamiliar-scan threshold
    sets: np.ndarray | None  # (n, classes) bool: the conformal prediction sets
    error_rate: float  # the sets' error rate
    images: np.ndarray | None = None  # the prepared slices, when given (the plane classifier's)


@dataclass
class Classifier:
    model: object  # keras.Model
    meta: ModelMeta
    path: Path
    ood: OutOfDistribution | None = None  # the out-of-distribution check, when fitted
    planes: PlaneClassifier | None = None  # the view-plane classifier, when fitted
    conformal: ConformalSets | None = None  # the prediction sets' calibration, when fitted
    familiarity: Familiarity | None = None  # the unfamiliar-scan check, when fitted
    # The site calibration answering in place of the model's own (`brat.inference.site`).
    site: SiteProfile | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.meta.classes

    @property
    def image_size(self) -> int:
        return self.meta.config.model.image_size

    @property
    def temperature(self) -> float:
        return self.site.temperature if self.site else self.meta.temperature

    @property
    def site_name(self) -> str | None:
        return self.site.name if self.site else None

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Raw logits for prepared slices: (n, S, S) uint8, or float in [0, 1]."""
        return model_outputs(self.model, images)

    def probabilities(self, images: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Class probabilities for prepared slices, temperature-scaled unless told otherwise."""
        return softmax(self.logits(images), self.temperature if calibrated else 1.0)

    @property
    def features_layer(self) -> str:
        """The layer whose spatial mean `features` returns (the OOD check's and planes' input)."""
        return self.ood.layer if self.ood else OOD_LAYER

    @cached_property
    def manifest(self) -> list[ManifestRow]:
        """The split manifest the model was trained on (written with it; read once)."""
        return read_model_manifest(self.path)

    def manifest_for(self, data_root: str | Path) -> list[ManifestRow]:
        """The manifest's rows with paths under `data_root` (`brat.data.manifest.rows_for`)."""
        from brat.data.manifest import rows_for

        return rows_for(self.manifest, data_root)

    @cached_property
    def _features_model(self):
        return features_model(self.model, self.features_layer)

    def features(self, images: np.ndarray) -> np.ndarray:
        """The out-of-distribution check's features (a layer's spatial mean) of prepared slices."""
        return model_outputs(self._features_model, images)

    def outputs(self, images: np.ndarray, error_rate: float = ERROR_RATE) -> Outputs:
        """Logits and both pooled feature layers of prepared slices through every check."""
        pooled = pooled_outputs(self.model, images, self.features_layer)
        return self.checked(*pooled, error_rate=error_rate, images=images)

    def checked(
        self,
        logits: np.ndarray,
        features: np.ndarray,
        penultimate: np.ndarray,
        error_rate: float = ERROR_RATE,
        images: np.ndarray | None = None,
    ) -> Outputs:
        """The model's outputs for a batch with every check the folder has applied to them;
        `images`, the prepared slices, let the plane classifier read their shape too."""
        probabilities = softmax(logits, self.temperature)
        ood = self.ood.scores(features) if self.ood else None
        familiarity = self.familiarity.scores(penultimate) if self.familiarity else None
        return Outputs(
            logits=logits,
            probabilities=probabilities,
            features=features,
            penultimate=penultimate,
            ood_scores=ood,
            in_distribution=ood <= self.ood.threshold if ood is not None else None,
            familiarity_scores=familiarity,
            familiar=familiarity <= self.familiarity.threshold if familiarity is not None else None,
            sets=self.conformal.sets(probabilities, error_rate) if self.conformal else None,
            error_rate=error_rate,
            images=images,
        )

    def classify(self, pixels: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for one decoded greyscale image (any size, values in [0, 1])."""
        image, _ = prepare_slice(pixels, self.image_size)
        return self.probabilities(image[None])[0]


def load_classifier(path: str | Path | None = None, site: str | None = None) -> Classifier:
    """Load a model folder (default: the app's active model), answering with the calibration of
    `site` when named (`brat.inference.site`); a clear BratError if it cannot, a
    DamagedModelError when a file is damaged (model.keras not matching its recorded SHA-256)."""
    path = model_folder(path or active_model_path())
    meta = read_meta(path)
    model = load_keras_model(path, meta)
    try:
        ood, planes = load_ood(path), load_planes(path)
        conformal, familiarity = load_conformal(path), load_familiarity(path)
    except (OSError, ValueError, KeyError) as error:
        files = ", ".join((OOD_FILE, PLANES_FILE, CONFORMAL_FILE, FAMILIARITY_FILE))
        raise DamagedModelError(f"{path}: one of {files} is damaged ({error}).") from error
    if ood and planes and planes.layer != ood.layer:
        raise BratError(f"{path}: {PLANES_FILE} and {OOD_FILE} read different layers.")
    classifier = Classifier(
        model=model,
        meta=meta,
        path=path,
        ood=ood,
        planes=planes,
        conformal=conformal,
        familiarity=familiarity,
    )
    if site is None:
        return classifier
    from brat.inference.site import site_classifier

    return site_classifier(classifier, site)
