"""The per-scan PDF report."""

from __future__ import annotations

import re

import brat
from brat.files import sha256_bytes
from brat.inference.analysis import explainer_for
from brat.inference.pdf_report import pdf_report
from brat.inference.render import overlay
from brat.settings import SHIPPED_MODEL


def test_the_report_is_a_one_page_pdf(slice_image) -> None:
    import cv2

    data = cv2.imencode(".png", slice_image(5, size=200))[1].tobytes()
    analysis = brat.analyze(data, model=explainer_for(SHIPPED_MODEL))
    report = pdf_report(
        analysis,
        overlay(analysis.pixels, analysis.heatmap),
        model_path=SHIPPED_MODEL,
        model_file=SHIPPED_MODEL / "model.keras",
        input_name="scan.png",
        input_sha256=sha256_bytes(data),
    )
    assert report.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", report)) == 1
    assert "BraTum Scans report".encode("utf-16-be") in report  # the document title
    assert len(report) > 20_000  # the two pictures are in it
