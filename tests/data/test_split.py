from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brat.data.dataset import Dataset, ImageRecord
from brat.data.duplicates import DuplicateReport
from brat.data.manifest import read_manifest, write_manifest
from brat.data.split import SplitConfig, assign_groups, make_split, read_label_decisions
from brat.errors import DatasetError

LABELS = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")

groups_strategy = st.lists(
    st.tuples(st.sampled_from(LABELS), st.integers(min_value=1, max_value=25)),
    min_size=1,
    max_size=120,
)
ratios_strategy = st.tuples(st.floats(0.05, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))


@settings(max_examples=300, deadline=None)
@given(groups=groups_strategy, ratios=ratios_strategy, seed=st.integers(0, 2**32 - 1))
def test_every_split_is_within_one_group_of_its_target(groups, ratios, seed) -> None:
    named = [(f"g{i}", label, size) for i, (label, size) in enumerate(groups)]
    placement = assign_groups(named, ratios, seed)
    assert set(placement) == {name for name, _, _ in named}
    counts: dict[str, Counter] = defaultdict(Counter)
    largest: Counter = Counter()
    for name, label, size in named:
        counts[label][placement[name]] += size
        largest[label] = max(largest[label], size)
    for label, per_part in counts.items():
        total = sum(per_part.values())
        for part, ratio in enumerate(ratios):
            target = total * ratio / sum(ratios)
            assert abs(per_part[part] - target) < largest[label] + 1e-9, (label, part)
            if ratio == 0:
                assert per_part[part] == 0


def test_seed_changes_the_split_and_is_repeatable() -> None:
    named = [(f"g{i}", LABELS[i % 4], 1 + i % 5) for i in range(200)]
    first = assign_groups(named, (0.7, 0.2, 0.1), 1)
    assert first == assign_groups(named, (0.7, 0.2, 0.1), 1)
    assert first != assign_groups(named, (0.7, 0.2, 0.1), 2)


def _records(draw_groups, with_testing: bool = False) -> list[ImageRecord]:
    records = []
    for g, (label, size) in enumerate(draw_groups):
        for k in range(size):
            split = None
            if with_testing:
                split = "test" if (g % 5 == 0 and k == 0) else "train"
            records.append(
                ImageRecord(
                    path=f"{label}/g{g}_{k}.png", label=label, group=f"p{g}", original_split=split
                )
            )
    return records


@settings(max_examples=100, deadline=None)
@given(groups=groups_strategy, seed=st.integers(0, 1000), clusters=st.data())
def test_no_group_or_duplicate_cluster_crosses_splits(groups, seed, clusters) -> None:
    records = _records(groups)
    paths = [r.path for r in records]
    # Random near-duplicate clusters that join images of different groups.
    near = clusters.draw(
        st.lists(
            st.lists(st.sampled_from(paths), min_size=min(2, len(paths)), max_size=4, unique=True),
            max_size=10,
        )
    )
    dataset = Dataset(root=Path(), records=records, layout="class-folders")
    labels = {r.path: r.label for r in records}
    conflicting = {p for c in near if len({labels[q] for q in c}) > 1 for p in c}
    if len(conflicting) == len(records):
        with pytest.raises(DatasetError, match="no labelled"):
            make_split(dataset, DuplicateReport([], near), SplitConfig(seed=seed), set())
        return
    result = make_split(dataset, DuplicateReport([], near), SplitConfig(seed=seed), set())
    split_of = {row.path: row.split for row in result.rows}
    # Copies filed under different labels are left out; every other image is split.
    assert set(split_of) == set(labels) - conflicting
    assert {p for c in result.conflicts for p in c} == conflicting
    assert set(result.excluded) == conflicting
    for g in {r.group for r in records}:
        assert len({split_of[r.path] for r in records if r.group == g and r.path in split_of}) <= 1
    for cluster in near:
        assert len({split_of[p] for p in cluster if p in split_of}) <= 1
    group_split: dict[str, set] = defaultdict(set)
    for row in result.rows:
        group_split[row.group].add(row.split)
    assert all(len(s) == 1 for s in group_split.values())


