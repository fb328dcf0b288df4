"""How well do models classify the images of each value of a hand-labelled column? Prints JSON.

    python -m benchmarks.subgroups DATA [DATA ...] --labels LABELS.csv --column sequence
        --models DIR [DIR ...]

LABELS.csv has a `path` column (paths as the dataset reads them) and the column to group by
(docs/sartaj-planes.csv: `plane`, and `sequence` as it looks by eye: T1 with or without contrast,
T2, FLAIR, DWI, CT). Each image is classified by the model that held it in its test split: one
leave-source-out model, or the models of a cross-validation, each testing its own fold, so every
image gets an out-of-fold prediction; also per class within each value. Images no model tested
are counted as `untested`.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from brat.data.folders import dataset_root
from brat.data.prepared import prepare_images
from brat.inference.classifier import load_classifier


def _rate(hits: list[bool]) -> dict:
    return {"n": len(hits), "right": sum(hits), "accuracy": round(sum(hits) / len(hits), 3)}


def measure(data: list[Path], labels_csv: Path, column: str, models: list[Path]) -> dict:
    root = dataset_root(data)
    with labels_csv.open(newline="", encoding="utf-8") as handle:
        value_of = {r["path"]: r[column] for r in csv.DictReader(handle)}
    right: dict[str, list[bool]] = defaultdict(list)
    by_class: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    tested = set()
    for model in models:
        classifier = load_classifier(model)
        rows = [
            r
            for r in classifier.manifest_for(root)
            if r.split == "test" and r.path in value_of and r.path not in tested
        ]
        if not rows:
            continue
        images = prepare_images(root, [r.path for r in rows], classifier.image_size, progress=False)
        predicted = classifier.probabilities(images).argmax(axis=1)
        for row, index in zip(rows, predicted, strict=True):
            hit = classifier.classes[index] == row.label
            right[value_of[row.path]].append(hit)
            by_class[value_of[row.path]][row.label].append(hit)
            tested.add(row.path)
    return {
        "models": [str(m) for m in models],
        "column": column,
        "untested": len(set(value_of) - tested),
        "accuracy": {
            value: {
                **_rate(hits),
                "by_class": {label: _rate(h) for label, h in sorted(by_class[value].items())},
            }
            for value, hits in sorted(right.items(), key=lambda item: -len(item[1]))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--column", required=True)
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(measure(args.data, args.labels, args.column, args.models), indent=2))


if __name__ == "__main__":
    main()
