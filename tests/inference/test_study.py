"""Studies: reading NIfTI volumes, DICOM series and multi-frame files into ordered slices, the
study rule, and one verdict per study from the shipped model (`brat predict --study`)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from brat.cli import main
from brat.data.studies import read_study
from brat.errors import UnreadableImageError
from brat.inference.analysis import explainer_for
from brat.inference.study import analyze_study, combined
from brat.settings import SAMPLES
from tests.synthetic import make_dicom, make_slice

# A real (small) T1 volume that nibabel ships for its own tests.
ANATOMICAL = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"


@pytest.fixture(scope="module")
def explainer():
    return explainer_for()


def test_a_nifti_volume_is_cut_in_each_plane_without_its_empty_slices() -> None:
    shape = nibabel.as_closest_canonical(nibabel.load(ANATOMICAL)).shape
    for plane, axis in (("sagittal", 0), ("coronal", 1), ("axial", 2)):
        study = read_study(ANATOMICAL, plane)
        assert study.kind == "nifti" and study.plane == plane
        assert len(study.slices) + study.skipped == shape[axis]
        assert study.indices == sorted(study.indices)
        assert all(s.min() >= 0.0 and s.max() <= 1.0 for s in study.slices)
    axial = read_study(ANATOMICAL, "axial")
    assert axial.slices[0].shape == (shape[1], shape[0])  # anterior up, rows along y


def test_a_nifti_volume_keeps_its_orientation(tmp_path) -> None:
    """A volume with a bright block at the patient's anterior-superior corner shows it at the
    top of the axial and sagittal slices, whatever order the file stores its axes in."""
    volume = np.zeros((20, 24, 16), np.float32)
    volume[4:16, 4:20, 2:14] = 1.0  # a head
    volume[8:12, 18:20, 10:14] = 3.0  # anterior and superior
    flipped = nibabel.Nifti1Image(volume[::-1], np.diag([-1.0, 1.0, 1.0, 1.0]))  # stored L-R
    nibabel.save(flipped, tmp_path / "head.nii.gz")
    axial = read_study(tmp_path / "head.nii.gz", "axial")
    brightest = axial.slices[int(np.argmax([s.max() for s in axial.slices]))]
    assert np.unravel_index(brightest.argmax(), brightest.shape)[0] < brightest.shape[0] / 2


def test_a_dicom_series_is_ordered_by_position_and_other_series_are_left_out(tmp_path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    orientation = [1, 0, 0, 0, 1, 0]
    for position in (3, 0, 2, 1):  # files named out of order
        pixels = np.full((64, 64), 100 * (position + 1), np.uint16)
        pixels[0, 0] = 0  # a range to stretch
        (series / f"{position * 7 % 5}.dcm").write_bytes(
            make_dicom(
                pixels,
                SeriesInstanceUID="1.2.3",
                ImageOrientationPatient=orientation,
                ImagePositionPatient=[0, 0, float(position)],
            )
        )
    (series / "other.dcm").write_bytes(make_dicom(make_slice(1, 64), SeriesInstanceUID="9.9"))
    (series / "notes.txt").write_text("not an image")
    study = read_study(series)
    assert study.kind == "dicom-series" and len(study.slices) == 4
    # Said, not dropped in silence.
    assert study.left_out == (
        "1 other DICOM series (1 slice; only the largest series is read: read each series on its "
        "own); 1 file that holds no DICOM image"
    )
    means = [float(s[1:, 1:].mean()) for s in study.slices]
    assert means == sorted(means)  # in order of position, whatever the file names


def test_a_multiframe_dicom_gives_every_frame_and_junk_is_refused(tmp_path) -> None:
    study = read_study(Path(get_testdata_file("SC_rgb_rle_2frame.dcm")))
    assert study.kind == "dicom-multiframe" and len(study.slices) == 2
    (tmp_path / "broken.nii.gz").write_bytes(b"not a volume")
    with pytest.raises(UnreadableImageError):
        read_study(tmp_path / "broken.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnreadableImageError, match="empty holds no file"):
        read_study(tmp_path / "empty")


def _volume(tumour_slices: dict[int, list[float]], n: int = 24) -> np.ndarray:
    """(n, classes) slice probabilities: normal slices (no_tumor 0.95) but for `tumour_slices`."""
    slices = np.tile([0.02, 0.02, 0.95, 0.01], (n, 1))
    for index, row in tumour_slices.items():
        slices[index] = row
    return slices


def test_a_tumour_on_two_of_24_slices_makes_a_tumour_study() -> None:
    slices = _volume({11: [0.9, 0.05, 0.04, 0.01], 12: [0.8, 0.1, 0.08, 0.02]})
    study = combined(slices, np.ones(24, bool))
    assert study.argmax() == 0 and np.isclose(study.sum(), 1.0)
    # The strongest tenth of the slices (three of 24): the two tumour slices and a normal one.
    assert np.isclose(study[2], 1 - (0.96 + 0.92 + 0.05) / 3)
    # The mean of every slice, the rule before, calls the same study normal.
    assert combined(slices, np.ones(24, bool), "mean").argmax() == 2


def test_a_study_with_no_tumour_slice_is_a_no_tumour_study() -> None:
    study = combined(_volume({}), np.ones(24, bool))
    assert study.argmax() == 2 and np.isclose(study[2], 0.95)
    # One weak, stray slice does not make it a tumour study.
    assert combined(_volume({5: [0.1, 0.6, 0.3, 0.0]}), np.ones(24, bool)).argmax() == 2
    # Nor do five strong ones among 200 thin slices (a tumour shows on more of them).
    stray = {i: [0.05, 0.9, 0.05, 0.0] for i in range(5)}
    assert combined(_volume(stray, n=200), np.ones(200, bool)).argmax() == 2


def test_slices_that_are_not_a_brain_mri_stay_out_of_the_study() -> None:
    slices = _volume({0: [0.0, 0.0, 0.0, 1.0], 23: [0.0, 0.0, 0.0, 1.0]})  # blank padding
    inside = np.ones(24, bool)
    inside[[0, 23]] = False
    assert combined(slices, inside).argmax() == 2
    assert combined(slices, np.ones(24, bool)).argmax() == 3  # what reading them would say
    # When no slice passes the check, all of them are read.
    assert np.allclose(combined(slices, np.zeros(24, bool)), combined(slices, np.ones(24, bool)))


def test_the_tumour_type_comes_from_the_slices_that_show_a_tumour() -> None:
    """Normal slices' small tumour-class probabilities barely move the type."""
    slices = _volume({3: [0.1, 0.85, 0.04, 0.01], 4: [0.2, 0.7, 0.05, 0.05]})
    slices[5:, :] = [0.05, 0.0, 0.9, 0.05]  # twenty normal slices leaning glioma and pituitary
    study = combined(slices, np.ones(24, bool))
    assert study.argmax() == 1 and study[1] > 0.5
    with pytest.raises(ValueError, match="rule"):
        combined(slices, np.ones(24, bool), "vote")


