"""The PDF report of a study (`brat.inference.study`): the study's verdict and probabilities,
the per-slice strip of each class's probability, and the strongest slices
(`StudyResult.strongest_slices`) beside their heatmaps. Same page frame, fonts and details as
`pdf_report`; no file or series name beyond the one the user gave, and nothing from DICOM
headers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

from brat import __version__
from brat.files import model_file_sha256
from brat.inference.pdf_report import (
    GREY,
    MARGIN,
    _details_block,
    _Document,
    _images,
    _probability_bars,
    _title,
    latin1,
    site_text,
)
from brat.inference.render import overlay
from brat.labels import METHOD_NAMES
from brat.model_folder import MODEL_FILE

# One colour per class along the strip, in the classes' order.
STRIP_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))


def study_pdf(
    result,
    study,
    explainer,
    *,
    study_sha256: str,
    method: str = "gradcam",
    case_id: str | None = None,
    created: datetime | None = None,
) -> bytes:
    """The report of a `StudyResult` of `study` as PDF bytes: a first page with the verdict, the
    probabilities and the strip, then a page for each of its strongest slices, each beside its
    `method` heatmap for the study's class."""
    import brat

    created = (created or datetime.now(UTC)).astimezone(UTC)
    model = explainer.classifier.path
    details = {
        "Case": case_id.strip() if case_id and case_id.strip() else None,
        "Created": f"{created:%Y-%m-%d %H:%M:%S} UTC",
        "brat version": __version__,
        "Model": Path(model).name,
        "Model file SHA-256": model_file_sha256(Path(model) / MODEL_FILE),
        "Site calibration": site_text(result.site),
        "Study": f"{result.name} ({result.kind}, {result.slices} slices analysed, "
        f"{result.skipped} left out as outside the head)",
        "Left out": result.left_out,
        "Study SHA-256": study_sha256,
    }
    pdf = _Document(created)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    _title(pdf, f"BraTum Scans study report: {result.name}")
    _details_block(pdf, details)
    pdf.text_line(f"Verdict: {result.verdict}", size=13, style="B")
    pdf.text_line(
        f"Most likely class over the study: {result.label}, probability "
        f"{result.probabilities[result.label]:.1%} from its strongest slices (a tumour shows on "
        "a few slices; slices that do not look like a brain MRI are left out)."
    )
    if result.prediction_set is not None:
        pdf.text_line(
            f"Prediction set at a {result.error_rate:.0%} error rate: "
            f"{' or '.join(result.prediction_set)} (calibrated on single slices: for a study a "
            "rule, not a guarantee)."
        )
    if result.reasons:
        pdf.text_line(f"Not answered because: {'; '.join(result.reasons)}.", color=(139, 0, 0))
    pdf.ln(2)
    _probability_bars(pdf, result.probabilities)
    pdf.ln(3)
    _strip(pdf, result)
    ranked = result.strongest_slices()
    for rank, position in enumerate(ranked, start=1):
        analysis = brat.analyze(study.slices[position], method, result.label, model=explainer)
        pdf.add_page()
        index = result.indices[position]
        _title(pdf, f"Slice {index}: strongest slice {rank} of {len(ranked)}")
        pdf.text_line(
            f"{result.label} {analysis.probabilities[result.label]:.1%} on this slice; its own "
            f"verdict: {analysis.verdict}."
        )
        pdf.ln(2)
        _images(pdf, analysis.pixels, overlay(analysis.pixels, analysis.heatmap), notes_height=12)
        pdf.text_line(
            f"Heatmap: {METHOD_NAMES.get(method, method)} for {result.label}; it shows where the "
            "model found evidence for that class, it is not a tumour segmentation.",
            size=9,
            color=GREY,
        )
    return bytes(pdf.output())


def _strip(pdf: _Document, result) -> None:
    """Each class's probability along the slices as a line, drawn with the PDF's own lines."""
    pdf.set_font("helvetica", "B", 10)
    pdf.cell(0, 5, "Calibrated probability along the slices", new_x="LMARGIN", new_y="NEXT")
    left, top, width, height = MARGIN + 8, pdf.get_y() + 2, pdf.epw - 10, 45.0
    pdf.set_draw_color(150)
    pdf.rect(left, top, width, height)
    probabilities = result.slice_probabilities
    n = len(probabilities)
    xs = [left + width * (i / max(n - 1, 1)) for i in range(n)]
    pdf.set_line_width(0.4)
    for column in range(probabilities.shape[1]):
        pdf.set_draw_color(*STRIP_COLOURS[column % len(STRIP_COLOURS)])
        ys = top + height * (1 - probabilities[:, column])
        points = list(zip(xs, ys, strict=True))
        if len(points) == 1:
            pdf.line(*points[0], points[0][0] + 0.5, points[0][1])
        for start, end in itertools.pairwise(points):
            pdf.line(*start, *end)
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0)
    pdf.set_font("helvetica", "", 8)
    pdf.set_xy(left - 8, top - 1)
    pdf.cell(8, 3, "1")
    pdf.set_xy(left - 8, top + height - 2)
    pdf.cell(8, 3, "0")
    pdf.set_xy(left, top + height + 1)
    first, last = result.indices[0], result.indices[-1]
    pdf.cell(width, 4, latin1(f"slice {first}  ...  slice {last}"), align="C")
    pdf.set_xy(left, top + height + 6)
    for column, name in enumerate(result.probabilities):
        pdf.set_text_color(*STRIP_COLOURS[column % len(STRIP_COLOURS)])
        pdf.cell(42, 4, latin1(name))
    pdf.set_text_color(0)
    pdf.ln(6)
