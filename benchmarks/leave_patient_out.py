"""Leave patients out over whole volumes: fold manifests, then each volume read by the model that
did not train on its patient.

    python -m benchmarks.leave_patient_out manifests MANIFEST.csv --folders F [F ...] \\
        --fold G,G --fold G,G ... --out-dir DIR
    python -m benchmarks.leave_patient_out evaluate --volumes ROOT CSV [--volumes ROOT CSV] \\
        --model DIR G,G --model DIR G,G ... [--rule RULE] [--json OUT]

`manifests` writes DIR/foldK.csv for each --fold (K from 1) and DIR/fold0.csv: the rows of
MANIFEST (`brat split`'s) whose folder is one of --folders (the slices cut from the volumes,
`brat slices`) are test rows when their patient group is in the fold and train rows otherwise
(fold0: all train, for the model trained on everything); every other row keeps its split. Train
one model per manifest (`brat train ... --manifest DIR/foldK.csv`). `evaluate` reads each group's
volumes with the model that held it out (`brat.evaluation.volumes`) and pools the studies, and the
per-level slice counts of each volume folder. Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from brat.data.volumes import find_volumes
from brat.evaluation.volumes import evaluate_volumes, level_table, study_summary
from brat.inference.analysis import explainer_for
from brat.inference.serving import limit_blas_threads
from brat.labels import STUDY_RULES


def write_fold_manifests(
    manifest: Path, folders: list[str], folds: list[set[str]], out_dir: Path
) -> list[Path]:
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for k, held_out in enumerate([set(), *folds]):
        path = out_dir / f"fold{k}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                if row["folder"] in folders:
                    group = row["group"].split(":", 1)[-1]  # `brat split` prefixes the folder
                    row = {**row, "split": "test" if group in held_out else "train"}
                writer.writerow(row)
        written.append(path)
    return written


def pooled(volume_sets: list[tuple[Path, Path]], models: list[tuple[Path, set[str]]], rule: str):
    outcomes, slices = [], {Path(root).name: [] for root, _ in volume_sets}
    for model, groups in models:
        explainer = explainer_for(model)
        for root, labels in volume_sets:
            volumes = [v for v in find_volumes(root, labels) if v.group in groups]
            if volumes:
                report = evaluate_volumes(root, volumes, explainer, rule=rule)
                outcomes += [{**o, "model": model.name} for o in report["outcomes"]]
                slices[Path(root).name] += report["per_slice"]
    return {
        "rule": rule,
        **study_summary(outcomes),
        "slices_by_level": {name: level_table(rows) for name, rows in slices.items()},
        "outcomes": outcomes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    folds = commands.add_parser("manifests")
    folds.add_argument("manifest", type=Path)
    folds.add_argument("--folders", nargs="+", required=True)
    folds.add_argument("--fold", action="append", required=True, metavar="G,G")
    folds.add_argument("--out-dir", type=Path, required=True)
    evaluate = commands.add_parser("evaluate")
    evaluate.add_argument("--volumes", nargs=2, action="append", required=True, type=Path)
    evaluate.add_argument("--model", nargs=2, action="append", required=True)
    evaluate.add_argument("--rule", choices=STUDY_RULES, default=STUDY_RULES[0])
    evaluate.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "manifests":
        fold_groups = [set(fold.split(",")) for fold in args.fold]
        paths = write_fold_manifests(args.manifest, args.folders, fold_groups, args.out_dir)
        print(json.dumps({"manifests": [str(p) for p in paths]}))
        return
    limit_blas_threads()
    models = [(Path(model), set(groups.split(","))) for model, groups in args.model]
    report = pooled([tuple(v) for v in args.volumes], models, args.rule)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text)
    print(json.dumps({k: v for k, v in report.items() if k != "outcomes"}, indent=1))


if __name__ == "__main__":
    main()
