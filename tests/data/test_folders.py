"""Several dataset folders read as one: paths name their folder, sources and groups carry over,
copies across folders are found, and the CLI takes several DATA folders."""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import pytest

from brat.cli import main
from brat.data.dataset import load_dataset
from brat.data.folders import dataset_root, folder_names
from brat.data.manifest import read_manifest
from brat.errors import DatasetError
from tests.synthetic import make_slice


@pytest.fixture
def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    """A: class folders with a metadata.csv (groups, source); B: a Kaggle Training/ folder that
    holds a copy of one of A's images (filed under the same class) and images of its own."""
    a, b = tmp_path / "alpha", tmp_path / "beta" / "Training"
    for i, label in enumerate(["glioma_tumor", "no_tumor"] * 6):
        (a / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(a / label / f"a{i}.png"), make_slice(100 + i))
    with (a / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "group", "source"])
        for i, label in enumerate(["glioma_tumor", "no_tumor"] * 6):
            writer.writerow([f"{label}/a{i}.png", f"p{i // 2}", "hospital-a"])
    for i, label in enumerate(["glioma_tumor", "no_tumor"] * 4):
        (b / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(b / label / f"b{i}.png"), make_slice(500 + i))
    shutil.copy(a / "glioma_tumor" / "a0.png", b / "glioma_tumor" / "copy.png")
    return a, tmp_path / "beta"


def test_one_folder_is_read_as_it_is(two_folders, tmp_path) -> None:
    assert dataset_root([two_folders[0]], cache_dir=tmp_path / "cache") == two_folders[0]


def test_two_folders_read_as_one(two_folders, tmp_path) -> None:
    root = dataset_root(two_folders, cache_dir=tmp_path / "cache")
    assert dataset_root(two_folders, cache_dir=tmp_path / "cache") == root  # stable
    records = {r.path: r for r in load_dataset(root).records}
    assert len(records) == 12 + 9
    first = records["alpha/glioma_tumor/a0.png"]
    assert (first.label, first.group, first.source, first.folder) == (
        "glioma_tumor",
        "alpha:p0",
        "hospital-a",
        "alpha",
    )
    copy = records["beta/Training/glioma_tumor/copy.png"]
    assert (copy.source, copy.folder, copy.group) == ("beta", "beta", None)
    assert (root / copy.path).is_file()
    with pytest.raises(DatasetError, match="twice"):
        dataset_root([two_folders[0], two_folders[0]], cache_dir=tmp_path / "cache")


def test_folder_names_are_unique() -> None:
    assert folder_names([Path("/x/data"), Path("/y/data"), Path("/z/other")]) == [
        "data",
        "data-2",
        "other",
    ]


def test_split_of_two_folders_keeps_copies_together_and_holds_out_new_images(
    two_folders, tmp_path, capsys
) -> None:
    out = tmp_path / "loso.csv"
    command = ["split", *map(str, two_folders), "--out", str(out), "--hold-out", "beta", "--quiet"]
    assert main(command) == 0
    rows = {r.path: r for r in read_manifest(out)}
    copy, original = rows["beta/Training/glioma_tumor/copy.png"], rows["alpha/glioma_tumor/a0.png"]
    assert copy.group == original.group and copy.split == original.split != "test"
    assert {r.path for r in rows.values() if r.split == "test"} == {
        p for p in rows if p.startswith("beta/") and p != copy.path
    }
    assert {r.source for r in rows.values()} == {"hospital-a", "beta"}
    assert main(["split", *map(str, two_folders), "--out", str(out), "--hold-out", "gamma"]) == 1
    assert "no dataset folder named 'gamma'" in capsys.readouterr().err


def test_a_manifest_of_two_folders_reads_against_one_of_them(two_folders, tmp_path) -> None:
    from brat.data.manifest import rows_for

    out = tmp_path / "manifest.csv"
    assert main(["split", *map(str, two_folders), "--out", str(out), "--quiet"]) == 0
    rows = read_manifest(out)
    root = dataset_root(two_folders)
    assert rows_for(rows, root) == rows  # read against both folders: as it is
    alpha = rows_for(rows, two_folders[0])
    assert len(alpha) == 12 and all((two_folders[0] / r.path).is_file() for r in alpha)
    beta = rows_for(rows, two_folders[1])
    assert len(beta) == 9 and all((two_folders[1] / r.path).is_file() for r in beta)
    assert {r.split for r in alpha} | {r.split for r in beta} == {r.split for r in rows}
    single = list(alpha)  # a one-folder manifest (paths without the folder) is kept
    assert rows_for(single, two_folders[0]) == single
    # A model trained on three folders, measured on two of them: their rows as they are.
    third = [replace(r, path=f"gamma/{r.path}", folder="gamma") for r in beta]
    assert rows_for(rows + third, root) == rows


def test_held_out_folds_test_every_new_image_once_and_train_on_the_others(
    two_folders, tmp_path
) -> None:
    tested = []
    for fold in (1, 2):
        out = tmp_path / f"fold{fold}.csv"
        command = ["split", *map(str, two_folders), "--out", str(out), "--hold-out", "beta"]
        assert main([*command, "--hold-out-fold", f"{fold}/2", "--quiet"]) == 0
        rows = read_manifest(out)
        test = {r.path for r in rows if r.split == "test"}
        new = {r.path for r in rows if r.path.startswith("beta/") and "copy" not in r.path}
        assert test and test < new
        assert all(r.split == "train" for r in rows if r.path in new - test)
        tested.append(test)
    assert tested[0].isdisjoint(tested[1]) and tested[0] | tested[1] == new
    with pytest.raises(SystemExit):
        main(["split", *map(str, two_folders), "--out", "x.csv", "--hold-out-fold", "3/2"])
