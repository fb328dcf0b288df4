"""A trained model folder, loaded for prediction with its calibration.

A model folder (written by `brat.train`) holds model.keras, brat.json (config, classes,
temperature, metrics, the SHA-256 of model.keras), history.json and the split manifest it was
trained on. Loading checks model.keras against that hash, so a damaged file is named as such.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brat.errors import BratError, DamagedModelError
from brat.folder_swap import recover
from brat.metrics import softmax
from brat.ood import OOD_FILE, OOD_LAYER, OutOfDistribution, features_model, load_ood
from brat.planes import PLANES_FILE, PlaneClassifier, load_planes
from brat.preprocess import prepare_slice
from brat.settings import active_model_path

if TYPE_CHECKING:
    from brat.split import ManifestRow

META_FILE = "brat.json"
MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.csv"


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks (model.keras: ~9 MB, a few ms)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_outputs(model, images: np.ndarray, width: int, batch_size: int = 64) -> np.ndarray:
    """(n, width) first output of a Keras model (a classifier's logits, a feature model's
    features) on prepared slices ((n, S, S) uint8, or float in [0, 1]), in batches that keep
    memory flat."""
    images = np.asarray(images)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)[..., None] / scale
        outputs = model(batch, training=False)
        if isinstance(outputs, list | tuple):  # a model still carrying its mask output
            outputs = outputs[0]
        out.append(np.asarray(outputs, np.float64))
    return np.concatenate(out) if out else np.zeros((0, width))


@dataclass
class Classifier:
    model: object  # keras.Model
    meta: dict
    path: Path
    ood: OutOfDistribution | None = None  # the out-of-distribution check, when fitted
    planes: PlaneClassifier | None = None  # the view-plane classifier, when fitted

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    @property
    def image_size(self) -> int:
        return int(self.meta["config"]["model"]["image_size"])

    @property
    def temperature(self) -> float:
        return float(self.meta.get("temperature", 1.0))

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Raw logits for prepared slices: (n, S, S) uint8, or float in [0, 1]."""
        return model_outputs(self.model, images, len(self.classes))

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
        from brat.split import read_manifest  # brat.split loads scipy: only when a manifest is read

        return read_manifest(self.path / MANIFEST_FILE)

    @cached_property
    def _features_model(self):
        return features_model(self.model, self.features_layer)

    def features(self, images: np.ndarray) -> np.ndarray:
        """The out-of-distribution check's features (a layer's spatial mean) of prepared slices."""
        model = self._features_model
        return model_outputs(model, images, int(model.outputs[0].shape[-1]))

    def classify(self, pixels: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for one decoded greyscale image (any size, values in [0, 1])."""
        image, _ = prepare_slice(pixels, self.image_size)
        return self.probabilities(image[None])[0]


def load_classifier(path: str | Path | None = None) -> Classifier:
    """Load a model folder (default: the app's active model); a clear BratError if it cannot, a
    DamagedModelError when a file is damaged (model.keras not matching its recorded SHA-256)."""
    path = Path(path) if path else active_model_path()
    if path.is_file() and path.name == MODEL_FILE:
        path = path.parent
    meta_file, model_file = path / META_FILE, path / MODEL_FILE
    if not model_file.is_file():
        recover(path)  # A training run killed while swapping this folder in.
    if not model_file.is_file() or not meta_file.is_file():
        raise BratError(
            f"No trained model at {path} (it needs {MODEL_FILE} and {META_FILE}). Train one with "
            "`python -m brat train DATA --out PATH`, or set BRAT_MODEL to a model folder."
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        meta["config"]["model"]["image_size"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DamagedModelError(f"{meta_file} is damaged ({error}).") from error
    _check_model_file(model_file, meta.get("model_sha256"))
    import keras

    try:
        model = keras.saving.load_model(model_file, compile=False)
    except Exception as error:  # Keras raises many types for a damaged or foreign file.
        raise DamagedModelError(
            f"{model_file} is damaged or not a Keras model and cannot be loaded "
            f"({type(error).__name__}: {str(error)[:160]}). Retrain the model or restore the file."
        ) from error
    try:
        ood, planes = load_ood(path), load_planes(path)
    except (OSError, ValueError, KeyError) as error:
        raise DamagedModelError(
            f"{path}: {OOD_FILE} or {PLANES_FILE} is damaged ({error})."
        ) from error
    if ood and planes and planes.layer != ood.layer:
        raise BratError(f"{path}: {PLANES_FILE} and {OOD_FILE} read different layers.")
    return Classifier(model=model, meta=meta, path=path, ood=ood, planes=planes)


def _check_model_file(model_file: Path, expected: str | None) -> None:
    """A DamagedModelError when model.keras is not the file recorded in brat.json (older model
    folders record no hash: then only Keras' own checks apply)."""
    if not expected:
        return
    try:
        actual = file_sha256(model_file)
    except OSError as error:
        raise DamagedModelError(f"{model_file} cannot be read ({error}).") from error
    if actual != expected:
        raise DamagedModelError(
            f"{model_file} is damaged: its SHA-256 {actual[:16]}… does not match the "
            f"{expected[:16]}… recorded in {META_FILE} when it was trained. Retrain the model or "
            "restore the file from a backup."
        )
