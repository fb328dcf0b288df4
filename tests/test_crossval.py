from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from brat.crossval import fold_manifests
from brat.dataset import Dataset, ImageRecord
from brat.duplicates import DuplicateReport
from brat.labels import CLASSES

groups_strategy = st.lists(
    st.tuples(st.sampled_from(CLASSES), st.integers(1, 6)), min_size=8, max_size=40
)


@settings(max_examples=50, deadline=None)
@given(groups=groups_strategy, folds=st.integers(3, 6), seed=st.integers(0, 100), data=st.data())
def test_folds_keep_groups_and_clusters_whole(groups, folds, seed, data) -> None:
    records = [
        ImageRecord(path=f"{label}/g{g}_{k}.png", label=label, group=f"p{g}")
        for g, (label, size) in enumerate(groups)
        for k in range(size)
    ]
    paths = [r.path for r in records]
    near = data.draw(st.lists(st.lists(st.sampled_from(paths), min_size=2, max_size=3), max_size=5))
    scanned = SimpleNamespace(
        dataset=Dataset(root=Path(), records=records, layout="class-folders"),
        duplicates=DuplicateReport([], near),
        unreadable={},
    )
    rounds = fold_manifests(scanned, folds, seed)
    assert len(rounds) == folds
    tested = [row.path for rows in rounds for row in rows if row.split == "test"]
    assert sorted(tested) == sorted(paths)  # every image is tested exactly once
    for i, rows in enumerate(rounds):
        role = {row.path: row.split for row in rows}
        for g in {r.group for r in records}:
            assert len({role[r.path] for r in records if r.group == g}) == 1
        for cluster in near:
            assert len({role[p] for p in cluster}) == 1
        following = rounds[(i + 1) % folds]
        assert {r.path for r in rows if r.split == "val"} == {
            r.path for r in following if r.split == "test"
        }
