"""The Diagnose page's widgets: analysing uploads, the batch table, DICOM window, heatmap
settings. Each returns plain values; the analysis itself is `brat.analyze`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from brat.errors import BratError

STUDY_IN_BATCH = "a study: its own report is in its view (PDF report of the study)"


@st.cache_data(max_entries=64, show_spinner=False)
def analyse_upload(
    data: bytes, name: str, method: str, target, window, error_rate: float, model_key: str, _model
):
    """(Analysis, None) or (None, the reason) for one upload; cached in memory per file, method,
    class, window, error rate and model, so a page rerun analyses nothing twice."""
    import brat

    try:
        analysis = brat.analyze(
            data, method, target, model=_model, name=name, window=window, error_rate=error_rate
        )
        return analysis, None
    except (BratError, ValueError) as error:
        return None, error


def audit_ui(analysis, data: bytes, name: str, method: str, model, key: tuple, error=None) -> None:
    """Append `analysis` (or the `error` of an upload that could not be read) to the audit trail
    (`brat.audit`) once per session, `key` (file, method, class, window, error rate) and model
    (with its site profile): a rerun of the page is not a new analysis."""
    from app_pages.access_ui import user_name
    from app_pages.ui import first_time, model_key
    from brat import audit

    if not first_time(("audit", *key, model_key(model))):
        return

    try:
        audit.record_analysis(
            analysis,
            data=data,
            model=model,
            file_name=name,
            method=method,
            user=user_name(),
            error=error and str(error),
        )
    except BratError as error:
        st.warning(f"This analysis is not in the audit log: {error}", icon=":material/history:")


@dataclass(frozen=True)
class SampleScan:
    """A bundled sample scan in place of an upload (an upload's name, file_id and getvalue)."""

    name: str
    file_id: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


def sample_ui() -> list[SampleScan]:
    """With nothing uploaded: an offer of the bundled sample scans; after "Analyse the sample",
    the chosen one as the only upload (until something is uploaded)."""
    from brat.data.dataset import load_dataset
    from brat.settings import SAMPLES

    st.info(
        "Drop one or more scans above to analyse them, or try a bundled sample scan.",
        icon=":material/upload:",
    )
    try:
        records = {r.path: r for r in load_dataset(SAMPLES).records}
    except BratError:
        return []  # the samples folder is not there (an installed copy without it)
    choice, button = st.columns([3, 1], vertical_alignment="bottom")
    path = choice.selectbox(
        "Try a sample scan",
        list(records),
        format_func=lambda p: f"{records[p].label} · {records[p].plane} · {Path(p).name}",
        key="sample",
        help="Sixteen slices that ship with BraTum (samples/README.md: sources and licences).",
    )
    if button.button("Analyse the sample", icon=":material/play_arrow:"):
        st.session_state["sample-on"] = True
    if not st.session_state.get("sample-on"):
        return []
    data = (SAMPLES / path).read_bytes()
    return [SampleScan(f"sample {Path(path).name}", f"sample:{path}", data)]


def analyse_uploads_ui(files: list, model, error_rate: float) -> dict[str, tuple]:
    """file_id -> (upload, bytes, Analysis or None, error or None) of every upload, with the
    predicted class explained by Grad-CAM (the fastest map), and a progress bar for several; an
    upload that is a study (a volume, a multi-frame DICOM) has its StudyResult instead."""
    from app_pages.study_ui import is_study_upload, upload_study
    from app_pages.ui import model_key

    results = {}
    progress = st.progress(0.0, "Analysing…") if len(files) > 1 else None
    for i, upload in enumerate(files):
        data = upload.getvalue()
        if is_study_upload(upload):  # a volume or a multi-frame file: one row for the study
            results[upload.file_id] = (upload, data, *upload_study(upload, model, error_rate))
            continue
        analysis, error = analyse_upload(
            data, upload.name, "gradcam", None, None, error_rate, model_key(model), model
        )
        key = (upload.file_id, error_rate)
        audit_ui(analysis, data, upload.name, "gradcam", model, key, error)
        results[upload.file_id] = (upload, data, analysis, error)
        if progress:
            progress.progress((i + 1) / len(files), f"Analysed {i + 1} of {len(files)}")
    if progress:
        progress.empty()
    return results


def batch_table_ui(results: dict[str, tuple], model_path: Path) -> tuple[str, str | None]:
    """The batch's table (one row per scan or study, the reason beside an unreadable file's
    name) with a CSV download and the batch's PDF report; returns the file_id of the scan chosen
    for a closer look and the case identifier typed for the reports. One upload has no table."""
    if len(results) == 1:
        return next(iter(results)), None
    import pandas as pd

    from brat import CLASSES
    from brat.errors import error_kind
    from brat.inference.prediction import prediction_record
    from brat.inference.study import StudyResult

    rows = []
    for upload, _, analysis, error in results.values():
        kind = error_kind(error) if error else None
        if isinstance(analysis, StudyResult):
            rows.append(_study_row(upload.name, analysis))
            continue
        record = prediction_record(upload.name, analysis, error and str(error), error_kind=kind)
        probabilities = record.get("probabilities", {})
        rows.append(
            {
                "file": upload.name,
                "result": record.get("verdict") or f"unreadable: {kind}",
                "reason": record.get("error") or "; ".join(record.get("reasons") or []),
                "prediction set": " or ".join(record.get("prediction_set") or []),
                "confidence": record.get("confidence"),
                "looks like brain MRI": record.get("in_distribution"),
                "ood score": record.get("ood_score"),
                "familiar": record.get("familiar"),
                "plane": record.get("plane"),
                **{c: probabilities.get(c) for c in CLASSES},
            }
        )
    table = pd.DataFrame(rows)
    st.subheader(f"{len(rows)} scans")
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            c: st.column_config.ProgressColumn(c, format="percent", min_value=0, max_value=1)
            for c in ("confidence", *CLASSES)
        },
    )
    st.download_button(
        "Download the table (CSV)",
        table.to_csv(index=False).encode(),
        "brat-predictions.csv",
        "text/csv",
        icon=":material/download:",
    )
    case_id = batch_report_ui(results, model_path)
    ids = list(results)
    index = st.selectbox(
        "Scan to inspect", range(len(ids)), format_func=lambda i: rows[i]["file"], key="chosen"
    )
    return ids[index], case_id


