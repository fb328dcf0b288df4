"""Which score tells a scan the model should not answer? Prints JSON.

    python -m benchmarks.unfamiliar DATA [DATA ...] --model DIR [--new-source M.csv]

Every candidate is fitted on the model's training images and thresholded on its validation images
(the share of validation slices it may flag: `FLAG_SHARE`); it is then measured on the test split
of the model's manifest and, with --new-source, on the test split of another manifest whose images
the model never saw (`brat split ... --hold-out FOLDER`: a source it never trained on). For each:
the ROC AUC for telling wrong predictions from right ones, the share of slices flagged, and the
accuracy of the answered slices when the flagged ones (and those whose prediction set has more than
one class) are not answered. Candidates: 1 - max probability (the baseline), the energy score
(Liu et al. 2020), Mahalanobis distance to the nearest class centre on the not-a-brain-MRI check's
layer and on the penultimate layer (Lee et al. 2018), relative Mahalanobis (Ren et al. 2021), and
the distance to the k-th nearest training image on normalised features (Sun et al. 2022).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from brat.data.folders import dataset_root
from brat.data.manifest import read_manifest
from brat.data.prepared import prepare_images
from brat.evaluation.evaluate import evaluation_items
from brat.evaluation.metrics import softmax
from brat.inference.classifier import load_classifier, pooled_outputs
from brat.inference.conformal import SCORE, fit_conformal
from brat.inference.familiarity import (
    FLAG_SHARE,
    knn_scores,
    mahalanobis_scores,
    relative_mahalanobis_scores,
)


def outputs(classifier, data: Path, paths: list[str]) -> dict[str, np.ndarray]:
    """Logits and the pooled features of two layers for the images at `paths`."""
    images = prepare_images(data, paths, classifier.image_size, progress=False)
    logits, middle, penultimate = pooled_outputs(
        classifier.model, images, classifier.features_layer
    )
    return {"logits": logits, "penultimate": penultimate, "middle": middle}


def load_or_compute(classifier, data: Path, sets: dict[str, list], cache: Path | None) -> dict:
    if cache and cache.is_file():
        with np.load(cache) as stored:
            return {
                name: {
                    key: stored[f"{name}/{key}"] for key in ("logits", "penultimate", "middle", "y")
                }
                for name in sets
            }
    result = {}
    for name, items in sets.items():
        result[name] = outputs(classifier, data, [path for path, _ in items])
        result[name]["y"] = np.array([classifier.classes.index(label) for _, label in items])
    if cache:
        np.savez(cache, **{f"{n}/{k}": v for n, d in result.items() for k, v in d.items()})
    return result


def candidates(fit: dict, temperature: float) -> dict:
    """name -> function of a set's outputs giving (n,) scores, higher = less to be trusted."""
    y = fit["y"]
    return {
        "max_probability": lambda d: 1.0 - softmax(d["logits"], temperature).max(axis=1),
        "energy": lambda d: (
            -np.log(np.exp(d["logits"] - d["logits"].max(1, keepdims=True)).sum(1))
            - d["logits"].max(1)
        ),
        "mahalanobis_middle": mahalanobis_scores(fit["middle"], y),
        "mahalanobis_penultimate": mahalanobis_scores(fit["penultimate"], y),
        "relative_mahalanobis_penultimate": relative_mahalanobis_scores(fit["penultimate"], y),
        "knn10_penultimate": knn_scores(fit["penultimate"], k=10),
        "knn10_middle": knn_scores(fit["middle"], k=10),
        "knn50_penultimate": knn_scores(fit["penultimate"], k=50),
    }


FLAG_SHARES = (0.01, FLAG_SHARE, 0.05)


def _answering(wrong: np.ndarray, single: np.ndarray):
    def answering(values: np.ndarray, threshold: float) -> dict:
        familiar = values <= threshold
        answered = familiar & single
        return {
            "flagged": round(1 - familiar.mean(), 4),
            "answered": round(answered.mean(), 4),
            "answered_accuracy": round(1 - wrong[answered].mean(), 4) if answered.any() else None,
        }

    return answering


def set_summary(in_set: np.ndarray, y: np.ndarray) -> dict:
    return {
        "coverage": round(in_set[np.arange(len(y)), y].mean(), 4),
        "mean_set_size": round(in_set.sum(1).mean(), 3),
    }


def _wrapped(score, name: str):
    if name in ("max_probability", "energy"):
        return score
    return lambda d: score(d["middle" if name.endswith("middle") else "penultimate"])


def measure(data: Path, model: Path, new_source: Path | None, cache: Path | None) -> dict:
    classifier = load_classifier(model)
    sets = {s: evaluation_items(data, classifier, s) for s in ("train", "val", "test")}
    if new_source:
        sets["new_source"] = evaluation_items(data, classifier, "test", read_manifest(new_source))
    out = load_or_compute(classifier, data, sets, cache)
    temperature = classifier.temperature
    val_probabilities = softmax(out["val"]["logits"], temperature)
    sets_of = {
        s: fit_conformal(val_probabilities, out["val"]["y"], s) for s in ("lac", "aps", "raps")
    }
    conformal = sets_of[SCORE]
    report = {"model": str(classifier.path), "flag_share_on_val": FLAG_SHARE, "sets": {}}
    for name in [s for s in sets if s not in ("train", "val")]:
        d = out[name]
        probabilities = softmax(d["logits"], temperature)
        wrong = probabilities.argmax(1) != d["y"]
        in_set = conformal.sets(probabilities)
        single = in_set.sum(1) == 1
        answering = _answering(wrong, single)
        entry = {
            "n": len(wrong),
            "accuracy": round(1 - wrong.mean(), 4),
            "conformal": {
                f"{score}@{rate}": set_summary(sets_of[score].sets(probabilities, rate), d["y"])
                for score in sets_of
                for rate in (0.01, 0.05, 0.1)
            },
            "single_class_share": round(single.mean(), 4),
            "candidates": {},
        }
        for candidate, score in candidates(out["train"], temperature).items():
            score = _wrapped(score, candidate)
            values, on_val = score(d), score(out["val"])
            entry["candidates"][candidate] = {
                "error_auroc": round(roc_auc_score(wrong, values), 4)
                if 0 < wrong.sum() < len(wrong)
                else None,
                **{
                    f"flag {share:.0%} of val": answering(values, np.quantile(on_val, 1 - share))
                    for share in FLAG_SHARES
                },
            }
        report["sets"][name] = entry
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--new-source", type=Path, help="manifest whose test split is a new source")
    parser.add_argument("--cache", type=Path, help="npz keeping the computed outputs for reruns")
    args = parser.parse_args(argv)
    report = measure(dataset_root(args.data), args.model, args.new_source, args.cache)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
