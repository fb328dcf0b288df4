"""The PDF of a site validation (`brat validate --pdf`, the app's site section): the verdict
against the user's criteria, the numbers behind it, per class and the confusion matrix, on the
report machinery of `brat.inference.pdf_report` (fpdf2; the disclaimer on every page)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from brat import __version__
from brat.evaluation.site import FIT, SiteValidation
from brat.inference.pdf_report import DARK_RED, _details_block, _Document, _title, latin1

GREEN = (0, 100, 0)


def site_pdf(report: SiteValidation, created: datetime | None = None) -> bytes:
    created = (created or datetime.now(UTC)).astimezone(UTC)
    pdf = _Document(created)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    _title(pdf, f"BraTum Scans site validation: {report.site}")
    criteria = asdict(report.criteria)
    _details_block(
        pdf,
        {
            "Created": f"{created:%Y-%m-%d %H:%M:%S} UTC",
            "brat version": __version__,
            "Model": report.model,
            "Model file SHA-256": report.model_sha256 or None,
            "Site calibration": report.site_profile,
            "Criteria": f"accuracy >= {criteria['accuracy']:.0%} with its 95% interval's lower "
            f"bound >= {criteria['lower_bound']:.0%}, set coverage >= {criteria['coverage']:.0%}, "
            f"at most {criteria['rejected']:.0%} called not a brain MRI",
            "Scans": f"{report.scans} labelled and readable; {report.unreadable} unreadable, "
            f"{report.unlabelled} unlabelled, {len(report.conflicts)} groups of copies with "
            f"different labels left out",
        },
    )
    pdf.text_line(
        f"Verdict: {report.verdict}",
        size=14,
        style="B",
        color=GREEN if report.verdict == FIT else DARK_RED,
    )
    for reason in report.reasons:
        pdf.text_line(reason)
    pdf.ln(2)
    m, s = report.metrics, report.selective
    if m is not None:
        lines = [
            f"Accuracy {m.accuracy:.1%} (95% interval {m.accuracy_ci95[0]:.1%}-"
            f"{m.accuracy_ci95[1]:.1%}) on {m.n} scans that passed the not-a-brain-MRI check; "
            f"{len(report.not_mri)} were called not a brain MRI.",
            f"Calibration error (ECE) {m.ece:.3f}.",
        ]
        if s is not None and s.coverage is not None:
            lines.append(
                f"Prediction sets at a {s.error_rate:.0%} error rate hold the true class for "
                f"{s.coverage:.1%} of the scans, {s.mean_set_size:.2f} classes on average."
            )
        if s is not None:
            right = f", {s.answered_accuracy:.1%} of them right" if s.answered_accuracy else ""
            lines.append(f"Answered with a class: {s.answered:.1%}{right}.")
            if s.unfamiliar is not None:
                lines.append(f"Flagged unlike the training scans: {s.unfamiliar:.1%}.")
        lines.append(
            "View planes: " + ", ".join(f"{p} {n}" for p, n in report.planes.items()) + "."
        )
        for line in lines:
            pdf.text_line(line)
        pdf.ln(2)
        pdf.set_font("helvetica", "", 9)
        classes = list(m.per_class)
        with pdf.table(
            col_widths=(50, 22, 22, 22, *(16,) * len(classes)), line_height=4.6, padding=1
        ) as table:
            table.row(["Class", "Scans", "Recall", "Precision", *(c[:7] for c in classes)])
            for name, row, counts in zip(
                classes, m.per_class.values(), m.confusion_matrix, strict=True
            ):
                table.row(
                    [
                        latin1(name),
                        str(row["support"]),
                        f"{row['recall']:.1%}" if row["support"] else "-",
                        f"{row['precision']:.1%}",
                        *(str(c) for c in counts),
                    ]
                )
        pdf.text_line("Rows: true class; last columns: what the model answered.", size=8)
    return bytes(pdf.output())
