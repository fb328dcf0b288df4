"""The PDF report of analysed scans: real, selectable text and lossless images, made with fpdf2.

One scan gives one A4 page; a batch gives a summary page (one row per file, unreadable files
included) and then one page per readable scan. Each scan's page names the model (folder, brat
version, SHA-256 of model.keras) and the input (file name, SHA-256 of its bytes), gives the
verdict, the prediction set and every class probability, and shows the scan and its heatmap
overlay at their full resolution. Every page carries the research-use disclaimer. Patient data
from DICOM headers never goes into it: nothing here reads a DICOM header.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from fpdf import FPDF
from PIL import Image

from brat import DISCLAIMER, __version__
from brat.files import model_file_sha256
from brat.inference.render import HOTTEST_FRACTION, overlay, to_uint8
from brat.inference.verdict import NOT_MRI
from brat.labels import METHOD_NAMES

if TYPE_CHECKING:
    from brat.inference.analysis import Analysis

TITLE = "BraTum Scans report"
MARGIN = 15.0  # mm on every side of an A4 page (210 x 297 mm)
DARK_RED = (139, 0, 0)
GREY = (90, 90, 90)
BAR_BLUE = (70, 130, 180)
# Core PDF fonts (Helvetica, Courier) hold latin-1 only: the characters brat's own texts and
# typical file names use, spelled in latin-1.
_LATIN1_SPELLINGS = str.maketrans(
    {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": ",",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2026": "...",
        "\u2265": ">=",
        "\u2264": "<=",
        "\u2260": "!=",
        "\u2192": "->",
        "\u2190": "<-",
        "\u2022": "*",
        "\u20ac": "EUR",
        "\u2122": "(TM)",
    }
)


@dataclass(frozen=True)
class ReportScan:
    """One scan of a report: its analysis and heatmap overlay, or why it could not be read."""

    input_name: str  # the file name as the user gave it
    input_sha256: str  # of the file's bytes, so the report names exactly which input it judged
    analysis: Analysis | None = None
    overlaid: np.ndarray | None = None  # (H, W, 3) uint8, the heatmap on the scan, as shown
    error: str | None = None  # why the file is unreadable (only without an analysis)

    def __post_init__(self) -> None:
        if self.analysis is None and not self.error:
            raise ValueError(
                f"A scan without an analysis needs its `error`. Received: {self.input_name!r}"
            )
        if self.analysis is not None and self.overlaid is None:
            raise ValueError(
                f"A scan with an analysis needs its `overlaid` image. Received: {self.input_name!r}"
            )


def report_scan(
    input_name: str,
    input_sha256: str,
    analysis: Analysis | None,
    error: str | None = None,
    *,
    opacity: float = 0.45,
    colormap: str = "jet",
) -> ReportScan:
    """A `ReportScan` whose overlay is drawn from the analysis' own pixels and heatmap."""
    overlaid = (
        None
        if analysis is None
        else overlay(analysis.pixels, analysis.heatmap, opacity=opacity, colormap=colormap)
    )
    return ReportScan(input_name, input_sha256, analysis, overlaid, error)


def latin1(text: object) -> str:
    """`text` spelled with latin-1 characters only, so that any file name or case identifier
    prints: dashes, quotes and the like get their latin-1 spelling, accented letters lose the
    accent they cannot keep, control characters become spaces and anything else "?"."""
    characters = []
    for character in str(text).translate(_LATIN1_SPELLINGS):
        category = unicodedata.category(character)
        if category == "Cc":
            characters.append(" ")
        elif category == "Cf":
            continue
        elif ord(character) < 256:
            characters.append(character)
        else:
            plain = unicodedata.normalize("NFKD", character)
            kept = "".join(c for c in plain if ord(c) < 256 and not unicodedata.combining(c))
            characters.append(kept.translate(_LATIN1_SPELLINGS) or "?")
    return "".join(characters)


