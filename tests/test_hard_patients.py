"""The cross-run hard-patient analysis on hand-made cross-validation folders."""

from __future__ import annotations

import json

import pytest

from benchmarks.hard_patients import hard_patients
from brat.data.manifest import ManifestRow, write_manifest

# Group -> (label, held-out slices); one round holds a and b out, the other c.
ROUNDS = {
    "fold-1": {"a": ("glioma_tumor", 4), "b": ("no_tumor", 2)},
    "fold-2": {"c": ("pituitary_tumor", 4)},
}


def write_run(work, misread: dict[str, int]) -> None:
    """A cross-validation folder whose rounds misread the first `misread[group]` slices."""
    for round_name, groups in ROUNDS.items():
        rows, wrong = [], []
        for group, (label, n) in groups.items():
            paths = [f"{label}/{group}{k}.jpg" for k in range(n)]
            rows += [ManifestRow(p, label, "test", group) for p in paths]
            rows.append(ManifestRow(f"{label}/{group}-train.jpg", label, "train", group + "t"))
            wrong += [{"path": p, "label": label} for p in paths[: misread.get(group, 0)]]
        (work / round_name / "model").mkdir(parents=True)
        write_manifest(rows, work / round_name / "model" / "manifest.csv")
        (work / round_name / "evaluation.json").write_text(json.dumps({"misclassified": wrong}))


def test_groups_misread_in_every_run_and_their_share_of_the_errors(tmp_path) -> None:
    write_run(first := tmp_path / "first", {"a": 2, "b": 2, "c": 1})
    write_run(second := tmp_path / "second", {"a": 3, "c": 2})
    report = hard_patients([first, second])

    assert report["runs"]["first"] == {
        "n": 10,
        "errors": 5,
        "accuracy": 0.5,
        "groups": 3,
        "groups_with_errors": 3,
    }
    half = report["misread_in_every_run_0.5"]
    assert half["groups"] == [
        {"group": "a", "label": "glioma_tumor", "n": 4, "misread": {"first": 2, "second": 3}}
    ]  # b: right in the second run; c: 1 of 4 in the first
    assert half["runs"]["first"] == {
        "errors": 2,
        "share_of_errors": 0.4,
        "accuracy_with_them_right": 0.7,
    }
    quarter = report["misread_in_every_run_0.25"]
    assert [g["group"] for g in quarter["groups"]] == ["a", "c"]
    assert quarter["runs"]["second"]["share_of_errors"] == 1.0


def test_a_folder_without_rounds_is_refused(tmp_path) -> None:
    with pytest.raises(SystemExit, match="no cross-validation round"):
        hard_patients([tmp_path])
