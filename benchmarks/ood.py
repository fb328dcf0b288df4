"""How well does the not-a-brain-MRI check separate real slices from everything else? Prints JSON.

    python -m benchmarks.ood DATA [--model DIR] [--quick]   # e.g. ../shared/datasets/brain-mri

In-distribution: the test split of the model's own manifest (patients it never saw). Out of
distribution: `benchmarks.ood_samples` (package sample pictures and their variants, generated
blank, noise, gradient, pattern, document, screenshot and shape pictures). Reports the ROC AUC of
the score, the share of real slices rejected and of other pictures accepted at the model's
threshold, per category, the accepted non-MRI pictures by name, and the scores of brain MRI from
other sources that ship with packages. --quick takes 60 test slices (CI's short mode).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from benchmarks.ood_samples import not_mri_samples, package_mri
from brat.data.decode import decode_image
from brat.data.prepared import prepare_images
from brat.data.preprocess import prepare_slice
from brat.inference.classifier import load_classifier


def scores_of_pictures(classifier, pictures: list[bytes]) -> np.ndarray:
    images = np.stack(
        [prepare_slice(decode_image(data).pixels, classifier.image_size)[0] for data in pictures]
    )
    return classifier.ood.scores(classifier.features(images))


def measure(data: Path, model: Path | None, quick: bool) -> dict:
    started = time.perf_counter()
    classifier = load_classifier(model)
    if classifier.ood is None:
        raise SystemExit(f"{classifier.path} has no ood.npz; run `python -m brat ood DATA` first")
    rows = [r for r in classifier.manifest_for(data) if r.split == "test"]
    rows = rows[:: max(1, len(rows) // 60)] if quick else rows
    images = prepare_images(data, [r.path for r in rows], classifier.image_size, progress=False)
    mri = classifier.ood.scores(classifier.features(images))
    samples = not_mri_samples()
    other = scores_of_pictures(classifier, [data for _, _, data in samples])
    threshold = classifier.ood.threshold
    truth = np.r_[np.zeros(len(mri)), np.ones(len(other))]
    by_category = defaultdict(list)
    for (name, category, _), score in zip(samples, other, strict=True):
        by_category[category].append((name, float(score)))
    extra = package_mri()
    extra_scores = scores_of_pictures(classifier, list(extra.values())) if extra else []
    return {
        "model": str(classifier.path),
        "threshold": threshold,
        "mri_test_images": len(mri),
        "non_mri_pictures": len(other),
        "auroc": float(roc_auc_score(truth, np.r_[mri, other])),
        "mri_rejected": float((mri > threshold).mean()),
        "non_mri_accepted": float((other <= threshold).mean()),
        "mri_score_median": float(np.median(mri)),
        "non_mri_score_median": float(np.median(other)),
        "per_category": {
            category: {
                "n": len(items),
                "accepted": sum(score <= threshold for _, score in items),
                "min_score": min(score for _, score in items),
            }
            for category, items in sorted(by_category.items())
        },
        "accepted_non_mri": sorted(
            name for items in by_category.values() for name, s in items if s <= threshold
        ),
        "other_source_mri": {
            name: {"score": float(s), "accepted": bool(s <= threshold)}
            for name, s in zip(extra, extra_scores, strict=True)
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.data, args.model, args.quick), indent=2))


if __name__ == "__main__":
    main()