@settings(max_examples=60, deadline=None)
@given(groups=groups_strategy, seed=st.integers(0, 1000), clusters=st.data())
def test_copies_across_folders_stay_together_and_new_images_are_held_out(
    groups, seed, clusters
) -> None:
    """Two folders read as one: an image of folder B copied from folder A sits with its original,
    and with `hold_out="B"` only B's images with no copy in A are tested."""
    folder_of = {f"p{g}": "A" if g % 3 else "B" for g in range(len(groups))}  # by patient
    records = [
        replace(r, folder=folder_of[r.group], path=f"{folder_of[r.group]}/{r.path}")
        for r in _records(groups)
    ]
    by_folder = {f: [r.path for r in records if r.folder == f] for f in ("A", "B")}
    if not by_folder["A"] or not by_folder["B"]:
        return
    labels = {r.path: r.label for r in records}
    near = [  # copies across the folders, under the same label (no conflicts)
        pair
        for pair in clusters.draw(
            st.lists(st.tuples(*(st.sampled_from(by_folder[f]) for f in ("A", "B"))), max_size=8)
        )
        if labels[pair[0]] == labels[pair[1]]
    ]
    dataset = Dataset(root=Path(), records=records, layout="metadata")
    config = SplitConfig(seed=seed, hold_out="B")
    result = make_split(dataset, DuplicateReport([], [list(p) for p in near]), config, set())
    split_of = {row.path: row.split for row in result.rows}
    assert set(split_of) == set(labels)
    copied = {p for pair in near for p in pair}
    group_of = {r.path: r.group for r in records}
    for pair in near:
        assert split_of[pair[0]] == split_of[pair[1]] != "test"
    for path in by_folder["A"]:
        assert split_of[path] != "test"
    tested = {p for p, s in split_of.items() if s == "test"}
    joined = {group_of[p] for p in copied}  # a copied image's patient group trains with it
    assert tested == {p for p in by_folder["B"] if p not in copied and group_of[p] not in joined}


def test_label_decisions_settle_conflicting_copies(tmp_path: Path) -> None:
    records = _records([("glioma_tumor", 2), ("meningioma_tumor", 2), ("no_tumor", 4)])
    dataset = Dataset(root=Path(), records=records, layout="class-folders")
    near = DuplicateReport([], [["glioma_tumor/g0_0.png", "meningioma_tumor/g1_0.png"]])
    left_out = make_split(dataset, near, SplitConfig(), set())
    assert left_out.conflicts == [["glioma_tumor/g0_0.png", "meningioma_tumor/g1_0.png"]]
    assert "meningioma_tumor/g1_0.png" not in {row.path for row in left_out.rows}
    (tmp_path / "decisions.csv").write_text(
        "path,label\nmeningioma_tumor/g1_0.png,glioma\nno_tumor/g2_0.png,exclude\n"
    )
    decisions = read_label_decisions(tmp_path / "decisions.csv")
    settled = make_split(dataset, near, SplitConfig(), set(), decisions)
    labels = {row.path: row.label for row in settled.rows}
    assert settled.conflicts == [] and labels["meningioma_tumor/g1_0.png"] == "glioma_tumor"
    assert "no_tumor/g2_0.png" not in labels and "no_tumor/g2_0.png" in settled.excluded
    (tmp_path / "bad.csv").write_text("path,label\na.png,tumour\n")
    with pytest.raises(DatasetError, match="needs a path and a label"):
        read_label_decisions(tmp_path / "bad.csv")


@pytest.mark.parametrize("leaks", ["drop", "move"])
def test_existing_testing_folder_is_kept_and_leaks_resolved(leaks: str) -> None:
    records = _records([(LABELS[i % 4], 3) for i in range(40)], with_testing=True)
    dataset = Dataset(root=Path(), records=records, layout="kaggle-splits")
    result = make_split(dataset, DuplicateReport([], []), SplitConfig(leaks=leaks), set())
    split_of = {row.path: row.split for row in result.rows}
    testing = [r.path for r in records if r.original_split == "test"]
    assert all(split_of[p] == "test" for p in testing)
    leaked = [
        r.path
        for r in records
        if r.original_split == "train" and int(r.path.split("/g")[1].split("_")[0]) % 5 == 0
    ]
    assert len(leaked) == 16
    if leaks == "drop":
        assert sorted(result.dropped_leaks) == sorted(leaked)
        assert not set(leaked) & set(split_of)
    else:
        assert sorted(result.moved_leaks) == sorted(leaked)
        assert all(split_of[p] == "test" for p in leaked)
    others = {
        split_of[r.path]
        for r in records
        if r.path in split_of and r.path not in leaked and r.original_split == "train"
    }
    assert others == {"train", "val"}


def test_manifest_round_trip_and_validation(tmp_path: Path) -> None:
    records = _records([(label, 2) for label in LABELS])
    dataset = Dataset(root=Path(), records=records, layout="class-folders")
    result = make_split(
        dataset, DuplicateReport([], []), SplitConfig(), unreadable={records[0].path}
    )
    assert result.excluded == [records[0].path]
    path = tmp_path / "out" / "manifest.csv"
    write_manifest(result.rows, path)
    assert read_manifest(path) == result.rows
    header = "path,label,split,group,plane,plane_source,mask,original_split,source,folder"
    assert path.read_text().splitlines()[0] == header
    (tmp_path / "bad.csv").write_text("path,label\na.png,glioma_tumor\n")
    with pytest.raises(DatasetError, match="lacks the columns"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="ratios"):
        SplitConfig(ratios=(0.5, -0.1, 0.6))