def test_slices_marked_as_one_study_get_one_verdict(explainer) -> None:
    paths = sorted((SAMPLES / "pituitary_tumor").glob("*.jpg"))
    from brat.data.studies import read_study as read

    result = analyze_study(read(paths), explainer)
    assert result.slices == 4 and result.label == "pituitary_tumor"
    assert result.verdict == "pituitary_tumor" and result.prediction_set == ["pituitary_tumor"]
    assert result.slice_probabilities.shape == (4, 4)
    record = result.to_json()
    assert len(record["per_slice"]) == 4 and record["strongest_slice"] in range(4)


def test_brat_predict_takes_studies_and_reports_an_unreadable_one(tmp_path) -> None:
    broken = tmp_path / "broken.nii"
    broken.write_bytes(b"junk")
    out = tmp_path / "studies.json"
    code = main(
        ["predict", "--study", str(ANATOMICAL), str(broken), "--json", str(out), "--no-audit"]
    )
    assert code == 1
    good, bad = json.loads(out.read_text())
    assert good["kind"] == "nifti" and good["verdict"] in {
        "not a brain MRI",
        "uncertain",
        *good["probabilities"],
    }
    assert len(good["per_slice"]) == good["slices"] and bad["error_kind"] == "not an image"


def test_brat_evaluate_reports_studies_by_patient(tmp_path) -> None:
    out = tmp_path / "evaluation.json"
    code = main(["evaluate", str(SAMPLES), "--split", "all", "--studies", "--json", str(out)])
    assert code == 0
    studies = json.loads(out.read_text())["studies"]
    # 12 figshare slices of 10 patients, and 4 slices of one template
    assert studies["studies"] == 11 and studies["studies_with_several_slices"] == 3
    assert set(studies["by_source"]) == {"figshare-cheng2017", "mni152-icbm2009a"}
    assert studies["by_source"]["mni152-icbm2009a"]["studies"] == 1
    assert studies["rule"] == "strongest" and len(studies["misread"]) == round(
        studies["studies"] * (1 - studies["accuracy"])
    )


