"""The Diagnose page's widgets: analysing uploads, the batch table, DICOM window, heatmap
settings. Each returns plain values; the analysis itself is `brat.analyze`."""

from __future__ import annotations

import streamlit as st

from brat.errors import BratError


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
        return None, str(error)


def analyse_uploads_ui(files: list, model, error_rate: float) -> dict[str, tuple]:
    """file_id -> (upload, bytes, Analysis or None, error or None) of every upload, with the
    predicted class explained by Grad-CAM (the fastest map), and a progress bar for several."""
    results = {}
    progress = st.progress(0.0, "Analysing…") if len(files) > 1 else None
    for i, upload in enumerate(files):
        data = upload.getvalue()
        analysis, error = analyse_upload(
            data, upload.name, "gradcam", None, None, error_rate, str(model.classifier.path), model
        )
        results[upload.file_id] = (upload, data, analysis, error)
        if progress:
            progress.progress((i + 1) / len(files), f"Analysed {i + 1} of {len(files)}")
    if progress:
        progress.empty()
    return results


def batch_table_ui(results: dict[str, tuple]) -> str:
    """The batch's table (one row per scan, the reason beside an unreadable file's name) with a
    CSV download; returns the file_id of the scan chosen for a closer look."""
    import pandas as pd

    from brat import CLASSES
    from brat.inference.prediction import prediction_record

    rows = []
    for upload, _, analysis, error in results.values():
        record = prediction_record(upload.name, analysis, error)
        probabilities = record.get("probabilities", {})
        rows.append(
            {
                "file": upload.name,
                "result": record.get("verdict") or "unreadable",
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
    ids = list(results)
    index = st.selectbox(
        "Scan to inspect", range(len(ids)), format_func=lambda i: rows[i]["file"], key="chosen"
    )
    return ids[index]


def dicom_ui(data: bytes, name: str) -> tuple[float, float] | None:
    """A DICOM file's patient fields behind a closed expander, and its window/level sliders;
    returns the chosen window (centre, width), or None for other files."""
    import pandas as pd

    from brat.data.decode import dicom_patient_fields, dicom_window

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
        st.caption(f"Model: `{model.classifier.path.name}`")
    return method, opacity, colormap, error_rate
