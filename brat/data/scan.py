"""Scan a dataset folder: counts, image sizes, unreadable files, duplicates and split leaks."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from brat.data.dataset import Dataset, load_dataset
from brat.data.duplicates import DuplicateReport, find_duplicates
from brat.data.fingerprint import Fingerprints, compute_fingerprints


@dataclass(frozen=True)
class ScannedDataset:
    dataset: Dataset
    fingerprints: Fingerprints
    duplicates: DuplicateReport

    @property
    def unreadable(self) -> dict[str, str]:
        return self.fingerprints.errors


def scan_dataset(
    root: str | Path, *, progress: bool = True, cache_dir: Path | None = None
) -> ScannedDataset:
    """Read every image of the dataset at `root` once and find its duplicates."""
    dataset = load_dataset(root)
    fingerprints = compute_fingerprints(
        dataset.root, [r.path for r in dataset.records], cache_dir=cache_dir, progress=progress
    )
    return ScannedDataset(dataset, fingerprints, find_duplicates(fingerprints))


def cross_split_leaks(scanned: ScannedDataset) -> list[list[str]]:
    """Near-duplicate clusters (or metadata groups) with members in more than one original split."""
    split_of = {r.path: r.original_split for r in scanned.dataset.records}
    clusters = [list(c) for c in scanned.duplicates.near_clusters]
    by_group: dict[str, list[str]] = defaultdict(list)
    for record in scanned.dataset.records:
        if record.group:
            by_group[record.group].append(record.path)
    clusters += list(by_group.values())
    leaks = [c for c in clusters if len({split_of.get(p) for p in c} - {None}) > 1]
    return sorted({tuple(sorted(c)) for c in leaks}, key=lambda c: (-len(c), c))


@dataclass(frozen=True)
class ScanSummary:
    """What a scan found in a dataset folder (`brat scan`'s output)."""

    root: str
    layout: str
    images: int
    classes: dict[str, int]
    splits: dict[str, dict[str, int]]  # the folder's own split (or "all") -> class -> images
    planes: dict[str, int]  # "class/plane" -> images
    plane_sources: dict[str, int]  # planes from hand labels and from `brat planes`
    image_sizes: dict
    modes: dict[str, int]  # Pillow image modes
    unreadable: list[dict]  # path, error
    skipped_non_images: int
    warnings: list[str]
    exact_duplicate_clusters: int
    exact_duplicate_files: int
    near_duplicate_clusters: int
    near_duplicate_files: int
    distinct_images: int
    cross_split_leak_clusters: int
    cross_split_leak_files: int
    label_conflict_clusters: int
    sources: dict[str, int]  # images per source
    # Per dataset folder (several read as one): images, those with a copy in another folder, and
    # the new ones (no copy elsewhere).
    folders: dict[str, dict[str, int]]
    # exact, near, cross_split_leaks, label_conflicts, across_folders (copies in 2+ folders)
    clusters: dict[str, list[list[str]]]
    seconds: float | None = None  # how long the scan took, when timed

    def to_json(self) -> dict:
        data = asdict(self)
        if self.seconds is None:
            del data["seconds"]
        return data


def scan_summary(
    scanned: ScannedDataset, seconds: float | None = None, planes: dict[str, str] | None = None
) -> ScanSummary:
    """The summary of a scanned dataset. `planes` (path -> plane, from `brat planes`) fills in
    the planes metadata.csv does not label."""
    dataset, fingerprints, duplicates = scanned.dataset, scanned.fingerprints, scanned.duplicates
    splits: dict[str, Counter] = defaultdict(Counter)
    for record in dataset.records:
        splits[record.original_split or "all"][record.label or "unlabelled"] += 1
    plane_of = {**(planes or {}), **{r.path: r.plane for r in dataset.records if r.plane}}
    planes = Counter(
        f"{r.label or 'unlabelled'}/{plane_of[r.path]}"
        for r in dataset.records
        if r.path in plane_of
    )
    plane_labels = sum(bool(r.plane) for r in dataset.records)
    leaks = cross_split_leaks(scanned)
    split_of = {r.path: r.original_split for r in dataset.records}
    # A leaked file: one outside Training whose copy (or group mate) is in another split.
    leaked_files = {p for c in leaks for p in c if split_of.get(p) not in {None, "train"}}
    labels = {r.path: r.label for r in dataset.records}
    conflicts = duplicates.label_conflicts(labels)
    folder_of = {r.path: r.folder or "" for r in dataset.records}
    across = [c for c in duplicates.near_clusters if len({folder_of.get(p) for p in c}) > 1]
    folders = Counter(folder_of.values())
    sources = Counter(r.source or "unknown" for r in dataset.records)
    copied = Counter(folder_of[p] for c in across for p in c)
    widths, heights = (fingerprints.sizes[:, i] for i in (0, 1))
    return ScanSummary(
        **{
            "root": str(dataset.root),
            "layout": dataset.layout,
            "images": len(dataset.records),
            "classes": dataset.class_counts(),
            "splits": {
                split: dict(sorted(counts.items())) for split, counts in sorted(splits.items())
            },
            "planes": dict(sorted(planes.items())),
            "plane_sources": {"label": plane_labels, "predicted": len(plane_of) - plane_labels},
            "image_sizes": _size_summary(widths, heights),
            "modes": dict(Counter(fingerprints.modes).most_common()),
            "unreadable": [{"path": p, "error": e} for p, e in sorted(scanned.unreadable.items())],
            "skipped_non_images": len(dataset.skipped),
            "warnings": dataset.warnings,
            "exact_duplicate_clusters": len(duplicates.exact_clusters),
            "exact_duplicate_files": sum(len(c) for c in duplicates.exact_clusters),
            "near_duplicate_clusters": len(duplicates.near_clusters),
            "near_duplicate_files": sum(len(c) for c in duplicates.near_clusters),
            "distinct_images": len(fingerprints.paths)
            - sum(len(c) - 1 for c in duplicates.near_clusters),
            "cross_split_leak_clusters": len(leaks),
            "cross_split_leak_files": len(leaked_files),
            "label_conflict_clusters": len(conflicts),
            "sources": dict(sorted(sources.items())),
            "folders": {
                name: {
                    "images": folders[name],
                    "with_copies_elsewhere": copied[name],
                    "new": folders[name] - copied[name],
                }
                for name in sorted(folders)
            },
            "clusters": {
                "exact": duplicates.exact_clusters,
                "near": duplicates.near_clusters,
                "cross_split_leaks": [list(c) for c in leaks],
                "label_conflicts": conflicts,
                "across_folders": across,
            },
            "seconds": None if seconds is None else round(seconds, 2),
        }
    )


def _size_summary(widths: np.ndarray, heights: np.ndarray) -> dict:
    if widths.size == 0:
        return {}
    common = Counter(f"{w}x{h}" for w, h in zip(widths.tolist(), heights.tolist(), strict=True))
    return {
        "width": {
            "min": int(widths.min()),
            "median": float(np.median(widths)),
            "max": int(widths.max()),
        },
        "height": {
            "min": int(heights.min()),
            "median": float(np.median(heights)),
            "max": int(heights.max()),
        },
        "most_common": dict(common.most_common(5)),
    }


def timed_scan(root: str | Path, *, progress: bool = True) -> tuple[ScannedDataset, float]:
    start = time.perf_counter()
    scanned = scan_dataset(root, progress=progress)
    return scanned, time.perf_counter() - start