def pdf_report(
    scans: Sequence[ReportScan],
    *,
    model_path: Path,
    model_file: Path,
    case_id: str | None = None,
    created: datetime | None = None,
) -> bytes:
    """The PDF report of `scans` as bytes: one page for one readable scan; for several (or an
    unreadable one) a summary page first, then one page per readable scan.

    `model_path` is the model folder (its name is the model's name), `model_file` its
    model.keras, whose SHA-256 the report prints. `case_id` is the user's own identifier of the
    case (optional); `created` defaults to now, printed in UTC.
    """
    if not scans:
        raise ValueError(f"`scans` must hold at least one scan. Received: scans={scans!r}")
    created = (created or datetime.now(UTC)).astimezone(UTC)
    details = {
        "Case": case_id.strip() if case_id and case_id.strip() else None,
        "Created": f"{created:%Y-%m-%d %H:%M:%S} UTC",
        "brat version": __version__,
        "Model": Path(model_path).name,
        "Model file SHA-256": model_file_sha256(Path(model_file)),
        "Site calibration": site_text(next((s.analysis.site for s in scans if s.analysis), None)),
    }
    pdf = _Document(created)
    if len(scans) > 1 or scans[0].analysis is None:
        _summary_page(pdf, scans, details)
    for scan in scans:
        if scan.analysis is not None:
            _scan_page(pdf, scan, details)
    return bytes(pdf.output())


def site_text(site: str | None) -> str | None:
    """The report line naming the site profile that calibrated the answers (None: the model's
    own calibration)."""
    return f"{site} (probabilities and sets calibrated on this site's scans)" if site else None


class _Document(FPDF):
    """An A4 document whose every page starts with the disclaimer and ends with its number."""

    def __init__(self, created: datetime) -> None:
        super().__init__(format="A4", unit="mm")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_title(TITLE)
        self.set_creator(f"brat {__version__}")
        self.set_creation_date(created)

    def header(self) -> None:
        self.set_font("helvetica", "B", 9)
        self.set_text_color(*DARK_RED)
        self.multi_cell(0, 4.5, DISCLAIMER, align="L", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-MARGIN + 3)
        self.set_font("helvetica", "", 8)
        self.set_text_color(*GREY)
        self.cell(0, 4, f"BraTum Scans (brat {__version__}), page {self.page_no()} of {{nb}}")
        self.set_text_color(0)

    def text_line(self, text: str, size: float = 10, style: str = "", color=(0, 0, 0)) -> None:
        """A paragraph of `text` across the page, wrapped."""
        self.set_font("helvetica", style, size)
        self.set_text_color(*color)
        self.multi_cell(0, size * 0.45, latin1(text), align="L", new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)


def _title(pdf: _Document, text: str) -> None:
    pdf.text_line(text, size=15, style="B")
    pdf.ln(2)


def _details_block(pdf: _Document, details: dict[str, str | None]) -> None:
    """Name: value lines; a None value is left out. Hashes print in a fixed-width font."""
    for name, value in details.items():
        if value is None:
            continue
        pdf.set_font("helvetica", "B", 9)
        pdf.cell(38, 4.6, latin1(name))
        pdf.set_font("courier" if "SHA-256" in name else "helvetica", "", 9)
        pdf.multi_cell(0, 4.6, latin1(value), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _summary_page(pdf: _Document, scans: Sequence[ReportScan], details: dict) -> None:
    """A table of every scan (the reason beside an unreadable file's name), flowing onto more
    pages when it is long."""
    pdf.set_auto_page_break(True, margin=MARGIN)
    pdf.add_page()
    readable = sum(scan.analysis is not None for scan in scans)
    _title(pdf, f"{TITLE}: {len(scans)} scans")
    _details_block(pdf, details)
    pdf.text_line(
        f"{readable} readable, {len(scans) - readable} unreadable. Each readable scan has its own "
        "page after this one.",
        size=9,
    )
    pdf.ln(2)
    pdf.set_font("helvetica", "", 8.5)
    with pdf.table(
        col_widths=(54, 28, 34, 20, 44),
        text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "LEFT"),
        line_height=4.4,
        padding=1,
    ) as table:
        table.row(["File", "Verdict", "Top class", "Confidence", "Prediction set"])
        for scan in scans:
            row = table.row()
            row.cell(latin1(scan.input_name))
            analysis = scan.analysis
            if analysis is None:
                row.cell(latin1(f"unreadable: {scan.error}"), colspan=4)
                continue
            row.cell(latin1(analysis.verdict))
            row.cell(latin1(analysis.label))
            row.cell(f"{analysis.confidence:.1%}")
            row.cell(latin1(analysis.set_text or "none"))