def test_a_study_is_one_line_of_the_audit_trail_without_its_name(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    assert main(["predict", "--study", str(ANATOMICAL), "--json", str(tmp_path / "s.json")]) == 0
    raw = (tmp_path / "audit" / "audit.jsonl").read_text()
    (line,) = [json.loads(text) for text in raw.splitlines()]
    assert line["origin"] == "predict" and line["verdict"] and len(line["input_sha256"]) == 64
    assert "anatomical" not in raw and "file_name" not in line


def test_a_nifti_that_unpacks_too_far_is_refused(tmp_path, monkeypatch) -> None:
    import gzip

    import brat.data.studies as studies

    packed = tmp_path / "volume.nii.gz"
    packed.write_bytes(gzip.compress(ANATOMICAL.read_bytes()))
    assert len(read_study(packed).slices) > 0
    monkeypatch.setattr(studies, "MAX_NIFTI_BYTES", 1_000)
    with pytest.raises(UnreadableImageError, match="unpacks to more than"):
        read_study(packed)
    monkeypatch.setattr(studies, "MAX_VOXELS", 100)
    with pytest.raises(UnreadableImageError, match="voxels"):
        read_study(ANATOMICAL)


def test_brat_report_makes_a_study_report_with_its_strongest_slices(tmp_path) -> None:
    from pypdf import PdfReader

    out = tmp_path / "study.pdf"
    assert main(["report", "--study", str(ANATOMICAL), "--out", str(out), "--case-id", "S-1"]) == 0
    pages = PdfReader(out).pages
    first = pages[0].extract_text()
    assert "study report" in first and "Case S-1" in first and "Study SHA-256" in first
    assert "Research use only" in first and "along the slices" in first
    assert len(pages) == 4  # the study, then its three slices with the most evidence
    assert all(len(page.images) == 2 for page in pages[1:])  # each slice beside its heatmap


def test_a_series_left_out_is_said_in_the_record_and_the_report(tmp_path) -> None:
    from pypdf import PdfReader

    folder = tmp_path / "two series"
    folder.mkdir()
    for k in range(3):
        pixels = make_slice(k, size=128).astype("uint16") * 16
        (folder / f"{k}.dcm").write_bytes(
            make_dicom(pixels, SeriesInstanceUID="1.2", InstanceNumber=k + 1)
        )
    scout = make_slice(9, size=128).astype("uint16") * 16
    (folder / "scout.dcm").write_bytes(make_dicom(scout, SeriesInstanceUID="7.7"))

    out = tmp_path / "study.json"
    assert main(["predict", "--study", str(folder), "--json", str(out), "--no-audit"]) == 0
    (record,) = json.loads(out.read_text())
    assert record["slices"] == 3 and record["left_out"].startswith("1 other DICOM series (1 slice;")
    pdf = tmp_path / "study.pdf"
    assert main(["report", "--study", str(folder), "--out", str(pdf), "--no-audit"]) == 0
    assert "Left out 1 other DICOM series" in PdfReader(pdf).pages[0].extract_text()
