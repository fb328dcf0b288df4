from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from brat.cli import build_parser, main
from tests.synthetic import make_slice

CLASSES = ("glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor")


@pytest.fixture
def kaggle_like(tmp_path: Path) -> Path:
    """A tiny Training/Testing dataset with one copy of a training image in Testing."""
    root = tmp_path / "data"
    seed = 0
    for split, count in (("Training", 6), ("Testing", 2)):
        for label in CLASSES:
            folder = root / split / label
            folder.mkdir(parents=True)
            for k in range(count):
                seed += 1
                cv2.imwrite(str(folder / f"{k}.png"), make_slice(seed, size=96))
    leaked = cv2.imread(str(root / "Training" / "glioma_tumor" / "0.png"))
    cv2.imwrite(str(root / "Testing" / "glioma_tumor" / "copy.jpg"), cv2.resize(leaked, (80, 80)))
    (root / "Testing" / "glioma_tumor" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return root


def test_scan_writes_the_report(kaggle_like: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scan.json"
    assert main(["scan", str(kaggle_like), "--json", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    for key in (
        "images",
        "classes",
        "unreadable",
        "exact_duplicate_clusters",
        "near_duplicate_clusters",
        "cross_split_leak_clusters",
        "cross_split_leak_files",
    ):
        assert key in report
    assert report["images"] == 34
    assert report["unreadable"][0]["path"] == "Testing/glioma_tumor/broken.jpg"
    assert report["near_duplicate_clusters"] == 1
    assert report["cross_split_leak_clusters"] == 1
    assert report["cross_split_leak_files"] == 1
    assert "34 images" in capsys.readouterr().out


@pytest.mark.parametrize("leaks", ["drop", "move"])
def test_split_writes_a_manifest(kaggle_like: Path, tmp_path: Path, leaks: str) -> None:
    out = tmp_path / "manifest.csv"
    assert main(["split", str(kaggle_like), "--out", str(out), "--quiet", "--leaks", leaks]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {"path", "label", "split", "group"} <= set(rows[0])
    split_of = {row["path"]: row["split"] for row in rows}
    assert "Testing/glioma_tumor/broken.jpg" not in split_of
    assert all(split_of[p] == "test" for p in split_of if p.startswith("Testing/"))
    if leaks == "drop":
        assert "Training/glioma_tumor/0.png" not in split_of
    else:
        assert split_of["Training/glioma_tumor/0.png"] == "test"
    assert {row["split"] for row in rows} == {"train", "val", "test"}


def test_resplit_ignores_testing_folder(kaggle_like: Path, tmp_path: Path) -> None:
    out = tmp_path / "manifest.csv"
    args = ["split", str(kaggle_like), "--out", str(out), "--quiet", "--resplit-test"]
    assert main([*args, "--ratios", "0.5,0.25,0.25", "--seed", "3"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert any(r["path"].startswith("Training/") and r["split"] == "test" for r in rows)


def test_every_command_has_help() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) >= {"scan", "split", "download"}
    for name, command in commands.items():
        assert command.description, name
        assert "usage:" in command.format_help()


def test_errors_are_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "brat", "scan", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: The dataset folder")
    bad_ratio = subprocess.run(
        [sys.executable, "-m", "brat", "split", str(tmp_path), "--out", "x.csv", "--ratios", "1,2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad_ratio.returncode == 2
    assert "three" in bad_ratio.stderr


def test_download_fails_in_one_clear_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import kagglehub
    import requests

    def offline(handle: str) -> str:
        raise requests.exceptions.ConnectionError(
            f"Failed to resolve 'api.kaggle.com' for {handle}"
        )

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    assert main(["download", "--dataset", "nickparvar", "--out", str(tmp_path / "d")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "no network connection" in error
    assert "kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset" in error