def _scan_page(pdf: _Document, scan: ReportScan, details: dict) -> None:
    """One A4 page: who and what, the result, the probabilities, the scan and its heatmap."""
    analysis = scan.analysis
    pdf.set_auto_page_break(False)
    pdf.add_page()
    _title(pdf, f"{TITLE}: {scan.input_name}")
    _details_block(pdf, {**details, "Input": scan.input_name, "Input SHA-256": scan.input_sha256})
    pdf.text_line(f"Verdict: {analysis.verdict}", size=13, style="B")
    pdf.ln(1)
    for line in _result_lines(analysis):
        pdf.text_line(line)
    if analysis.reasons:
        pdf.text_line(_not_answered(analysis), color=DARK_RED)
    pdf.ln(2)
    _probability_bars(pdf, analysis.probabilities)
    pdf.ln(3)
    notes = _heatmap_notes(analysis)
    _images(pdf, analysis.pixels, scan.overlaid, notes_height=6 + 4.5 * len(notes) * 2)
    for note in notes:
        pdf.text_line(note, size=9, color=GREY)


def _result_lines(analysis: Analysis) -> list[str]:
    lines = [
        f"Most likely class: {analysis.label}, calibrated probability {analysis.confidence:.1%}."
    ]
    if analysis.prediction_set is not None:
        lines.append(
            f"Prediction set at a {analysis.error_rate:.0%} error rate: "
            f"{analysis.set_text or 'empty'} (the true class lies outside it for at most "
            f"{analysis.error_rate:.0%} of scans like the calibration scans)."
        )
    else:
        lines.append("Prediction set: none (this model has no prediction sets).")
    return lines


def _not_answered(analysis: Analysis) -> str:
    """Why the verdict is not the class, in one sentence."""
    if analysis.verdict == NOT_MRI:
        return (
            "Not answered because: this does not look like a brain MRI slice. The model's output "
            "is shown for transparency only and is not meaningful."
        )
    return f"Not answered because: {'; '.join(analysis.reasons)}."


def _probability_bars(pdf: _Document, probabilities: dict[str, float]) -> None:
    """One row per class, most likely first: name, a bar of its probability, the number."""
    pdf.set_font("helvetica", "B", 10)
    pdf.cell(0, 5, "Calibrated class probabilities", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 9.5)
    bar_left, bar_width, row_height = MARGIN + 45, 100.0, 5.5
    for name, probability in sorted(probabilities.items(), key=lambda item: -item[1]):
        y = pdf.get_y()
        pdf.cell(45, row_height, latin1(name))
        pdf.set_fill_color(*BAR_BLUE)
        if probability > 0:
            pdf.rect(bar_left, y + 1, bar_width * probability, row_height - 2, style="F")
        pdf.set_draw_color(150)
        pdf.rect(bar_left, y + 1, bar_width, row_height - 2)
        pdf.set_x(bar_left + bar_width + 3)
        pdf.cell(20, row_height, f"{probability:.1%}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(0)


def _heatmap_notes(analysis: Analysis) -> list[str]:
    notes = [
        f"Heatmap: {METHOD_NAMES.get(analysis.method, analysis.method)} for class "
        f"{analysis.target_class}. It shows where the model found evidence for that class; it is "
        f"not a tumour segmentation. The white outline encloses the hottest "
        f"{HOTTEST_FRACTION:.0%} of the heatmap."
    ]
    if analysis.heatmap_note:
        notes.append(analysis.heatmap_note)
    return notes


def _images(
    pdf: _Document, pixels: np.ndarray, overlaid: np.ndarray, *, notes_height: float
) -> None:
    """The scan and its overlay side by side, each embedded with every pixel, losslessly (fpdf2
    deflates a Pillow image's pixels as they are); only their size on the page is scaled, to fit
    the space left above the notes."""
    gap, caption_height = 6.0, 5.0
    box_width = (pdf.epw - gap) / 2
    box_height = pdf.h - MARGIN - 4 - notes_height - pdf.get_y() - caption_height
    height_px, width_px = pixels.shape[:2]
    scale = min(box_width / width_px, max(box_height, 30.0) / height_px)
    top = pdf.get_y()
    pictures = (("Scan", to_uint8(pixels)), ("Heatmap overlay", overlaid))
    for i, (caption, picture) in enumerate(pictures):
        left = MARGIN + i * (box_width + gap)
        pdf.set_xy(left, top)
        pdf.set_font("helvetica", "B", 9)
        pdf.cell(box_width, caption_height, caption)
        pdf.image(
            Image.fromarray(picture),
            x=left,
            y=top + caption_height,
            w=width_px * scale,
            h=height_px * scale,
        )
    pdf.set_xy(MARGIN, top + caption_height + height_px * scale + 3)
