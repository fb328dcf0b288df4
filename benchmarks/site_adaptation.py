"""Learning curves of site adaptation: what `brat adapt` gives a site with 0, 10, 25, 50 or all of
its labelled scans per class, every site scan tested once by a model that never saw it.

    python -m benchmarks.site_adaptation DATA [DATA ...] --model BASE --site-folder F [F ...] \\
        --work DIR [--shots 0,10,25,50,all] [--folds 3] [--frozen-blocks N] [--epochs N] \\
        [--learning-rate LR] [--only-fold K] [--json OUT]

The site is every image of the --site-folder folders of DATA the model never trained or
calibrated on (its manifest's test rows there, and the images of those folders its manifest does
not hold), patient groups from the manifest or metadata.csv. It is split into --folds patient-
grouped, class-stratified folds (scikit-learn's StratifiedGroupKFold, seeded); for each fold and
each number of shots, that many scans per class are drawn from the other folds (all of them for
"all", every scan of a class with fewer), the model is adapted on them exactly as `brat adapt`
does (`brat.training.adapt`: replay of the model's training images, a quarter of the site's
groups held out for the site profile when that leaves 20), and the adapted model, with its site
profile where it has one, reads the fold. 0 shots is the model as it is, and the model with a
site profile fitted on 50 scans of the other folds (calibration without fine-tuning). Forgetting:
accuracy on the model's validation split (never trained on) before and after. Each result is
kept in WORK/results.jsonl as it comes, so a stopped run resumes. Prints JSON: per run, and
pooled over the folds per number of shots.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from brat.data.dataset import ImageRecord, load_dataset
from brat.data.folders import dataset_root
from brat.data.manifest import rows_for
from brat.data.prepared import prepare_images
from brat.evaluation.metrics import wilson_interval
from brat.evaluation.site import Site
from brat.inference.classifier import load_classifier
from brat.inference.conformal import fit_conformal
from brat.inference.serving import limit_blas_threads
from brat.inference.site import calibrate_site, fit_site_profile, with_site
from brat.inference.verdict import answered
from brat.model_folder import read_meta, read_model_manifest
from brat.training.adapt import (
    AdaptConfig,
    adaptation_rows,
    site_rows,
    train_config,
)

CALIBRATION_ONLY = 50  # site scans the 0-shot model's site profile is fitted on


def site_images(root: Path, model_rows, folders: set[str]) -> list[ImageRecord]:
    """The images of `folders` the model never trained or calibrated on, with their groups."""
    seen = {r.path for r in model_rows if r.split in ("train", "val")}
    manifest_group = {r.path: r.group for r in model_rows}
    records = []
    for r in load_dataset(root).records:
        if r.folder in folders and r.label and r.path not in seen:
            group = manifest_group.get(r.path) or r.group or Path(r.path).stem
            records.append(replace(r, group=group))
    return records


def folds_of(records: list[ImageRecord], folds: int, seed: int) -> list[list[int]]:
    from sklearn.model_selection import StratifiedGroupKFold

    parts = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(
        records, [r.label for r in records], [r.group for r in records]
    )
    return [list(test) for _, test in parts]


def drawn(records: list[ImageRecord], shots: str, seed: int) -> list[ImageRecord]:
    if shots == "all":
        return records
    rng = random.Random(seed)
    by_label = defaultdict(list)
    for r in sorted(records, key=lambda r: r.path):
        by_label[r.label].append(r)
    return [
        r
        for label in sorted(by_label)
        for r in rng.sample(by_label[label], min(int(shots), len(by_label[label])))
    ]


def reading(classifier, images: np.ndarray, labels: list[str]) -> dict:
    """What a model (with its site profile, if any) does on labelled images: per image right,
    covered by its set, set size, answered."""
    outputs = classifier.outputs(images)
    truth = np.array([classifier.classes.index(label) for label in labels])
    predicted = outputs.probabilities.argmax(axis=1)
    chosen = answered(
        outputs.probabilities, outputs.sets, outputs.in_distribution, outputs.familiar
    )
    return {
        "labels": labels,
        "right": (predicted == truth).tolist(),
        "covered": outputs.sets[np.arange(len(truth)), truth].tolist(),
        "set_size": outputs.sets.sum(axis=1).tolist(),
        "answered": chosen.tolist(),
    }


def accuracy(classifier, images: np.ndarray, labels: list[str]) -> float:
    truth = np.array([classifier.classes.index(label) for label in labels])
    return float((classifier.logits(images).argmax(axis=1) == truth).mean())


def summary(runs: list[dict]) -> dict:
    """Pooled over folds: accuracy with its interval, recall per class, coverage, set size,
    answered share and accuracy, forgetting."""
    labels = [x for r in runs for x in r["labels"]]
    right = np.array([x for r in runs for x in r["right"]])
    covered = np.array([x for r in runs for x in r["covered"]])
    size = np.array([x for r in runs for x in r["set_size"]])
    chosen = np.array([x for r in runs for x in r["answered"]])
    n = len(labels)
    recall = {}
    for label in sorted(set(labels)):
        members = np.array([x == label for x in labels])
        recall[label] = {"n": int(members.sum()), "recall": round(float(right[members].mean()), 4)}
    forgetting = [
        r["val_accuracy_after"] - r["val_accuracy_before"]
        for r in runs
        if "val_accuracy_after" in r
    ]
    return {
        "n": n,
        "accuracy": round(float(right.mean()), 4),
        "accuracy_ci95": [round(x, 4) for x in wilson_interval(int(right.sum()), n)],
        "recall": recall,
        "coverage": round(float(covered.mean()), 4),
        "mean_set_size": round(float(size.mean()), 3),
        "answered": round(float(chosen.mean()), 4),
        "answered_accuracy": round(float(right[chosen].mean()), 4) if chosen.any() else None,
        "site_train_scans": [r.get("site_train", 0) for r in runs],
        "site_calibration_scans": [r.get("site_calibration", 0) for r in runs],
        "forgetting_points": round(100 * float(np.mean(forgetting)), 2) if forgetting else None,
        "adapt_seconds": [r.get("seconds") for r in runs],
    }


def main() -> None:
    limit_blas_threads()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--site-folder", nargs="+", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--shots", default="0,10,25,50,all")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--only-fold", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--frozen-blocks", type=int, default=AdaptConfig.frozen_blocks)
    parser.add_argument("--epochs", type=int, default=AdaptConfig.epochs)
    parser.add_argument("--learning-rate", type=float, default=AdaptConfig.learning_rate)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    config = AdaptConfig(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        frozen_blocks=args.frozen_blocks,
        seed=args.seed,
    )
    root = dataset_root(args.data)
    base_meta = read_meta(args.model)
    model_rows = rows_for(read_model_manifest(args.model), root)
    records = site_images(root, model_rows, set(args.site_folder))
    parts = folds_of(records, args.folds, args.seed)
    replayable = [r for r in model_rows if r.split in ("train", "val")]
    val_rows = [r for r in model_rows if r.split == "val"]
    base = load_classifier(args.model)
    size = base.image_size
    val_images = prepare_images(root, [r.path for r in val_rows], size, progress=False)
    val_labels = [r.label for r in val_rows]
    val_before = accuracy(base, val_images, val_labels)
    args.work.mkdir(parents=True, exist_ok=True)
    results_file = args.work / "results.jsonl"
    done = {}
    if results_file.is_file():
        for line in results_file.read_text().splitlines():
            run = json.loads(line)
            done[(run["fold"], run["shots"])] = run
    tag = f"f{config.frozen_blocks}-e{config.epochs}-lr{config.learning_rate:g}"
    for fold, test in enumerate(parts):
        if args.only_fold is not None and fold != args.only_fold:
            continue
        tested = [records[i] for i in test]
        held = set(test)
        pool = [r for i, r in enumerate(records) if i not in held]
        images = prepare_images(root, [r.path for r in tested], size, progress=False)
        labels = [r.label for r in tested]
        for shots in args.shots.split(","):
            if (fold, shots) in done:
                continue
            started = time.perf_counter()
            run = {"fold": fold, "shots": shots, "recipe": tag, "test": len(tested)}
            if shots == "0":
                run |= reading(base, images, labels)
                calibration = drawn(pool, "all", args.seed)
                calibration = random.Random(args.seed).sample(
                    calibration, min(CALIBRATION_ONLY, len(calibration))
                )
                cal_images = prepare_images(
                    root, [r.path for r in calibration], size, progress=False
                )
                profile = fit_site_profile(
                    "site",
                    base.logits(cal_images),
                    np.array([base.classes.index(r.label) for r in calibration]),
                    base.classes,
                    model_sha256="",
                    model_temperature=base.temperature,
                )
                calibrated = reading(with_site(base, profile), images, labels)
                run["calibrated_only"] = {
                    k: calibrated[k] for k in ("covered", "set_size", "answered")
                }
            else:
                chosen = drawn(pool, shots, args.seed + fold)
                site = Site("site", root, chosen, {r.path: r.group for r in chosen})
                rows, _ = site_rows(site, config)
                manifest = adaptation_rows(rows, replayable, config)
                out = args.work / f"model-{fold}-{shots}"
                from brat.training.train import train

                train(
                    root,
                    manifest,
                    out,
                    train_config(base_meta.config, args.model, config),
                    progress=False,
                )
                calibration = [r for r in rows if r.split == "val"]
                if calibration:
                    calibrate_site(load_classifier(out), root, calibration, "site", [], False)
                adapted = load_classifier(out, site="site" if calibration else None)
                run |= reading(adapted, images, labels)
                run["site_train"] = sum(r.split == "train" for r in rows)
                run["site_calibration"] = len(calibration)
                run["val_accuracy_before"] = val_before
                run["val_accuracy_after"] = accuracy(adapted, val_images, val_labels)
                if calibration and adapted.site.conformal is not None:
                    # The same calibration scans with the least ambiguous set score instead.
                    lac = fit_conformal(
                        adapted.site.conformal.probabilities, adapted.site.conformal.labels, "lac"
                    )
                    least = reading(replace(adapted, conformal=lac), images, labels)
                    run["least_ambiguous"] = {
                        k: least[k] for k in ("covered", "set_size", "answered")
                    }
                shutil.rmtree(out, ignore_errors=True)
            run["seconds"] = round(time.perf_counter() - started, 1)
            with results_file.open("a") as handle:
                handle.write(json.dumps(run) + "\n")
            done[(fold, shots)] = run
            right = np.mean(run["right"])
            print(
                f"fold {fold} shots {shots}: accuracy {right:.3f} ({run['seconds']} s)", flush=True
            )
    by_shots = defaultdict(list)
    for (_, shots), run in sorted(done.items()):
        by_shots[shots].append(run)
    report = {
        "model": str(args.model),
        "recipe": tag,
        "site_images": len(records),
        "site_classes": dict(Counter(r.label for r in records)),
        "runs": len(done),
        "pooled": {shots: summary(runs) for shots, runs in by_shots.items()},
    }
    for shots, runs in by_shots.items():
        lac = [dict(r, **r["least_ambiguous"]) for r in runs if "least_ambiguous" in r]
        if lac:
            report["pooled"][f"{shots}, least ambiguous sets"] = summary(lac)
    if "0" in by_shots:
        calibrated = [dict(r, **r["calibrated_only"]) for r in by_shots["0"]]
        report["pooled"]["0+calibration"] = summary(calibrated)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
