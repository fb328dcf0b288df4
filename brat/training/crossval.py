"""Patient-level cross-validation: group-aware folds, one model per fold, mean and spread.

Groups are the metadata groups (patients) joined with near-duplicate clusters, as in the split, so
no patient and no copy of an image is in two folds. Fold i is the test set of round i, fold i+1 its
validation set (early stopping and calibration), the rest its training set. With a `val_share`
below 1, only that share of fold i+1's groups validates and the rest trains too: with 5 folds and
0.5, each round trains on 70% of the images, as the shipped split does, instead of 60%, and the test
folds stay the same. Each round's model and evaluation stay in the work folder: a crossval run that
stops resumes at the round it was in.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from brat.data.manifest import ManifestRow, manifest_row
from brat.data.scan import ScannedDataset
from brat.data.split import assign_groups, join_groups
from brat.errors import DatasetError
from brat.evaluation.crossval_report import CrossvalReport, summarise
from brat.evaluation.evaluate import evaluate
from brat.files import atomic_write_json
from brat.inference.classifier import load_classifier
from brat.training.train import TrainConfig, TrainingEvents, manifest_digest, train

RESULT_FILE = "evaluation.json"


def fold_manifests(
    scanned: ScannedDataset, folds: int, seed: int, val_share: float = 1.0
) -> list[list[ManifestRow]]:
    """One manifest per round: test = fold i, val = `val_share` of fold i+1, train = the rest."""
    if folds < 3:
        raise ValueError(f"`folds` must be >= 3 (train, val and test). Received: folds={folds}")
    if not 0 < val_share <= 1:
        raise ValueError(f"`val_share` must be in (0, 1]. Received: val_share={val_share}")
    unreadable = set(scanned.unreadable)
    records = [r for r in scanned.dataset.records if r.label and r.path not in unreadable]
    # Copies filed under different labels are left out, as in `brat.data.split.make_split`.
    conflicts = scanned.duplicates.label_conflicts({r.path: r.label for r in records})
    conflicting = {path for cluster in conflicts for path in cluster}
    records = [r for r in records if r.path not in conflicting]
    if not records:
        raise DatasetError("The dataset has no labelled, readable images.")
    group_of = join_groups(records, scanned.duplicates)
    labels: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        labels[group_of[record.path]][record.label] += 1
    groups = [(name, c.most_common(1)[0][0], sum(c.values())) for name, c in labels.items()]
    fold_of = assign_groups(groups, (1.0,) * folds, seed)
    manifests = []
    for i in range(folds):
        val_fold = (i + 1) % folds
        # Part 0 of the validation fold validates; part 1 (empty when val_share is 1) trains.
        in_val_fold = [g for g in groups if fold_of[g[0]] == val_fold]
        val_part = assign_groups(in_val_fold, (val_share, 1.0 - val_share), seed + val_fold)
        split_of = {
            name: "test" if fold == i else "val" if val_part.get(name) == 0 else "train"
            for name, fold in fold_of.items()
        }
        manifests.append(
            [manifest_row(r, split_of[group_of[r.path]], group_of[r.path]) for r in records]
        )
    return manifests


def crossval(
    scanned: ScannedDataset,
    config: TrainConfig,
    folds: int,
    work: str | Path,
    *,
    seed: int = 42,
    val_share: float = 1.0,
    events: TrainingEvents | None = None,
    progress: bool = True,
    cluster: str | None = None,
) -> CrossvalReport:
    """Train and evaluate every round; the report has each round's metrics, mean and std.

    With `cluster` (a Dask address, `brat.cluster`), the rounds not done yet train side by side on
    its workers, each round as it would here (the work folder must be shared with the workers)."""
    work = Path(work)
    root = scanned.dataset.root
    manifests = fold_manifests(scanned, folds, seed, val_share)
    results = {}
    for i, rows in enumerate(manifests, start=1):
        result = _read_json(work / f"fold-{i}" / RESULT_FILE)
        if result and result.get("manifest_sha256") == manifest_digest(rows):
            results[i] = result
    todo = [i for i in range(1, folds + 1) if i not in results]
    if cluster and todo:
        from brat.cluster import dask_client

        if events:
            events.on_status(f"Training rounds {todo} on the cluster at {cluster}")
        with dask_client(cluster) as client:
            futures = {
                i: client.submit(
                    run_round, root, manifests[i - 1], config, work / f"fold-{i}", pure=False
                )
                for i in todo
            }
            results |= {i: future.result() for i, future in futures.items()}
    for i in todo:
        if i not in results:
            if events:
                events.on_status(f"Cross-validation round {i} of {folds}")
            results[i] = run_round(
                root, manifests[i - 1], config, work / f"fold-{i}", events, progress
            )
    return summarise([results[i] for i in range(1, folds + 1)], config, seed, val_share)


def run_round(
    root: Path,
    rows: list[ManifestRow],
    config: TrainConfig,
    round_dir: Path,
    events: TrainingEvents | None = None,
    progress: bool = False,
) -> dict:
    """Train one round's model in `round_dir` and evaluate it on its test split; the result is
    also written to `round_dir`, so a rerun skips the round."""
    trained = train(root, rows, round_dir / "model", config, events=events, progress=progress)
    if trained.out is None:
        raise DatasetError(f"Round {round_dir.name} stopped before its first epoch ended.")
    result = evaluate(root, load_classifier(trained.out), "test", progress=progress).to_json()
    result = {
        **{k: v for k, v in result.items() if k != "misclassified"},
        "manifest_sha256": manifest_digest(rows),
        "training_seconds": round(trained.seconds, 1),
        "best_epoch": trained.best_epoch,
        "misclassified": result["misclassified"],
    }
    atomic_write_json(round_dir / RESULT_FILE, result)
    return result


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
