"""Which view plane is a slice: axial, coronal or sagittal? ("top", "back", "left" in the original)

Two logistic regressions, their probabilities averaged: one on the same pooled backbone features
the not-a-brain-MRI check reads (`brat.inference.ood.OOD_LAYER`, standardised), so `brat.analyze`
gets it from the forward pass it already runs; one on the slice's shape alone (`shape_features`:
scikit-image's histogram of oriented gradients of the slice at 64 px, fitted on each slice and its
mirror image), which does not depend on what the network learnt from its training sources. On 100
hand-labelled slices of a source neither saw (docs/sartaj-planes.csv, a model trained without that
source): features 93%, shape 95%, both 95%; patient-grouped cross-validation on the plane-labelled
development slices: 98.6%, 98.2%, 99.6% (models/mobilenetv2-brain-mri/notes.md). Both are fitted on
the images of a dataset whose plane is known (metadata.csv's plane column); `fit_planes_for_model`
reports its patient-grouped cross-validation before fitting on all of them, and saves `planes.npz`
in the model folder. A classifier saved before the shape half existed reads features alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brat.files import atomic_write, atomic_write_text
from brat.labels import PLANES
from brat.model_folder import PLANES_FILE

# The shape half: HOG of the slice at 64 px (1,764 numbers), and its regularisation (C = 0.1 read
# 95% of the off-source labels, 1.0 94%).
SHAPE_SIDE = 64
SHAPE_C = 0.1
_ARRAYS = ("mean", "scale", "coef", "intercept")


def shape_features(images: np.ndarray) -> np.ndarray:
    """(n, 1764) histograms of oriented gradients (scikit-image's HOG: 9 orientations, 8 px
    cells, blocks of 2 x 2 cells) of prepared slices ((n, S, S) uint8, or float in [0, 1]) at
    SHAPE_SIDE px."""
    from skimage.feature import hog
    from skimage.transform import resize

    images = np.asarray(images)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    side = (SHAPE_SIDE, SHAPE_SIDE)
    return np.array(
        [
            hog(resize(image / scale, side, anti_aliasing=True), 9, (8, 8), (2, 2))
            for image in images
        ]
    ).reshape(len(images), -1)


@dataclass(frozen=True)
class _Linear:
    """A standardised multinomial logistic regression."""

    mean: np.ndarray  # (d,) feature standardisation
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (planes, d)
    intercept: np.ndarray  # (planes,)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.coef.T
        logits += self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class PlaneClassifier:
    layer: str
    mean: np.ndarray  # (d,) feature standardisation
    scale: np.ndarray  # (d,)
    coef: np.ndarray  # (planes, d)
    intercept: np.ndarray  # (planes,)
    shape: _Linear | None = None  # on `shape_features`; None in folders saved before it

    def probabilities(self, features: np.ndarray, images: np.ndarray | None = None) -> np.ndarray:
        """(n, 3) probabilities of axial, coronal, sagittal: from the features, averaged with the
        shape half's when the prepared slices are given and the classifier has one."""
        probabilities = _Linear(self.mean, self.scale, self.coef, self.intercept).probabilities(
            features
        )
        if self.shape is not None and images is not None:
            probabilities = (probabilities + self.shape.probabilities(shape_features(images))) / 2
        return probabilities

    def predict(
        self, features: np.ndarray, images: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """(plane, confidence) per row of `features` (and of `images`, the prepared slices)."""
        probabilities = self.probabilities(features, images)
        return [(PLANES[int(p.argmax())], float(p.max())) for p in probabilities]

    def save(self, path: Path) -> None:
        arrays = {k: getattr(self, k).astype(np.float32) for k in _ARRAYS}
        if self.shape is not None:
            arrays |= {f"shape_{k}": getattr(self.shape, k).astype(np.float32) for k in _ARRAYS}
        np.savez(path, layer=np.array(self.layer), **arrays)

    @classmethod
    def load(cls, path: Path) -> PlaneClassifier:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k].astype(np.float64) for k in _ARRAYS}
            shape = (
                _Linear(**{k: data[f"shape_{k}"].astype(np.float64) for k in _ARRAYS})
                if "shape_coef" in data
                else None
            )
            return cls(layer=str(data["layer"]), **arrays, shape=shape)


