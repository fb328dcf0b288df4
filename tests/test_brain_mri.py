"""Integration tests on ../shared/datasets/brain-mri (skipped when it is absent)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from brat.data.scan import scan_dataset, scan_summary
from brat.data.split import SplitConfig, make_split

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def scanned(brain_mri: Path):
    return scan_dataset(brain_mri, progress=False)


def test_scan_counts_and_duplicates(scanned) -> None:
    summary = scan_summary(scanned)
    assert summary.images == 4564
    assert summary.classes == {
        "glioma_tumor": 1426,
        "meningioma_tumor": 708,
        "no_tumor": 1500,
        "pituitary_tumor": 930,
    }
    assert summary.unreadable == []
    assert summary.planes["no_tumor/axial"] == 48
    # No figshare slice is merged with another: neighbouring slices of a patient stay apart.
    clustered = {p for c in scanned.duplicates.near_clusters for p in c}
    assert not [p for p in clustered if not p.startswith("no_tumor/")]
    # The 1,500 Br35H files hold a few hundred distinct images (mirrored copies merged too).
    br35h_distinct = 1500 - sum(len(c) - 1 for c in scanned.duplicates.near_clusters)
    assert 300 <= br35h_distinct <= 620


def test_known_copies_are_found(scanned, brain_mri: Path) -> None:
    rows = list(csv.DictReader((brain_mri / "metadata.csv").open()))
    groups = defaultdict(list)
    for row in rows:
        if row["source"].startswith("br35h"):
            groups[row["group"]].append(row["path"])
    index = scanned.duplicates.near_cluster_index()
    multi = [g for g in groups.values() if len(g) > 1]
    together = sum(1 for g in multi if len({index.get(p, p) for p in g}) == 1)
    # Measured: 275 of 334 groups are found whole; the rest are sharpened or re-cropped copies.
    assert together / len(multi) > 0.8


def test_split_respects_patients_and_ratios(scanned) -> None:
    result = make_split(scanned.dataset, scanned.duplicates, SplitConfig(seed=7), set())
    patient_splits = defaultdict(set)
    group_of = {r.path: r.group for r in scanned.dataset.records}
    for row in result.rows:
        patient_splits[group_of[row.path]].add(row.split)
    assert all(len(s) == 1 for s in patient_splits.values())
    counts = Counter(row.split for row in result.rows)
    assert abs(counts["train"] / 4564 - 0.7) < 0.02
    assert abs(counts["test"] / 4564 - 0.1) < 0.02


def test_localize_measures_the_shipped_model_on_real_masks(brain_mri: Path) -> None:
    from brat.evaluation.localize import localize
    from brat.inference.analysis import explainer_for

    report = localize(
        brain_mri,
        explainer_for(),
        "test",
        methods=("gradcam", "layercam", "gated-layercam"),
        limit=40,
        progress=False,
    )
    summary = report.methods["gradcam"]
    assert report.images == 40 and summary["n"] == 40
    assert 0.0 <= summary["pointing_game"] <= 1.0
    assert 0.0 < summary["mask_share"] < 0.5
    assert len(summary["worst"]) == 10 and set(summary["per_class"]) <= {
        "glioma_tumor",
        "meningioma_tumor",
        "pituitary_tumor",
    }
    # Every image gets a plane (hand label, else the plane classifier).
    assert sum(group["n"] for group in summary["per_plane"].values()) == 40
    # The finer LayerCAM points at the tumour more often (whole test split: 85% against 58%).
    layercam = report.methods["layercam"]
    assert layercam["pointing_game"] > summary["pointing_game"]
    assert layercam["energy_over_share"] > summary["energy_over_share"]
    # Gated by Grad-CAM, its heat gathers further on the tumour (validation split: 7.7x against
    # LayerCAM's 4.7x the area share).
    gated = report.methods["gated-layercam"]
    assert gated["energy_over_share"] > layercam["energy_over_share"]
