"""How easily can a simple model tell the image source, before and after preprocessing? Prints JSON.

    python -m benchmarks.source_shortcut DATA   # e.g. ../shared/datasets/brain-mri
    python -m benchmarks.source_shortcut DATA [DATA ...] --model DIR

In brain-mri every no_tumor image comes from Br35H and every tumour image from figshare, so any
feature that identifies the source also identifies "no tumour" without looking at anatomy. This
fits a gradient-boosted classifier (5 group-aware folds, patients never split) to predict the
source from three feature sets and reports its ROC AUC (0.5: the source cannot be told apart):
- file: the raw file's width, height, colour channels and intensity statistics (what
  preprocessing is meant to remove);
- prepared_frame: the border of the prepared model input (padding, crop position);
- prepared_intensity: the prepared input's intensity histogram and statistics (contrast and MRI
  sequence, which cropping and normalising cannot remove).

With --model, the question is asked of a trained model instead: within each class, can a linear
probe (standardised logistic regression, 5 group-aware folds) tell the sources apart from the
model's penultimate features (the pooled last feature map the classifier reads) on the images of
its test split (--split all: every image of its manifest)? Of an image with copies in other
folders only the copy in the first folder given is kept (a re-encoded copy is the same scan). An
AUC near 0.5 means the model's evidence for the class no longer carries the source; near 1, a
source shortcut is still available to it.
"""

from __future__ import annotations

import json
import time

import numpy as np
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict

from brat.data.dataset import load_dataset
from brat.data.decode import decode_image
from brat.data.prepared import prepare_images

SIZE = 128


def file_features(path) -> list[float]:
    with Image.open(path) as image:
        width, height = image.size
        channels = len(image.getbands())
    pixels = decode_image(path).pixels
    return [width, height, channels, pixels.mean(), pixels.std(), (pixels < 0.02).mean()]


def frame_features(image: np.ndarray) -> list[float]:
    border = np.concatenate(
        [image[:6].ravel(), image[-6:].ravel(), image[:, :6].ravel(), image[:, -6:].ravel()]
    )
    return [border.mean(), (border == 0).mean(), (image == 0).mean()]


def intensity_features(image: np.ndarray) -> list[float]:
    tissue = image[image > 5]
    histogram = np.histogram(tissue, bins=16, range=(0, 256))[0] / max(tissue.size, 1)
    return [*histogram, tissue.mean(), tissue.std(), np.median(tissue)]


def main(root: str) -> dict:
    start = time.perf_counter()
    dataset = load_dataset(root)
    records = [r for r in dataset.records if r.label]
    source = np.array([r.label == "no_tumor" for r in records], int)
    groups = [r.group or r.path for r in records]
    images = prepare_images(dataset.root, [r.path for r in records], SIZE, progress=False)
    features = {
        "file": [file_features(dataset.root / r.path) for r in records],
        "prepared_frame": [frame_features(image) for image in images],
        "prepared_intensity": [intensity_features(image) for image in images],
    }
    auc = {}
    for name, rows in features.items():
        scores = cross_val_predict(
            HistGradientBoostingClassifier(random_state=0),
            np.array(rows, float),
            source,
            groups=groups,
            cv=GroupKFold(5),
            method="predict_proba",
        )[:, 1]
        auc[name] = round(float(roc_auc_score(source, scores)), 4)
    return {
        "data": str(root),
        "images": len(records),
        "image_size": SIZE,
        "source_auc": auc,
        "seconds": round(time.perf_counter() - start, 1),
    }


def model_probe(folders: list[str], model: str, split: str = "test") -> dict:
    """Within-class source AUCs of a linear probe on `model`'s penultimate features (see the
    module docstring)."""
    from collections import defaultdict
    from pathlib import Path

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brat.data.folders import dataset_root, folder_names
    from brat.inference.classifier import load_classifier, pooled_outputs

    start = time.perf_counter()
    root = dataset_root(folders)
    classifier = load_classifier(model)
    rows = [r for r in classifier.manifest_for(root) if split in ("all", r.split)]
    order = {folder: i for i, folder in enumerate(folder_names([Path(f) for f in folders]))}
    first = defaultdict(lambda: len(order))
    for r in rows:
        first[r.group] = min(first[r.group], order.get(r.folder, len(order)))
    rows = [r for r in rows if order.get(r.folder, len(order)) == first[r.group]]
    images = prepare_images(root, [r.path for r in rows], classifier.image_size, progress=False)
    _, _, penultimate = pooled_outputs(classifier.model, images)
    report = {}
    for label in sorted({r.label for r in rows}):
        chosen = [i for i, r in enumerate(rows) if r.label == label]
        sources = [rows[i].source or rows[i].folder for i in chosen]
        counts = {s: sources.count(s) for s in sorted(set(sources))}
        if len(counts) < 2 or min(counts.values()) < 10:
            report[label] = {"images": counts, "source_auc": None}
            continue
        rare = min(counts, key=counts.get)  # one source against the rest
        target = np.array([s == rare for s in sources], int)
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        scores = cross_val_predict(
            probe,
            penultimate[chosen],
            target,
            groups=[rows[i].group for i in chosen],
            cv=GroupKFold(5),
            method="predict_proba",
        )[:, 1]
        auc = round(float(roc_auc_score(target, scores)), 4)
        report[label] = {"images": counts, "probed_source": rare, "source_auc": auc}
    return {
        "data": folders,
        "model": str(model),
        "split": split,
        "images_without_copies": len(rows),
        "by_class": report,
        "seconds": round(time.perf_counter() - start, 1),
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+")
    parser.add_argument("--model", help="probe this model's features instead")
    parser.add_argument("--split", choices=("test", "all"), default="test")
    args = parser.parse_args()
    result = model_probe(args.data, args.model, args.split) if args.model else main(args.data[0])
    print(json.dumps(result, indent=2))
