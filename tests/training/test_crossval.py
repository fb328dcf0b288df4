from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brat.data.dataset import Dataset, ImageRecord
from brat.data.duplicates import DuplicateReport
from brat.labels import CLASSES
from brat.training.crossval import fold_manifests

groups_strategy = st.lists(
    st.tuples(st.sampled_from(CLASSES), st.integers(1, 6)), min_size=8, max_size=40
)


def scanned_from(records, near=()) -> SimpleNamespace:
    return SimpleNamespace(
        dataset=Dataset(root=Path(), records=records, layout="class-folders"),
        duplicates=DuplicateReport([], list(near)),
        unreadable={},
    )


@settings(max_examples=50, deadline=None)
@given(
    groups=groups_strategy,
    folds=st.integers(3, 6),
    seed=st.integers(0, 100),
    val_share=st.sampled_from([1.0, 0.5, 0.3]),
    data=st.data(),
)
def test_folds_keep_groups_and_clusters_whole(groups, folds, seed, val_share, data) -> None:
    records = [
        ImageRecord(path=f"{label}/g{g}_{k}.png", label=label, group=f"p{g}")
        for g, (label, size) in enumerate(groups)
        for k in range(size)
    ]
    paths = [r.path for r in records]
    near = data.draw(st.lists(st.lists(st.sampled_from(paths), min_size=2, max_size=3), max_size=5))
    scanned = scanned_from(records, near)
    labels = {r.path: r.label for r in records}
    conflicting = {p for c in near if len({labels[q] for q in c}) > 1 for p in c}
    if len(conflicting) == len(paths):
        return  # copies under different labels are left out: nothing would be left
    rounds = fold_manifests(scanned, folds, seed, val_share)
    assert len(rounds) == folds
    tested = [row.path for rows in rounds for row in rows if row.split == "test"]
    # Every image is tested exactly once, but copies filed under different labels: never.
    assert sorted(tested) == sorted(set(paths) - conflicting)
    for i, rows in enumerate(rounds):
        role = {row.path: row.split for row in rows}
        for g in {r.group for r in records}:
            assert len({role[r.path] for r in records if r.group == g and r.path in role}) <= 1
        for cluster in near:
            assert len({role[p] for p in cluster if p in role}) <= 1
        following = {r.path for r in rounds[(i + 1) % folds] if r.split == "test"}
        validation = {r.path for r in rows if r.split == "val"}
        if val_share == 1.0:
            assert validation == following
        else:  # part of the next fold validates, the rest of it trains
            assert validation <= following
            assert all(role[p] == "train" for p in following - validation)
    # A smaller validation share leaves the test folds as they are.
    whole = fold_manifests(scanned, folds, seed)
    for rows, rows_whole in zip(rounds, whole, strict=True):
        assert [r.split == "test" for r in rows] == [r.split == "test" for r in rows_whole]


def test_half_validation_share_trains_on_a_tenth_more_of_the_images() -> None:
    """Five folds, half a fold validating: about 70/10/20 instead of 60/20/20."""
    records = [
        ImageRecord(path=f"{label}/g{g}.png", label=label, group=f"{label}{g}")
        for label in CLASSES
        for g in range(50)
    ]
    scanned = scanned_from(records)
    for whole, half in zip(
        fold_manifests(scanned, 5, 0), fold_manifests(scanned, 5, 0, 0.5), strict=True
    ):
        sizes = {split: sum(r.split == split for r in half) for split in ("train", "val", "test")}
        assert sizes == {"train": 140, "val": 20, "test": 40}
        assert sum(r.split == "train" for r in whole) == 120
        for label in CLASSES:  # each class keeps its share of the validation images
            assert sum(r.split == "val" and r.label == label for r in half) == 5


@pytest.mark.parametrize("val_share", [0.0, -0.5, 1.5])
def test_validation_share_outside_zero_to_one_is_refused(val_share) -> None:
    records = [ImageRecord(path=f"{c}/a.png", label=c, group=c) for c in CLASSES]
    with pytest.raises(ValueError, match="val_share"):
        fold_manifests(scanned_from(records), 3, 0, val_share)
