"""Diagnose: drop one or many scans; label, calibrated probabilities and a heatmap for each."""

import pandas as pd
import plotly.express as px
import streamlit as st

from brat import CLASSES
from brat.decode import dicom_patient_fields, dicom_window
from brat.errors import BratError
from brat.labels import METHOD_NAMES, METHODS, SHOWN_METHOD
from brat.ood import UNCERTAIN_BELOW
from brat.render import COLORMAPS, overlay, png_bytes, side_by_side
from brat.report import pdf_report, sha256_bytes
from brat.ui import explainer, header

UPLOAD_TYPES = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "dcm", "dicom"]

header(
    "Diagnose",
    "Drop brain MRI slices (JPEG, PNG, BMP, TIFF or DICOM). Each gets a label, calibrated "
    "probabilities and a heatmap of where the model found its evidence. Uploads stay in memory: "
    "nothing is written to disk.",
)
files = st.file_uploader(
    "Brain MRI slices", type=UPLOAD_TYPES, accept_multiple_files=True, key="uploads"
)
if not files:
    st.info("Drop one or more scans above to analyse them.", icon=":material/upload:")
    st.stop()
model = explainer()
if model is None:
    st.stop()


@st.cache_data(max_entries=64, show_spinner=False)
def analyse(data: bytes, name: str, method: str, target, window, model_key: str, _model=None):
    """Analysis of one upload (cached in memory per file, method, class, window and model)."""
    import brat

    try:
        return brat.analyze(data, method, target, model=_model, name=name, window=window), None
    except (BratError, ValueError) as error:
        return None, str(error)


model_key = str(model.classifier.path)
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
    st.caption(f"Model: `{model.classifier.path.name}`")

# Every file once with the predicted class explained by Grad-CAM: the summary of the batch.
results = {}
progress = st.progress(0.0, "Analysing…") if len(files) > 1 else None
for i, upload in enumerate(files):
    data = upload.getvalue()
    results[upload.file_id] = (
        upload,
        data,
        *analyse(data, upload.name, "gradcam", None, None, model_key, model),
    )
    if progress:
        progress.progress((i + 1) / len(files), f"Analysed {i + 1} of {len(files)}")
if progress:
    progress.empty()

if len(files) > 1:
    rows = []
    for upload, _, result, error in results.values():
        row = {"file": upload.name, "result": result.verdict if result else None}
        row["confidence"] = result.confidence if result else None
        row["looks like brain MRI"] = result.in_distribution if result else None
        row["ood score"] = result.ood_score if result else None
        row["plane"] = result.plane if result else None
        row.update({c: result.probabilities[c] if result else None for c in CLASSES})
        row["error"] = error
        rows.append(row)
    table = pd.DataFrame(rows)
    st.subheader(f"{len(files)} scans")
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
    index = st.selectbox(
        "Scan to inspect", range(len(files)), format_func=lambda i: files[i].name, key="chosen"
    )
    chosen = files[index].file_id
else:
    chosen = files[0].file_id

upload, data, summary, error = results[chosen]
st.subheader(upload.name)
if error:
    st.error(f"{upload.name}: {error}", icon=":material/broken_image:")
    st.stop()

window = None
patient = dicom_patient_fields(data, name=upload.name)
if patient:
    with st.expander("DICOM patient and study fields (hidden by default)", expanded=False):
        st.caption("Shown here only: never stored, logged or put into a report or export.")
        st.table(pd.DataFrame({"field": list(patient), "value": list(patient.values())}))
dicom = dicom_window(data, name=upload.name)
if dicom:
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
        window = (centre, width)

target = st.selectbox(
    "Explain class",
    [None, *CLASSES],
    format_func=lambda c: f"the prediction ({summary.label})" if c is None else c,
    key="target",
)
with st.spinner(f"Computing {METHOD_NAMES[method]}…"):
    result, error = analyse(data, upload.name, method, target, window, model_key, model)
if error:
    st.error(error, icon=":material/error:")
    st.stop()

threshold = model.classifier.ood.threshold if model.classifier.ood else None
if not result.in_distribution:
    st.error(
        "This does not look like a brain MRI slice (out-of-distribution score "
        f"{result.ood_score:.0f}, threshold {threshold:.0f}), so BraTum gives no diagnosis. The "
        "model's output below is shown for transparency only and is not meaningful.",
        icon=":material/report:",
    )
elif result.uncertain:
    st.warning(
        f"Uncertain: the most likely class has a calibrated probability of "
        f"{result.confidence:.0%}, below the {UNCERTAIN_BELOW:.0%} the model card sets for a "
        "definite answer.",
        icon=":material/help:",
    )
elif result.ood_score is None:
    st.caption("This model has no not-a-brain-MRI check (run `python -m brat ood DATA`).")
summary_row = st.columns(4)
summary_row[0].metric("Result", result.verdict, f"top class {result.label}", delta_color="off")
summary_row[3].metric(
    "View plane",
    result.plane or "unknown",
    f"{result.plane_confidence:.0%} confidence" if result.plane else "no plane model",
    delta_color="off",
)
summary_row[1].metric("Calibrated probability", f"{result.confidence:.1%}")
summary_row[2].metric("Heatmap", f"{METHOD_NAMES[method]}", result.target_class, delta_color="off")
left, right = st.columns([1, 2])
with left:
    chart = px.bar(
        x=list(result.probabilities.values()),
        y=list(result.probabilities),
        orientation="h",
        range_x=[0, 1],
        labels={"x": "calibrated probability", "y": ""},
        text=[f"{p:.1%}" for p in result.probabilities.values()],
    )
    chart.update_layout(height=260, margin={"l": 0, "r": 10, "t": 10, "b": 0})
    st.plotly_chart(chart, key=f"probabilities-{chosen}")
    st.caption(
        f"Heatmap: {METHOD_NAMES[method]} for {result.target_class}; the white outline encloses "
        f"its hottest 15%. Model and heatmap took {1000 * result.timings['model']:.0f} ms."
        + (f" {result.heatmap_note}" if result.heatmap_note else "")
    )
overlaid = overlay(result.pixels, result.heatmap, opacity, colormap)
with right:
    original_column, overlay_column = st.columns(2)
    original_column.image(result.pixels, caption="Original", clamp=True, width="stretch")
    overlay_column.image(overlaid, caption="Heatmap overlay", width="stretch")

caption = (
    f"{upload.name}: {result.label} {result.confidence:.1%}; "
    f"{METHOD_NAMES[method]} for {result.target_class}"
)
report = pdf_report(
    result,
    overlaid,
    model_path=model.classifier.path,
    model_file=model.classifier.path / "model.keras",
    input_name=upload.name,
    input_sha256=sha256_bytes(data),
)
stem = upload.name.rsplit(".", 1)[0]
buttons = st.columns(2)
buttons[0].download_button(
    "PDF report", report, f"{stem}-report.pdf", "application/pdf", icon=":material/picture_as_pdf:"
)
buttons[1].download_button(
    "Side-by-side PNG",
    png_bytes(side_by_side(result.pixels, overlaid), caption),
    f"{stem}-{method}.png",
    "image/png",
    icon=":material/image:",
)
