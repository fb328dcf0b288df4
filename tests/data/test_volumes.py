"""Labelled volumes: found from class folders or a CSV, cut into labelled slices at every level
and plane, and written as a dataset folder brat reads."""

from __future__ import annotations

import csv

import nibabel
import numpy as np
import pytest

from brat.cli import main
from brat.data.dataset import load_dataset
from brat.data.volumes import (
    LabelledVolume,
    cut_slices,
    find_volumes,
    slice_labels,
    write_slice_dataset,
)
from brat.errors import DatasetError


def _head(shape=(80, 80, 20)) -> np.ndarray:
    """A bright ellipsoid head in a dark box, with some texture."""
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    head = ((x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 1.1) ** 2 < 1).astype(np.float32)
    return head * (100 + 20 * np.sin(8 * x) * np.cos(6 * y))


def _write(path, voxels) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(voxels.astype(np.float32), np.eye(4)), path)


def test_a_tumour_volumes_slices_are_labelled_by_its_mask() -> None:
    masks = np.zeros((20, 8, 8), bool)
    masks[8:12, 2:6, 2:6] = True  # 16 voxels a slice
    masks[7, 3, 3] = True  # a speck at the tumour's edge: neither tumour nor clear of it
    labels = slice_labels("glioma_tumor", masks, margin=2)
    assert labels[8:12] == ["glioma_tumor"] * 4
    # The two slices on each side of any tumour voxel are left out.
    assert labels[5:8] == [None] * 3 and labels[12:14] == [None] * 2
    assert labels[:5] == ["no_tumor"] * 5 and labels[14:] == ["no_tumor"] * 6
    assert slice_labels("no_tumor", None) is None  # every slice is the volume's class
    assert slice_labels("glioma_tumor", None) is None


def test_volumes_are_found_from_class_folders_or_a_list(tmp_path) -> None:
    _write(tmp_path / "no_tumor" / "a.nii.gz", _head())
    _write(tmp_path / "Glioma" / "b.nii", _head())
    (tmp_path / "Glioma" / "notes.txt").write_text("not a volume")
    found = find_volumes(tmp_path)
    assert [(v.path, v.label) for v in found] == [
        ("Glioma/b.nii", "glioma_tumor"),
        ("no_tumor/a.nii.gz", "no_tumor"),
    ]
    listing = tmp_path / "list.csv"
    listing.write_text("path,label,group\nno_tumor/a.nii.gz,healthy,p1\n")
    assert find_volumes(tmp_path, listing) == [
        LabelledVolume("no_tumor/a.nii.gz", "no_tumor", "p1")
    ]
    listing.write_text("path,label\nmissing.nii.gz,glioma\n")
    with pytest.raises(DatasetError, match=r"missing\.nii\.gz does not exist"):
        find_volumes(tmp_path, listing)
    with pytest.raises(DatasetError, match="no labelled volume"):
        find_volumes(tmp_path / "no_tumor")


def test_a_thick_stack_is_cut_in_its_own_plane_only(tmp_path) -> None:
    _write(tmp_path / "thick.nii.gz", _head((80, 80, 20)))
    _write(tmp_path / "iso.nii.gz", _head((80, 80, 80)))
    thick = cut_slices(tmp_path, LabelledVolume("thick.nii.gz", "no_tumor", "a"), max_slices=100)
    assert {s.plane for s in thick} == {"axial"} and all(s.label == "no_tumor" for s in thick)
    iso = cut_slices(tmp_path, LabelledVolume("iso.nii.gz", "no_tumor", "b"), max_slices=10)
    assert {s.plane: 0 for s in iso}.keys() == {"axial", "coronal", "sagittal"}
    for plane in ("axial", "coronal", "sagittal"):
        levels = [s.level for s in iso if s.plane == plane]
        assert len(levels) == 10 and levels == sorted(levels)  # evenly spread, bottom to top
    assert all(s.pixels.min() >= 0 and s.pixels.max() <= 1 for s in iso)


def test_the_slice_dataset_is_a_dataset_folder_brat_reads(tmp_path) -> None:
    voxels, mask = _head(), np.zeros((80, 80, 20), np.float32)
    mask[30:50, 30:50, 9:12] = 1
    _write(tmp_path / "in" / "p1" / "scan.nii.gz", voxels)
    _write(tmp_path / "in" / "p1" / "mask.nii.gz", mask)
    _write(tmp_path / "in" / "p2" / "scan.nii.gz", voxels)
    (tmp_path / "in" / "volumes.csv").write_text(
        "path,label,group,mask,source\n"
        "p1/scan.nii.gz,glioma_tumor,p1,p1/mask.nii.gz,site\n"
        "p2/scan.nii.gz,glioma_tumor,p2,,site\n"
    )
    out = tmp_path / "slices"
    code = main(["slices", str(tmp_path / "in"), "--out", str(out), "--max-slices", "100"])
    assert code == 0
    dataset = load_dataset(out)
    tumour = [r for r in dataset.records if r.label == "glioma_tumor"]
    assert len(tumour) == 3 and all(r.mask and (out / r.mask).is_file() for r in tumour)
    records = dataset.records
    assert all(r.group == "p1" and r.source == "site" for r in records)
    # The plane is written where the slice shows enough of the head to learn planes from.
    levels = {r["path"]: float(r["level"]) for r in csv.DictReader((out / "metadata.csv").open())}
    assert {r.plane for r in records if 0.25 <= levels[r.path] <= 0.75} == {"axial"}
    assert {r.plane for r in records if not 0.25 <= levels[r.path] <= 0.75} == {None}
    assert {r.label for r in dataset.records} == {"glioma_tumor", "no_tumor"}
    # The unmasked tumour volume is skipped (which of its slices hold the tumour is unknown).
    report = write_slice_dataset(tmp_path / "in", find_volumes(tmp_path / "in"), tmp_path / "again")
    assert report["skipped"] == ["p2/scan.nii.gz: a tumour volume without a mask"]
    with pytest.raises(DatasetError, match="not empty"):
        write_slice_dataset(tmp_path / "in", find_volumes(tmp_path / "in"), out)
