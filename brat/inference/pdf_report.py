"""A one-page PDF report of one analysed scan, with the research-use disclaimer.

It names the model (folder, brat version, SHA-256 of model.keras) and the input (file name, SHA-256
of its bytes), gives the prediction and every class probability, and shows the scan next to its
heatmap overlay. Patient data from DICOM headers never goes into it.
"""

from __future__ import annotations

import io
import textwrap
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from brat import DISCLAIMER, __version__
from brat.files import sha256_file
from brat.inference.render import grey_to_rgb
from brat.labels import METHOD_NAMES

# A4 at 150 dots per inch.
PAGE = (1240, 1754)
MARGIN = 90


def model_file_sha256(path: Path) -> str:
    """`sha256_file` of a model file, cached per path, size and modification time: a report per
    scan does not re-read the model, and a model retrained at the same path is hashed again."""
    stat = Path(path).stat()
    return _cached_sha256(Path(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _cached_sha256(path: Path, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def pdf_report(analysis, overlaid: np.ndarray, **details) -> bytes:
    """The report of `analysis` as PDF bytes; `details` as for `report_page`."""
    buffer = io.BytesIO()
    report_page(analysis, overlaid, **details).save(
        buffer, format="PDF", resolution=150.0, title="BraTum Scans report"
    )
    return buffer.getvalue()


def report_page(
    analysis,
    overlaid: np.ndarray,
    *,
    model_path: Path,
    model_file: Path,
    input_name: str,
    input_sha256: str,
    created: datetime | None = None,
) -> Image.Image:
    """The report page of `analysis` (a `brat.inference.analysis.Analysis`): an A4 image at
    150 dpi."""
    created = created or datetime.now(UTC)
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    bold = ImageFont.load_default(size=34)
    y = MARGIN

    def line(text: str, *, size_font=font, fill="black", gap: int = 10) -> None:
        nonlocal y
        for part in textwrap.wrap(text, 88 if size_font is font else 56) or [""]:
            draw.text((MARGIN, y), part, font=size_font, fill=fill)
            y += size_font.size + gap

    line("BraTum Scans: brain MRI slice analysis", size_font=bold)
    line(DISCLAIMER, fill="darkred")
    y += 10
    line(f"Created {created:%Y-%m-%d %H:%M:%S %Z} by brat {__version__}")
    line(f"Model: {model_path.name}")
    line(f"Model file SHA-256: {model_file_sha256(Path(model_file))}")
    line(f"Input: {input_name}")
    line(f"Input SHA-256: {input_sha256}")
    y += 10
    line(f"Verdict: {analysis.verdict}", size_font=bold)
    line(f"Most likely class: {analysis.label} ({analysis.confidence:.1%})")
    if analysis.prediction_set:
        line(f"Prediction set at a {analysis.error_rate:.0%} error rate: {analysis.set_text}")
    if analysis.reasons:
        line(f"Not answered because: {'; '.join(analysis.reasons)}", fill="darkred")
    line(f"Heatmap: {METHOD_NAMES[analysis.method]} for class {analysis.target_class}")
    if analysis.heatmap_note:
        line(analysis.heatmap_note, fill="dimgray")
    y += 6
    bar_left, bar_width = MARGIN + 330, PAGE[0] - 2 * MARGIN - 430
    for name, probability in sorted(analysis.probabilities.items(), key=lambda item: -item[1]):
        draw.text((MARGIN, y), name, font=font, fill="black")
        draw.rectangle((bar_left, y + 2, bar_left + bar_width, y + 22), outline="grey")
        draw.rectangle(
            (bar_left, y + 2, bar_left + round(bar_width * probability), y + 22), fill="steelblue"
        )
        draw.text((bar_left + bar_width + 12, y), f"{probability:.1%}", font=font, fill="black")
        y += 34
    y += 20
    panel_width = (PAGE[0] - 2 * MARGIN - 30) // 2
    for i, (title, image) in enumerate(
        (("Original", grey_to_rgb(analysis.pixels)), ("Heatmap overlay", overlaid))
    ):
        picture = Image.fromarray(image)
        picture.thumbnail((panel_width, PAGE[1] - y - MARGIN - 40))
        left = MARGIN + i * (panel_width + 30)
        draw.text((left, y), title, font=font, fill="black")
        page.paste(picture, (left, y + 34))
    note = (
        "The heatmap shows where the model found evidence for the class; it is not a tumour "
        "segmentation. The white outline encloses the hottest 15% of the heatmap."
    )
    y = PAGE[1] - MARGIN - 2 * (font.size + 10)
    line(note, fill="dimgray")
    return page
