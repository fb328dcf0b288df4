from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brat.data.dataset import Dataset, ImageRecord
from brat.data.duplicates import DuplicateReport
from brat.data.manifest import read_manifest, write_manifest
from brat.data.split import SplitConfig, assign_groups, make_split
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
    result = make_split(dataset, DuplicateReport([], near), SplitConfig(seed=seed), set())
    split_of = {row.path: row.split for row in result.rows}
    assert len(result.rows) == len(records)
    for g in {r.group for r in records}:
        assert len({split_of[r.path] for r in records if r.group == g}) == 1
    for cluster in near:
        assert len({split_of[p] for p in cluster}) == 1
    group_split: dict[str, set] = defaultdict(set)
    for row in result.rows:
        group_split[row.group].add(row.split)
    assert all(len(s) == 1 for s in group_split.values())


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
    header = "path,label,split,group,plane,plane_source,mask,original_split"
    assert path.read_text().splitlines()[0] == header
    (tmp_path / "bad.csv").write_text("path,label\na.png,glioma_tumor\n")
    with pytest.raises(DatasetError, match="lacks the columns"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="ratios"):
        SplitConfig(ratios=(0.5, -0.1, 0.6))