def _fit_linear(x: np.ndarray, y: np.ndarray, c: float) -> _Linear:
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, np.float64)
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return _Linear(mean, scale, model.coef_, model.intercept_)


def fit_planes(
    features: np.ndarray,
    planes: list[str],
    layer: str,
    c: float = 1.0,
    images: np.ndarray | None = None,
) -> PlaneClassifier:
    """The plane classifier of slices with known `planes`: on their `features` and, given the
    prepared slices (`images`), on their shape too (each slice and its mirror image)."""
    y = np.array([PLANES.index(p) for p in planes])
    if set(y.tolist()) != set(range(len(PLANES))):
        raise ValueError(f"Plane labels must include every plane of {PLANES}.")
    linear = _fit_linear(features, y, c)
    shape = None
    if images is not None:
        images = np.asarray(images)
        both = np.concatenate([shape_features(images), shape_features(images[:, :, ::-1])])
        shape = _fit_linear(both, np.concatenate([y, y]), SHAPE_C)
    return PlaneClassifier(layer, linear.mean, linear.scale, linear.coef, linear.intercept, shape)


def fit_planes_for_model(
    data_root: Path, classifier, *, folds: int = 5, seed: int = 0, progress: bool = True
) -> dict:
    """Cross-validate on the plane-labelled images of `data_root` (folds never split a group),
    then fit on all of them and save the classifier in the model folder. Returns the report."""
    from sklearn.model_selection import StratifiedGroupKFold

    from brat.data.dataset import load_dataset
    from brat.data.prepared import prepare_images
    from brat.errors import DatasetError

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
        model = fit_planes(features[train], [planes[i] for i in train], layer, images=images[train])
        predicted[test] = [p for p, _ in model.predict(features[test], images[test])]
    correct = predicted == np.array(planes)
    model = fit_planes(features, planes, layer, images=images)
    atomic_write(Path(classifier.path) / PLANES_FILE, model.save)
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


def planes_or_predicted(
    known: list[str | None],
    planes: PlaneClassifier | None,
    features: np.ndarray,
    images: np.ndarray | None = None,
) -> list[str | None]:
    """Each image's hand-labelled plane, else the plane classifier's prediction from features
    already computed (the not-a-brain-MRI check's layer) and the prepared slices; None without a
    plane classifier."""
    if planes is None or all(known):
        return known
    predicted = planes.predict(features, images)
    return [plane or guess for plane, (guess, _) in zip(known, predicted, strict=True)]


def load_planes(model_dir: Path) -> PlaneClassifier | None:
    path = Path(model_dir) / PLANES_FILE
    return PlaneClassifier.load(path) if path.is_file() else None


@dataclass(frozen=True)
class PlanePrediction:
    path: str
    plane: str  # "" when the image cannot be read
    confidence: float | None  # None for a hand label
    source: str  # "label", "predicted", or "" with `error`
    error: str = ""