def _study_row(name: str, result) -> dict:
    """A study's row of the batch table: its verdict over all its slices."""
    return {
        "file": f"{name} (study of {result.slices} slices)",
        "result": result.verdict,
        "reason": "; ".join(result.reasons),
        "prediction set": " or ".join(result.prediction_set or []),
        "confidence": result.probabilities[result.label],
        "looks like brain MRI": bool(result.slice_in_distribution.any()),
        **result.probabilities,
    }


def batch_report_ui(results: dict[str, tuple], model_path: Path) -> str | None:
    """The batch's PDF report download beside the case identifier; returns the case identifier."""
    from brat.errors import error_kind
    from brat.files import sha256_bytes
    from brat.inference.pdf_report import report_scan
    from brat.inference.study import StudyResult

    def unreadable(error) -> str:
        return f"{error_kind(error)}: {error}"

    button, case = st.columns(2, vertical_alignment="bottom")
    case_id = case_id_ui(case)

    def scans() -> list:
        return [
            report_scan(upload.name, sha256_bytes(data), analysis, error and unreadable(error))
            if not isinstance(analysis, StudyResult)
            else report_scan(upload.name, sha256_bytes(data), None, STUDY_IN_BATCH)
            for upload, data, analysis, error in results.values()
        ]

    report_button_ui(
        button, "PDF report of the batch", "brat-batch-report.pdf", scans, model_path, case_id
    )
    st.caption(
        "The batch report's heatmaps are Grad-CAM maps of each scan's predicted class (the "
        "fastest method); the report of one scan, below, uses the method chosen in the sidebar."
    )
    return case_id


