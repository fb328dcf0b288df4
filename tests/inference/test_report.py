"""The PDF report (`brat.inference.pdf_report`) and `brat report`, on the shipped model, read back
with pypdf."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest
from pypdf import PdfReader

from brat import DISCLAIMER, __version__
from brat.cli import main
from brat.files import sha256_bytes, sha256_file
from brat.inference.analysis import analyze, explainer_for
from brat.inference.pdf_report import ReportScan, latin1, pdf_report, report_scan
from brat.inference.render import to_uint8
from brat.settings import SHIPPED_MODEL
from tests.synthetic import make_dicom, make_slice

MODEL = {"model_path": SHIPPED_MODEL, "model_file": SHIPPED_MODEL / "model.keras"}
UNREADABLE = "This file is not an image."


@pytest.fixture(scope="module")
def scans() -> list[ReportScan]:
    """Two analysed scans: a square one and a non-square one (a slice cut to 200 x 160 px)."""
    explainer = explainer_for(SHIPPED_MODEL)
    images = (make_slice(5, size=200), make_slice(8, size=200)[:, 20:180])
    scans = []
    for i, image in enumerate(images):
        data = cv2.imencode(".png", image)[1].tobytes()
        analysis = analyze(data, "gated-layercam", model=explainer)
        scans.append(report_scan(f"scan-{i}.png", sha256_bytes(data), analysis))
    return scans


def pages_text(report: bytes) -> list[str]:
    """Each page's text, its white space squashed (a wrapped line reads as one)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(report)).pages]


def test_a_scan_report_is_one_page_of_text(scans) -> None:
    scan = scans[0]
    analysis = scan.analysis
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    report = pdf_report([scan], **MODEL, case_id="CASE-0042", created=created)
    assert PdfReader(io.BytesIO(report)).metadata.title == "BraTum Scans report"
    (text,) = pages_text(report)
    for expected in (
        DISCLAIMER,
        "Case CASE-0042",
        "Created 2026-03-01 09:30:00 UTC",
        f"brat version {__version__}",
        f"Model {SHIPPED_MODEL.name}",
        f"Model file SHA-256 {sha256_file(SHIPPED_MODEL / 'model.keras')}",
        "Input scan-0.png",
        f"Input SHA-256 {scan.input_sha256}",
        f"Verdict: {analysis.verdict}",
        f"Most likely class: {analysis.label}, calibrated probability {analysis.confidence:.1%}",
        f"Prediction set at a 5% error rate: {analysis.set_text}",
        "Heatmap: Gated LayerCAM",
        "not a tumour segmentation",
        *(f"{name} {p:.1%}" for name, p in analysis.probabilities.items()),
    ):
        assert expected in text, expected
    if analysis.reasons:
        assert "Not answered because:" in text


def test_a_batch_report_starts_with_a_summary(scans) -> None:
    unreadable = ReportScan("broken.jpg", "0" * 64, error=UNREADABLE)
    report = pdf_report([scans[0], unreadable, scans[1]], **MODEL)
    summary, *scan_pages = pages_text(report)
    assert len(scan_pages) == 2
    assert "3 scans" in summary and "2 readable, 1 unreadable" in summary
    assert f"broken.jpg unreadable: {UNREADABLE}" in summary
    for scan in scans:
        analysis = scan.analysis
        assert f"{scan.input_name} {analysis.verdict} {analysis.label}" in summary
    for scan, text in zip(scans, scan_pages, strict=True):
        assert f"Input SHA-256 {scan.input_sha256}" in text
    assert all(DISCLAIMER in text for text in (summary, *scan_pages))
    assert "Case" not in summary  # no case identifier given, none printed


def test_images_are_embedded_losslessly_at_full_resolution(scans) -> None:
    scan = scans[1]
    (page,) = PdfReader(io.BytesIO(pdf_report([scan], **MODEL))).pages
    original, overlaid = (np.asarray(image.image) for image in page.images)
    assert original.shape == scan.analysis.pixels.shape == (200, 160)
    assert np.array_equal(original, to_uint8(scan.analysis.pixels))
    assert np.array_equal(overlaid, scan.overlaid)


def test_any_file_name_or_case_identifier_prints(scans) -> None:
    name = "Schädel–MRT ≥ 3 mm … 頭部 😀\t.png"
    scan = ReportScan(name, scans[0].input_sha256, scans[0].analysis, scans[0].overlaid)
    unreadable = ReportScan(name, "", error="Ça ne marche pas – “broken”")
    summary, page = pages_text(pdf_report([scan, unreadable], **MODEL, case_id="Fall №7 ✓"))
    assert "Schädel-MRT >= 3 mm ... ?? ? .png" in page
    assert 'unreadable: Ça ne marche pas - "broken"' in summary
    assert "Case Fall No7 ?" in page


def test_dicom_patient_fields_stay_out_of_the_report() -> None:
    data = make_dicom(make_slice(11, size=128).astype(np.uint16) * 8, PatientID="PID-93817")
    analysis = analyze(data, "gradcam", model=explainer_for(SHIPPED_MODEL), name="slice.dcm")
    report = pdf_report([report_scan("slice.dcm", sha256_bytes(data), analysis)], **MODEL)
    (text,) = pages_text(report)
    assert "Input slice.dcm" in text
    assert "Patient" not in text and "PID-93817" not in text


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("a–b—c", "a-b-c"),
        ("p ≥ 0.6 … ≤ 1", "p >= 0.6 ... <= 1"),
        ("naïve façade", "naïve façade"),
        ("Łódź", "?ódz"),
        ("脳.png", "?.png"),
        ("line\nbreak\x00", "line break "),
        ("zero\u200bwidth", "zerowidth"),
        ("bad\udcffbytes", "bad?bytes"),
    ],
    ids=["dashes", "signs", "latin-1", "accents", "cjk", "control", "format", "surrogate"],
)
def test_latin1_spells_any_text_for_the_core_fonts(text: str, printed: str) -> None:
    assert latin1(text) == printed
    printed.encode("latin-1")


def test_a_report_needs_scans_and_a_scan_needs_an_analysis_or_a_reason(scans) -> None:
    with pytest.raises(ValueError, match="at least one scan"):
        pdf_report([], **MODEL)
    with pytest.raises(ValueError, match="error"):
        ReportScan("scan.png", "0" * 64)
    with pytest.raises(ValueError, match="overlaid"):
        ReportScan("scan.png", "0" * 64, scans[0].analysis)


def test_brat_report_writes_the_pdf_even_with_unreadable_files(tmp_path, capsys) -> None:
    good = tmp_path / "scan.png"
    good.write_bytes(cv2.imencode(".png", make_slice(2, size=150))[1].tobytes())
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "report.pdf"
    args = ["report", str(good), str(bad), "--out", str(out), "--model", str(SHIPPED_MODEL)]
    assert main([*args, "--case-id", "C-17", "--method", "gradcam"]) == 1
    summary, page = pages_text(out.read_bytes())
    assert "broken.jpg unreadable:" in summary and "scan.png" in summary
    assert f"Input SHA-256 {sha256_file(good)}" in page
    assert "Case C-17" in page and "Heatmap: Grad-CAM for class" in page
    streams = capsys.readouterr()
    assert "broken.jpg: unreadable" in streams.err and f"wrote {out}" in streams.out

    assert main(["report", str(good), "--out", str(out), "--model", str(SHIPPED_MODEL)]) == 0
    (page,) = pages_text(out.read_bytes())
    assert "Heatmap: Gated LayerCAM" in page and "Case" not in page
