from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from brat.data.dataset import load_dataset
from brat.data.scan import scan_dataset
from brat.errors import DatasetError
from tests.synthetic import make_slice


def _write(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), make_slice(seed, size=64))


def _noise_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "notes.txt").write_text("scanned on the 3T machine")


@pytest.mark.parametrize(
    ("folders", "expected"),
    [
        (("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"), None),
        (("glioma", "meningioma", "notumor", "pituitary"), None),
    ],
    ids=["sartaj", "nickparvar"],
)
def test_kaggle_layouts(tmp_path: Path, folders: tuple[str, ...], expected: None) -> None:
    seed = 0
    for split in ("Training", "Testing"):
        for folder in folders:
            for k in range(2):
                seed += 1
                _write(tmp_path / split / folder / f"image({k}).jpg", seed)
        _noise_files(tmp_path / split / folders[0])
    dataset = load_dataset(tmp_path)
    assert dataset.layout == "kaggle-splits"
    assert dataset.class_counts() == {
        "glioma_tumor": 4,
        "meningioma_tumor": 4,
        "no_tumor": 4,
        "pituitary_tumor": 4,
    }
    assert {r.original_split for r in dataset.records} == {"train", "test"}
    assert sorted(Path(p).name for p in dataset.skipped) == [
        "Thumbs.db",
        "Thumbs.db",
        "notes.txt",
        "notes.txt",
    ]


def test_class_folders_with_every_extension_and_a_wrapper_folder(tmp_path: Path) -> None:
    root = tmp_path / "archive" / "brain"
    for i, suffix in enumerate(["jpg", "jpeg", "png", "bmp", "tif", "tiff"]):
        _write(root / "Glioma Tumor" / f"scan{i}.{suffix}", i)
    _write(root / "healthy" / "a.png", 10)
    _noise_files(root / "healthy")
    (root / "healthy" / "series.dcm").write_bytes(b"not really dicom")
    dataset = load_dataset(tmp_path / "archive")  # descends through the single wrapper folder
    assert dataset.root == root
    assert dataset.layout == "class-folders"
    assert dataset.class_counts() == {"glioma_tumor": 6, "no_tumor": 2}
    scanned = scan_dataset(dataset.root, progress=False)
    assert list(scanned.unreadable) == ["healthy/series.dcm"]
    assert "DICOM" in scanned.unreadable["healthy/series.dcm"]


def test_metadata_adds_groups_planes_masks_and_images(tmp_path: Path) -> None:
    _write(tmp_path / "glioma_tumor" / "a.jpg", 1)
    _write(tmp_path / "glioma_tumor" / "b.jpg", 2)
    _write(tmp_path / "extra" / "c.png", 3)  # not a class folder: only metadata names it
    _write(tmp_path / "masks" / "glioma_tumor" / "a.png", 4)
    (tmp_path / "metadata.csv").write_text(
        "path,label,group,plane,mask\n"
        "glioma_tumor/a.jpg,glioma_tumor,p1,top,masks/glioma_tumor/a.png\n"
        "glioma_tumor/b.jpg,meningioma,p1,,\n"
        "extra/c.png,pituitary,p2,left,\n"
        "gone/d.png,glioma,p3,,\n"
    )
    dataset = load_dataset(tmp_path)
    records = {r.path: r for r in dataset.records}
    assert set(records) == {"glioma_tumor/a.jpg", "glioma_tumor/b.jpg", "extra/c.png"}
    assert records["glioma_tumor/a.jpg"].plane == "axial"
    assert records["glioma_tumor/a.jpg"].mask == "masks/glioma_tumor/a.png"
    assert records["glioma_tumor/b.jpg"].label == "glioma_tumor"  # the folder wins
    assert records["extra/c.png"].label == "pituitary_tumor"
    assert records["extra/c.png"].plane == "sagittal"
    assert {r.group for r in dataset.records} == {"p1", "p2"}
    assert any("1 files that are not in the folder" in w for w in dataset.warnings)
    assert any("another label" in w for w in dataset.warnings)


def test_metadata_alone_and_unlabelled_folders(tmp_path: Path) -> None:
    _write(tmp_path / "images" / "x.png", 1)
    (tmp_path / "metadata.csv").write_text("path,label\nimages/x.png,no_tumor\n")
    assert load_dataset(tmp_path).layout == "metadata"
    flat = tmp_path / "flat"
    _write(flat / "one.png", 1)
    _write(flat / "two.png", 2)
    dataset = load_dataset(flat)
    assert dataset.layout == "unlabelled"
    assert [r.label for r in dataset.records] == [None, None]


def test_missing_empty_and_bad_metadata(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No images were found"):
        load_dataset(tmp_path / "empty")
    _write(tmp_path / "bad" / "glioma" / "a.png", 1)
    (tmp_path / "bad" / "metadata.csv").write_text("file,label\na.png,glioma\n")
    with pytest.raises(DatasetError, match="no 'path' column"):
        load_dataset(tmp_path / "bad")