def report_button_ui(
    container, label: str, file_name: str, scans, model_path: Path, case_id: str | None
) -> None:
    """A download button of the PDF report of `scans()` (a list of `ReportScan`), made when the
    button is clicked rather than at every rerun of the page."""
    from brat.inference.pdf_report import pdf_report
    from brat.model_folder import MODEL_FILE

    def report() -> bytes:
        return pdf_report(
            scans(), model_path=model_path, model_file=model_path / MODEL_FILE, case_id=case_id
        )

    container.download_button(
        label, report, file_name, "application/pdf", icon=":material/picture_as_pdf:"
    )


def case_id_ui(container=st, key: str = "case-id") -> str | None:
    """The optional case identifier the PDF reports print (None when empty)."""
    case_id = container.text_input(
        "Case identifier",
        key=key,
        max_chars=64,
        placeholder="optional",
        help="Your own reference for this case, printed in the PDF report. Use a pseudonymous "
        "reference, never a patient's name.",
    )
    return case_id.strip() or None


def dicom_ui(data: bytes, name: str) -> tuple[float, float] | None:
    """A DICOM file's patient fields behind a closed expander, and its window/level sliders;
    returns the chosen window (centre, width), or None for other files."""
    import pandas as pd

    from brat.data.dicom import dicom_patient_fields, dicom_window

    patient = dicom_patient_fields(data, name=name)
    if patient:
        with st.expander("DICOM patient and study fields (hidden by default)", expanded=False):
            st.caption("Shown here only: never stored, logged or put into a report or export.")
            st.table(pd.DataFrame({"field": list(patient), "value": list(patient.values())}))
    dicom = dicom_window(data, name=name)
    if not dicom:
        return None
    with st.expander("DICOM window / level", expanded=False):
        low, high = dicom["low"], dicom["high"]
        centre = st.slider(
            "Window centre (level)",
            low,
            high,
            min(max(dicom["centre"], low), high),
            key="window-centre",
        )
        width = st.slider(
            "Window width",
            1.0,
            max(high - low, 1.0),
            min(dicom["width"], max(high - low, 1.0)),
            key="window-width",
        )
    return centre, width


def settings_ui(model) -> tuple[str, float, str, float]:
    """The sidebar's heatmap method, opacity and colour map, and the prediction sets' error
    rate."""
    from app_pages.ui import error_rate_slider
    from brat.inference.render import COLORMAPS
    from brat.labels import METHOD_NAMES, METHODS, SHOWN_METHOD

    with st.sidebar:
        method = st.selectbox(
            "Heatmap method",
            METHODS,
            index=METHODS.index(SHOWN_METHOD),
            format_func=METHOD_NAMES.get,
            key="method",
            help=f"{METHOD_NAMES[SHOWN_METHOD]} (LayerCAM's fine map gated by Grad-CAM's, each "
            "summed with the mirror image's) points at the tumour most often (model card); "
            "Grad-CAM is the fastest.",
        )
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key="opacity")
        colormap = st.selectbox("Colour map", list(COLORMAPS), key="colormap")
        error_rate = error_rate_slider("error-rate", disabled=model.classifier.conformal is None)
        st.caption(audit_text())
        st.caption(f"Model: `{model.classifier.path.name}`")
        classifier = model.classifier
        if None in (classifier.ood, classifier.conformal, classifier.familiarity):
            st.caption("This model lacks some checks: run `python -m brat fit-checks DATA`.")
    return method, opacity, colormap, error_rate


def audit_text() -> str:
    """The audit trail's state in one line for the sidebar."""
    from brat.audit import log_path
    from brat.settings import audit_enabled, audit_file_names

    if not audit_enabled():
        return ":material/history: Audit log off (settings: `BRAT_AUDIT`)."
    names = "with file names" if audit_file_names() else "without file names"
    return f":material/history: Every analysis is logged, {names}, to `{log_path()}`."
