"""Which patients does every cross-validation run misread, whatever the recipe? Prints JSON.

    python -m benchmarks.hard_patients WORK [WORK ...]   # the --work folders of `brat crossval`

Each WORK folder is one cross-validation run: a round per fold-N/, with its evaluation.json and
its model folder's manifest (which images the round held out, and their patient groups). Runs of
different recipes on the same folds hold out the same images, so a group whose slices every run
misreads is a property of the data, not of a recipe. For each share (at least half, at least a
quarter of a group's held-out slices misread in every run) this lists those groups and, per run,
how many of its errors they make and its accuracy had it read them right.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from brat.data.manifest import read_manifest
from brat.model_folder import MANIFEST_FILE

SHARES = (0.5, 0.25)


def run_errors(work: Path) -> tuple[Counter, Counter, dict[str, str]]:
    """Held-out images per group, misread images per group, and each group's label."""
    held_out, misread, labels = Counter(), Counter(), {}
    for round_dir in sorted(work.glob("fold-*")):
        result = json.loads((round_dir / "evaluation.json").read_text(encoding="utf-8"))
        group_of = {}
        for row in read_manifest(round_dir / "model" / MANIFEST_FILE):
            if row.split == "test":
                group_of[row.path] = row.group
                held_out[row.group] += 1
                labels[row.group] = row.label
        misread.update(group_of[item["path"]] for item in result["misclassified"])
    if not held_out:
        raise SystemExit(f"{work} has no cross-validation round (fold-N/evaluation.json)")
    return held_out, misread, labels


def hard_patients(works: list[Path]) -> dict:
    runs = {work.name: run_errors(work) for work in works}
    report = {
        "runs": {name: _totals(held_out, misread) for name, (held_out, misread, _) in runs.items()}
    }
    for share in SHARES:
        hard = sorted(
            set.intersection(
                *(
                    {g for g in misread if misread[g] >= share * held_out[g]}
                    for held_out, misread, _ in runs.values()
                )
            )
        )
        held_out, _, labels = next(iter(runs.values()))
        report[f"misread_in_every_run_{share:g}"] = {
            "groups": [
                {
                    "group": group,
                    "label": labels[group],
                    "n": held_out[group],
                    "misread": {name: misread[group] for name, (_, misread, _) in runs.items()},
                }
                for group in hard
            ],
            "runs": {
                name: _their_errors(held_out, misread, hard)
                for name, (held_out, misread, _) in runs.items()
            },
        }
    return report


def _totals(held_out: Counter, misread: Counter) -> dict:
    n, errors = sum(held_out.values()), sum(misread.values())
    return {
        "n": n,
        "errors": errors,
        "accuracy": 1 - errors / n,
        "groups": len(held_out),
        "groups_with_errors": len(misread),
    }


def _their_errors(held_out: Counter, misread: Counter, groups: list[str]) -> dict:
    """How many of a run's errors `groups` make, and its accuracy had it read them right."""
    errors, theirs = sum(misread.values()), sum(misread[g] for g in groups)
    return {
        "errors": theirs,
        "share_of_errors": theirs / errors if errors else 0.0,
        "accuracy_with_them_right": 1 - (errors - theirs) / sum(held_out.values()),
    }


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m benchmarks.hard_patients WORK [WORK ...]")
    print(json.dumps(hard_patients([Path(a) for a in argv]), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
