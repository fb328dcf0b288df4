"""How easily can a simple model tell the image source, before and after preprocessing? Prints JSON.

    python -m benchmarks.source_shortcut DATA   # e.g. ../shared/datasets/brain-mri

In brain-mri every no_tumor image comes from Br35H and every tumour image from figshare, so any
feature that identifies the source also identifies "no tumour" without looking at anatomy. This
fits a gradient-boosted classifier (5 group-aware folds, patients never split) to predict the
source from three feature sets and reports its ROC AUC (0.5: the source cannot be told apart):
- file: the raw file's width, height, colour channels and intensity statistics (what
  preprocessing is meant to remove);
- prepared_frame: the border of the prepared model input (padding, crop position);
- prepared_intensity: the prepared input's intensity histogram and statistics (contrast and MRI
  sequence, which cropping and normalising cannot remove).
"""

from __future__ import annotations

import json
import sys
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


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=2))
