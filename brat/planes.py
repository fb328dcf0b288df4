"""Which view plane is a slice: axial, coronal or sagittal? ("top", "back", "left" in the original)

A logistic regression on the same pooled backbone features the not-a-brain-MRI check reads
(`brat.ood.OOD_LAYER`, standardised), so `brat.analyze` gets the plane from the forward pass it
already runs. It is fitted on the images of a dataset whose plane is known (metadata.csv's plane
column); `fit_planes_for_model` reports its patient-grouped cross-validation before fitting on all
of them, and saves `planes.npz` in the model folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brat.labels import PLANES

PLANES_FILE = "planes.npz"


@dataclass(frozen=True)
class PlaneClassifier:
    layer: str
    mean: np.ndarray  # (d,) feature standardisation
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (planes, d)
    intercept: np.ndarray  # (planes,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, 3) probabilities of axial, coronal, sagittal."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        logits = z @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> list[tuple[str, float]]:
        """(plane, confidence) per row of `features`."""
        probabilities = self.probabilities(features)
        return [(PLANES[int(p.argmax())], float(p.max())) for p in probabilities]

    def save(self, path: Path) -> None:
        arrays = {
            k: getattr(self, k).astype(np.float32) for k in ("mean", "scale", "coef", "intercept")
        }
        np.savez(path, layer=np.array(self.layer), **arrays)

    @classmethod
    def load(cls, path: Path) -> PlaneClassifier:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k].astype(np.float64) for k in ("mean", "scale", "coef", "intercept")}
            return cls(layer=str(data["layer"]), **arrays)


def fit_planes(
    features: np.ndarray, planes: list[str], layer: str, c: float = 1.0
) -> PlaneClassifier:
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, np.float64)
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    y = np.array([PLANES.index(p) for p in planes])
    if set(y.tolist()) != set(range(len(PLANES))):
        raise ValueError(f"Plane labels must include every plane of {PLANES}.")
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return PlaneClassifier(layer, mean, scale, model.coef_, model.intercept_)


def fit_planes_for_model(
    data_root: Path, classifier, *, folds: int = 5, seed: int = 0, progress: bool = True
) -> dict:
    """Cross-validate on the plane-labelled images of `data_root` (folds never split a group),
    then fit on all of them and save the classifier in the model folder. Returns the report."""
    from sklearn.model_selection import StratifiedGroupKFold

    from brat.dataset import load_dataset
    from brat.errors import DatasetError
    from brat.prepared import prepare_images

    dataset = load_dataset(data_root)
    records = [r for r in dataset.records if r.plane]
    if len(records) < 3 * folds:
        raise DatasetError(f"{data_root} has {len(records)} plane-labelled images; need more.")
    images = prepare_images(
        dataset.root, [r.path for r in records], classifier.image_size, progress=progress
    )
    features = classifier.features(images)
    planes = [r.plane for r in records]
    groups = [r.group or r.path for r in records]
    layer = classifier.features_layer
    predicted = np.empty(len(records), object)
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(features, planes, groups):
        model = fit_planes(features[train], [planes[i] for i in train], layer)
        predicted[test] = [p for p, _ in model.predict(features[test])]
    correct = predicted == np.array(planes)
    model = fit_planes(features, planes, layer)
    model.save(Path(classifier.path) / PLANES_FILE)
    classifier.planes = model
    sources = sorted({_source(r.path) for r in records})
    return {
        "images": len(records),
        "planes": {p: planes.count(p) for p in PLANES},
        "folds": folds,
        "accuracy": float(correct.mean()),
        "per_plane": {p: float(correct[np.array(planes) == p].mean()) for p in PLANES},
        "per_folder": {
            s: float(correct[[_source(r.path) == s for r in records]].mean()) for s in sources
        },
        "errors": [
            {"path": r.path, "plane": r.plane, "predicted": predicted[i]}
            for i, r in enumerate(records)
            if not correct[i]
        ],
    }


def _source(path: str) -> str:
    return path.split("/", 1)[0]


def load_planes(model_dir: Path) -> PlaneClassifier | None:
    path = Path(model_dir) / PLANES_FILE
    return PlaneClassifier.load(path) if path.is_file() else None
