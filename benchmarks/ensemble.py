"""Does averaging models of different recipes classify better than each alone? Prints JSON.

    python -m benchmarks.ensemble DATA [DATA ...] --models DIR DIR [...] [--split test]
        [--source SOURCE]

Every model must hold the same images in the split (models trained on one manifest with different
recipes). Each model's calibrated probabilities (its own temperature) are averaged; the mean is
measured like one model's: accuracy with its Wilson interval, tumour-class accuracy, recall per
class and ECE, for each model and for the average. `--source` keeps the split's images of one
source (e.g. the new source in a leave-source-out manifest).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from brat.data.folders import dataset_root
from brat.data.prepared import prepare_images
from brat.evaluation.metrics import Metrics, classification_metrics
from brat.inference.classifier import load_classifier


def _summary(metrics: Metrics) -> dict:
    return {
        "n": metrics.n,
        "accuracy": round(metrics.accuracy, 4),
        "accuracy_ci95": [round(x, 4) for x in metrics.accuracy_ci95],
        "tumour_accuracy": round(metrics.tumour_accuracy, 4),
        "recall": {c: round(v["recall"], 3) for c, v in metrics.per_class.items() if v["support"]},
        "ece": round(metrics.ece, 4),
    }


def measure(data: list[Path], models: list[Path], split: str, source: str | None) -> dict:
    root = dataset_root(data)
    classifiers = [load_classifier(m) for m in models]
    rows = [
        r
        for r in classifiers[0].manifest_for(root)
        if r.split == split and (source is None or r.source == source)
    ]
    paths = [r.path for r in rows]
    for other in classifiers[1:]:
        theirs = {r.path for r in other.manifest_for(root) if r.split == split}
        if not set(paths) <= theirs:
            raise SystemExit(f"{other.path} does not hold the same {split} images")
    classes = classifiers[0].classes
    truth = np.array([classes.index(r.label) for r in rows])
    each = []
    for classifier in classifiers:
        images = prepare_images(root, paths, classifier.image_size, progress=False)
        each.append(classifier.probabilities(images))
    return {
        "split": split,
        "source": source,
        "models": {
            str(c.path): _summary(classification_metrics(truth, p, classes))
            for c, p in zip(classifiers, each, strict=True)
        },
        "average": _summary(classification_metrics(truth, np.mean(each, axis=0), classes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--source", default=None)
    args = parser.parse_args()
    print(json.dumps(measure(args.data, args.models, args.split, args.source), indent=2))


if __name__ == "__main__":
    main()
