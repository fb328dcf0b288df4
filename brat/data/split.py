"""Group-aware, class-stratified, seeded splits written to a manifest CSV.

The unit of splitting is a *group*: images joined by a metadata group (a patient, or known copies)
or by a near-duplicate cluster, transitively. A group never crosses splits. Within each class,
groups are placed largest first into the split that still needs the most images of that class,
so every split's class count stays within one group's size of its target.

When the folder came with Training/ and Testing/, Testing stays the test set by default, Training is
split into train and validation, and the copies of test images found in Training (leaks) are either
dropped from the manifest or moved to the test split.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from brat.data.dataset import Dataset
from brat.data.duplicates import DuplicateReport
from brat.data.manifest import SPLITS, ManifestRow, manifest_row
from brat.data.scan import scan_dataset
from brat.errors import DatasetError
from brat.labels import normalise_label

# A label decision that leaves a file out.
EXCLUDE = "exclude"


@dataclass(frozen=True)
class SplitConfig:
    # The original project's 70/20/10 train/validation/test split.
    ratios: tuple[float, float, float] = (0.7, 0.2, 0.1)
    seed: int = 42
    # A dataset published with a Testing/ folder is compared on it, so keep it as the test set.
    keep_existing_test: bool = True
    # Training copies of Testing images: "drop" leaves them out, "move" puts them in test.
    leaks: str = "drop"
    # A dataset folder (of several read as one) whose images with no copy in another folder all
    # go to the test split, the rest to train and validation: how a model does on a source it
    # never trained on (leave one source out).
    hold_out: str | None = None
    # (i, k): of the held-out folder's new images, test on fold i of k patient-grouped, class-
    # stratified folds and train on the others (cross-validated new-source accuracy).
    hold_out_fold: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.hold_out_fold is not None:
            fold, folds = self.hold_out_fold
            if not self.hold_out or folds < 2 or not 0 <= fold < folds:
                raise ValueError(
                    "`hold_out_fold` needs `hold_out` and a fold i of k folds, 0 <= i < k, k >= 2. "
                    f"Received: hold_out={self.hold_out!r}, hold_out_fold={self.hold_out_fold}"
                )
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or sum(self.ratios) <= 0:
            raise ValueError(
                f"`ratios` must be three non-negative numbers. Received: ratios={self.ratios}"
            )
        if self.leaks not in {"drop", "move"}:
            raise ValueError(f"`leaks` must be 'drop' or 'move'. Received: leaks={self.leaks!r}")


@dataclass(frozen=True)
class SplitResult:
    rows: list[ManifestRow]
    dropped_leaks: list[str]  # Training copies of Testing images left out ("drop")
    moved_leaks: list[str]  # Training copies of Testing images moved to test ("move")
    excluded: list[str]  # images without a class, or unreadable
    conflicts: list[list[str]] = field(
        default_factory=list
    )  # copies with different labels, left out


def assign_groups(
    groups: list[tuple[str, str, int]], ratios: tuple[float, ...], seed: int
) -> dict[str, int]:
    """Place groups (name, label, size) into len(ratios) parts; returns name -> part index.

    Per label, groups go largest first (ties in seeded random order) into a part that can take the
    whole group without passing its target; among those, one is drawn with probability
    proportional to its remaining need. When none can, the neediest part takes it. Every part then
    ends within one group's size of its target for that label.
    """
    rng = random.Random(seed)
    total_ratio = float(sum(ratios))
    by_label: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for name, label, size in groups:
        by_label[label].append((name, size))
    placement: dict[str, int] = {}
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        members.sort(key=lambda member: -member[1])
        total = sum(size for _, size in members)
        need = [total * r / total_ratio for r in ratios]
        for name, size in members:
            fitting = [i for i, n in enumerate(need) if n >= size and ratios[i] > 0]
            if fitting:
                part = rng.choices(fitting, weights=[need[i] for i in fitting])[0]
            else:
                most = max(need)
                part = rng.choice([i for i, n in enumerate(need) if n == most])
            need[part] -= size
            placement[name] = part
    return placement


def make_split(
    dataset: Dataset,
    duplicates: DuplicateReport,
    config: SplitConfig,
    unreadable: set[str],
    decisions: dict[str, str] | None = None,
    keep: dict[str, str] | None = None,
) -> SplitResult:
    """Split the labelled, readable images of `dataset` into train/val/test groups.

    Copies of one image filed under different labels (`DuplicateReport.label_conflicts`) are left
    out unless `decisions` (path -> label, or "exclude"; `read_label_decisions`) settles them.
    `keep` (path -> split, e.g. an earlier model's manifest) keeps those images where they were:
    a group holding one of them goes to its split (test before val before train, should a copy
    join groups of two splits), so the earlier held-out images stay held out.
    """
    keep = keep or {}
    records = [
        replace(r, label=decisions.get(r.path, r.label)) if decisions else r
        for r in dataset.records
        if r.path not in unreadable
    ]
    records = [r for r in records if r.label and r.label != EXCLUDE]
    conflicts = duplicates.label_conflicts({r.path: r.label for r in records})
    conflicting = {path for cluster in conflicts for path in cluster}
    records = [r for r in records if r.path not in conflicting]
    kept = {r.path for r in records}
    excluded = sorted(r.path for r in dataset.records if r.path not in kept)
    if not records:
        raise DatasetError("The dataset has no labelled, readable images to split.")
    group_of = join_groups(records, duplicates)
    members: dict[str, list] = defaultdict(list)
    for record in records:
        members[group_of[record.path]].append(record)

    split_of_group: dict[str, str] = {}
    dropped: list[str] = []
    moved: list[str] = []
    pooled = []
    use_testing = config.keep_existing_test and dataset.has_splits
    if config.hold_out:
        folders = {r.folder for r in records}
        if config.hold_out not in folders:
            raise DatasetError(
                f"There is no dataset folder named {config.hold_out!r} to hold out; the folders "
                f"are {sorted(f for f in folders if f)}."
            )
    for name, group in members.items():
        if kept_splits := {keep[r.path] for r in group if r.path in keep}:
            split_of_group[name] = next(s for s in ("test", "val", "train") if s in kept_splits)
        elif config.hold_out and {r.folder for r in group} == {config.hold_out}:
            split_of_group[name] = "test"  # new to every other folder: tested, never trained on
        elif use_testing and any(r.original_split == "test" for r in group):
            split_of_group[name] = "test"
            leaked = sorted(r.path for r in group if r.original_split != "test")
            (dropped if config.leaks == "drop" else moved).extend(leaked)
        else:
            label = Counter(r.label for r in group).most_common(1)[0][0]
            pooled.append((name, label, len(group)))
    if config.hold_out_fold:
        _train_on_other_folds(split_of_group, members, config)
    ratios = config.ratios[:2] if use_testing or config.hold_out else config.ratios
    if sum(ratios) <= 0:
        raise DatasetError("The train and validation ratios cannot both be zero.")
    for name, part in assign_groups(pooled, ratios, config.seed).items():
        split_of_group[name] = SPLITS[part]

    dropped_set = set(dropped)
    rows = [
        manifest_row(r, split_of_group[group_of[r.path]], group_of[r.path])
        for r in records
        if r.path not in dropped_set
    ]
    return SplitResult(rows, dropped, moved, excluded, [sorted(c) for c in conflicts])


def _train_on_other_folds(split_of_group: dict, members: dict, config: SplitConfig) -> None:
    """Move the held-out groups outside fold i of k into training (scikit-learn's
    StratifiedGroupKFold over the held-out images in path order, seeded)."""
    from sklearn.model_selection import StratifiedGroupKFold

    fold, folds = config.hold_out_fold
    held = {name for name, split in split_of_group.items() if split == "test"}
    images = sorted((r.path, r.label, name) for name in held for r in members[name])
    parts = StratifiedGroupKFold(folds, shuffle=True, random_state=config.seed).split(
        images, [label for _, label, _ in images], [name for _, _, name in images]
    )
    tested = {images[i][2] for i in list(parts)[fold][1]}
    for name in held - tested:
        split_of_group[name] = "train"


def join_groups(records: list, duplicates: DuplicateReport) -> dict[str, str]:
    """Map each record's path to its group name: metadata groups joined by duplicate clusters."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for record in records:
        find(record.path)
        if record.group:
            union(record.path, "group:" + record.group)
    known = {record.path for record in records}
    for cluster in duplicates.near_clusters:
        inside = [path for path in cluster if path in known]
        for path in inside[1:]:
            union(path, inside[0])
    # Name each group after its metadata group, else after its first image.
    names: dict[str, str] = {}
    for record in sorted(records, key=lambda r: r.path):
        root = find(record.path)
        names.setdefault(root, record.group or Path(record.path).stem)
    return {record.path: names[find(record.path)] for record in records}


def split_dataset(
    root: str | Path,
    config: SplitConfig | None = None,
    *,
    decisions: dict[str, str] | None = None,
    keep: dict[str, str] | None = None,
    progress: bool = True,
) -> SplitResult:
    """Scan the dataset at `root` and split it group-aware."""
    scanned = scan_dataset(root, progress=progress)
    return make_split(
        scanned.dataset,
        scanned.duplicates,
        config or SplitConfig(),
        set(scanned.unreadable),
        decisions,
        keep,
    )


def read_label_decisions(path: str | Path) -> dict[str, str]:
    """path -> label (a class, or "exclude") from a CSV with columns path,label: how to settle
    copies filed under different labels (`brat scan` lists them)."""
    import csv

    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"The label decisions {path} cannot be read ({error}).") from error
    decisions = {}
    for row in rows:
        label = (row.get("label") or "").strip()
        label = EXCLUDE if label.lower() == EXCLUDE else normalise_label(label)
        if not row.get("path") or not label:
            raise DatasetError(
                f"{path}: every row needs a path and a label (a class or {EXCLUDE!r}); got {row}."
            )
        decisions[row["path"].strip()] = label
    return decisions
