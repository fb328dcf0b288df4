"""How well does a model's plane classifier name the view plane of images labelled by hand? Prints
JSON.

    python -m benchmarks.plane_labels DATA [DATA ...] --labels PLANES.csv [--model DIR]

PLANES.csv has `path,plane` rows with paths as the dataset reads them (several folders: starting
with the folder's name). docs/sartaj-planes.csv holds 100 sartaj-training images with no copy in
brain-mri, drawn at random (seed 7) and labelled by looking at them: view plane, and MRI sequence
as it looks (`benchmarks.subgroups`) (issue 22).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

from brat.data.folders import dataset_root
from brat.data.prepared import prepare_images
from brat.inference.classifier import load_classifier


def measure(data: Path, labels_csv: Path, model: Path | None) -> dict:
    classifier = load_classifier(model)
    if classifier.planes is None:
        raise SystemExit(f"{classifier.path} has no planes.npz; run `python -m brat fit-planes`")
    with labels_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    images = prepare_images(data, [r["path"] for r in rows], classifier.image_size, progress=False)
    predicted = [
        plane for plane, _ in classifier.planes.predict(classifier.features(images), images)
    ]
    truth = [r["plane"] for r in rows]
    hits = [t == p for t, p in zip(truth, predicted, strict=True)]
    return {
        "model": str(classifier.path),
        "images": len(rows),
        "accuracy": round(sum(hits) / len(hits), 4),
        "per_plane": {
            plane: round(
                sum(h for t, h in zip(truth, hits, strict=True) if t == plane) / truth.count(plane),
                4,
            )
            for plane in sorted(set(truth))
        },
        "confusion": dict(Counter(f"{t}->{p}" for t, p in zip(truth, predicted, strict=True))),
        "errors": [
            {"path": r["path"], "plane": t, "predicted": p}
            for r, t, p in zip(rows, truth, predicted, strict=True)
            if t != p
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--model", type=Path)
    args = parser.parse_args(argv)
    json.dump(measure(dataset_root(args.data), args.labels, args.model), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