def predict_planes(
    data_root: Path,
    classifier,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> list[PlanePrediction]:
    """The plane of every image of the dataset (or plain folder) at `data_root`: the hand label
    where metadata.csv has one, else the model's plane classifier, batched over cached prepared
    slices. Unreadable images get an error instead of a plane."""
    from brat.data.dataset import load_dataset
    from brat.data.decode import decode_image
    from brat.data.preprocess import prepare_slice
    from brat.errors import BratError

    _require_planes(classifier)
    dataset = load_dataset(data_root)
    records = dataset.records
    errors: dict[str, str] = {}
    unlabelled = [r.path for r in records if not r.plane]
    readable = unlabelled
    try:
        found = planes_of_images(dataset.root, unlabelled, classifier, cache_dir, progress)
    except BratError:
        # Some file is unreadable: prepare them one by one, without the cache, to say which.
        readable, prepared = [], []
        for path in unlabelled:
            try:
                pixels = decode_image(dataset.absolute(path)).pixels
            except BratError as error:
                errors[path] = str(error)
                continue
            image, _ = prepare_slice(pixels, classifier.image_size)
            prepared.append(np.round(image * 255).astype(np.uint8))
            readable.append(path)
        found = predict_prepared(classifier, np.stack(prepared)) if prepared else []
    predicted = dict(zip(readable, found, strict=True))
    results = []
    for record in records:
        if record.plane:
            results.append(PlanePrediction(record.path, record.plane, None, "label"))
        elif record.path in errors:
            results.append(PlanePrediction(record.path, "", None, "", errors[record.path]))
        else:
            plane, confidence = predicted[record.path]
            results.append(PlanePrediction(record.path, plane, confidence, "predicted"))
    return results


def predict_planes_cached(
    data_root: Path, classifier, *, cache_dir: Path | None = None, progress: bool = True
) -> list[PlanePrediction]:
    """`predict_planes`, kept in the cache folder under a digest of every file's size and
    modification time (metadata.csv's too) and of the model's plane classifier, so after the
    first time a dataset's planes are read back at once."""
    import contextlib
    import hashlib

    from brat.data.dataset import load_dataset
    from brat.data.fingerprint import default_cache_dir, file_stamp

    _require_planes(classifier)
    dataset = load_dataset(data_root)
    digest = hashlib.sha1(str(Path(data_root).resolve()).encode())
    for path in ["metadata.csv", *(r.path for r in dataset.records)]:
        digest.update(f"{path}:{file_stamp(dataset.root / path)}\n".encode())
    digest.update(
        f"{classifier.path.resolve()}:{file_stamp(classifier.path / PLANES_FILE)}".encode()
    )
    cache_file = (cache_dir or default_cache_dir()) / f"planes-{digest.hexdigest()[:20]}.csv"
    with contextlib.suppress(OSError, ValueError, KeyError):
        return read_plane_predictions(cache_file)
    predictions = predict_planes(data_root, classifier, cache_dir=cache_dir, progress=progress)
    with contextlib.suppress(OSError):  # A read-only cache folder only costs time.
        write_plane_csv(predictions, cache_file)
    return predictions


def planes_of_images(
    root: Path, paths: list[str], classifier, cache_dir: Path | None = None, progress: bool = True
) -> list[tuple[str, float]]:
    """(plane, confidence) of each image (relative to `root`) from the model's plane classifier;
    raises BratError naming an unreadable file."""
    from brat.data.prepared import prepare_images

    _require_planes(classifier)
    if not paths:
        return []
    images = prepare_images(
        root, paths, classifier.image_size, cache_dir=cache_dir, progress=progress
    )
    return predict_prepared(classifier, images)


def predict_prepared(classifier, images: np.ndarray) -> list[tuple[str, float]]:
    """(plane, confidence) of prepared slices from the model's plane classifier."""
    _require_planes(classifier)
    return classifier.planes.predict(classifier.features(images), images)


def _require_planes(classifier) -> None:
    from brat.errors import DatasetError

    if classifier.planes is None:
        raise DatasetError(f"{classifier.path} has no plane classifier; run `brat fit-planes`.")


PLANE_CSV_COLUMNS = ("path", "plane", "confidence", "source", "error")


def write_plane_csv(predictions: list[PlanePrediction], path: Path) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PLANE_CSV_COLUMNS)
    for p in predictions:
        confidence = "" if p.confidence is None else f"{p.confidence:.4f}"
        writer.writerow((p.path, p.plane, confidence, p.source, p.error))
    atomic_write_text(path, buffer.getvalue())


def read_plane_predictions(path: Path) -> list[PlanePrediction]:
    """Every row of a `write_plane_csv` file, as written."""
    import csv

    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [
            PlanePrediction(
                row["path"],
                row["plane"],
                float(row["confidence"]) if row["confidence"] else None,
                row["source"],
                row["error"],
            )
            for row in csv.DictReader(handle)
        ]


def read_plane_csv(path: Path) -> dict[str, str]:
    """path -> plane of a `brat planes` CSV (rows without a plane are left out)."""
    import csv

    from brat.errors import DatasetError
    from brat.labels import normalise_plane

    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"path", "plane"} <= set(reader.fieldnames or []):
                raise DatasetError(f"{path} is not a planes CSV: it needs path and plane columns.")
            planes = {row["path"]: normalise_plane(row["plane"]) for row in reader}
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"The planes CSV {path} cannot be read ({error}).") from error
    return {p: plane for p, plane in planes.items() if plane}


def with_predicted_planes(rows: list, planes: dict[str, str]) -> list:
    """Manifest rows with the plane of `planes` wherever a row has no hand label."""
    from dataclasses import replace

    return [
        replace(row, plane=planes[row.path], plane_source="predicted")
        if row.plane_source != "label" and row.path in planes
        else row
        for row in rows
    ]
