"""Whole labelled volumes measured as studies (`brat evaluate-volumes`): one verdict per volume
and plane, each slice's truth from the tumour mask, and the no-tumour slices counted by level."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brat.cli import main
from brat.data.volumes import find_volumes
from brat.evaluation.volumes import evaluate_volumes, level_table
from brat.inference.analysis import explainer_for
from tests.conftest import SHARED
from tests.data.test_volumes import _head, _write

VERDICTS = {"glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor", "uncertain"}
VERDICTS |= {"not a brain MRI"}
TCIA = SHARED / "datasets" / "tcia-gbm-volumes"
NORMAL_HEADS = SHARED / "datasets" / "normal-heads"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "volumes"


def test_brat_evaluate_volumes_reads_each_volume_as_a_study_in_each_plane(tmp_path) -> None:
    voxels, mask = _head((80, 80, 20)), np.zeros((80, 80, 20), np.float32)
    mask[30:50, 30:50, 9:12] = 1
    _write(tmp_path / "p1" / "scan.nii.gz", voxels)
    _write(tmp_path / "p1" / "mask.nii.gz", mask)
    _write(tmp_path / "h1" / "head.nii.gz", _head((80, 80, 80)))
    (tmp_path / "volumes.csv").write_text(
        "path,label,group,mask\n"
        "p1/scan.nii.gz,glioma_tumor,p1,p1/mask.nii.gz\n"
        "h1/head.nii.gz,no_tumor,h1,\n"
    )
    out = tmp_path / "report.json"
    assert main(["evaluate-volumes", str(tmp_path), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    # The thick stack only in its own plane; the head in all three.
    assert [(o["volume"], o["plane"]) for o in report["outcomes"]] == [
        ("p1/scan.nii.gz", "axial"),
        ("h1/head.nii.gz", "axial"),
        ("h1/head.nii.gz", "coronal"),
        ("h1/head.nii.gz", "sagittal"),
    ]
    assert report["studies"] == 4 and all(o["verdict"] in VERDICTS for o in report["outcomes"])
    tumour = [s for s in report["per_slice"] if s["volume"] == "p1/scan.nii.gz"]
    assert [s["index"] for s in tumour if s["truth"] == "glioma_tumor"] == [9, 10, 11]
    assert {s["truth"] for s in tumour if s["index"] in (7, 8, 12, 13)} == {None}
    head = [s for s in report["per_slice"] if s["volume"] == "h1/head.nii.gz"]
    assert {s["truth"] for s in head} == {"no_tumor"}
    counted = sum(r["no_tumour_slices"] for r in report["slices_by_level"])
    assert counted == sum(
        s["truth"] == "no_tumor" and s["in_distribution"] for s in report["per_slice"]
    )
    assert main(["evaluate-volumes", str(tmp_path), "--groups", "nobody"]) == 2


def test_a_dicom_series_in_a_class_folder_is_a_volume_read_in_its_own_plane(tmp_path) -> None:
    from tests.synthetic import make_dicom, make_slice

    series = tmp_path / "no_tumor" / "series-1"
    series.mkdir(parents=True)
    for k in range(6):
        pixels = make_slice(k, 96).astype(np.uint16) * 4
        (series / f"{k}.dcm").write_bytes(
            make_dicom(pixels, SeriesInstanceUID="1.2", InstanceNumber=k + 1)
        )
    volumes = find_volumes(tmp_path)
    assert [(v.path, v.label) for v in volumes] == [("no_tumor/series-1", "no_tumor")]
    report = evaluate_volumes(tmp_path, volumes, explainer_for())
    assert [(o["plane"], o["slices"]) for o in report["outcomes"]] == [("series", 6)]
    assert {s["truth"] for s in report["per_slice"]} == {"no_tumor"}
    assert main(["slices", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    written = (tmp_path / "out" / "metadata.csv").read_text().splitlines()
    assert len(written) == 7 and all("_series_" in line.split(",")[0] for line in written[1:])
    assert all(line.split(",")[4] == "" for line in written[1:])  # no plane claimed


def test_slices_are_counted_by_plane_and_level() -> None:
    slices = [
        {"plane": "axial", "level": 0.05, "truth": "no_tumor", "tumour": 0.9, "in_distribution": 1},
        {"plane": "axial", "level": 0.1, "truth": "no_tumor", "tumour": 0.1, "in_distribution": 1},
        {
            "plane": "axial",
            "level": 1.0,
            "truth": "glioma_tumor",
            "tumour": 0.8,
            "in_distribution": 1,
        },
        {"plane": "axial", "level": 0.5, "truth": "no_tumor", "tumour": 0.9, "in_distribution": 0},
    ]
    rows = {row["levels"]: row for row in level_table(slices)}
    assert rows["0%-20%"]["no_tumour_slices"] == 2 and rows["0%-20%"]["read_as_tumour"] == 1
    assert rows["80%-100%"]["tumour_slices"] == 1 and rows["80%-100%"]["tumour_found"] == 1
    assert rows["40%-60%"]["no_tumour_slices"] == 0  # not a brain MRI: not counted


@pytest.mark.heavy
def test_the_shipped_model_reads_a_real_glioblastoma_exam_and_a_healthy_head() -> None:
    """A whole exam from another hospital and a healthy head with skull, end to end."""
    if not (TCIA / "patient01").is_dir() or not (NORMAL_HEADS / "colin27").is_dir():
        pytest.skip(f"the whole volumes are not at {TCIA} and {NORMAL_HEADS}")
    explainer = explainer_for()
    exam = [v for v in find_volumes(TCIA, DOCS / "tcia-gbm-volumes.csv") if "Pre" in v.path][:1]
    head = find_volumes(NORMAL_HEADS, DOCS / "normal-heads.csv")[:1]
    gbm = evaluate_volumes(TCIA, exam, explainer)
    normal = evaluate_volumes(NORMAL_HEADS, head, explainer, planes=("axial",))
    assert gbm["outcomes"][0]["predicted"] == "glioma_tumor"
    tumour_slices = [s for s in gbm["per_slice"] if s["truth"] == "glioma_tumor"]
    assert len(tumour_slices) >= 5 and np.mean([s["tumour"] > 0.5 for s in tumour_slices]) > 0.5
    assert normal["outcomes"][0]["predicted"] == "no_tumor"
    assert normal["outcomes"][0]["slices"] > 150  # every level, skull base to vertex
