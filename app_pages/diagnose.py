"""Diagnose: drop one or many scans; label, calibrated probabilities and a heatmap for each."""

import streamlit as st

from app_pages.charts import probability_bars
from app_pages.diagnose_ui import (
    analyse_upload,
    analyse_uploads_ui,
    audit_ui,
    batch_table_ui,
    case_id_ui,
    dicom_ui,
    report_button_ui,
    sample_ui,
    settings_ui,
)
from app_pages.study_ui import chosen_study_ui, is_study_upload, study_ui
from app_pages.ui import explainer, header, model_key, site_note_ui, site_ui
from brat import CLASSES
from brat.files import sha256_bytes
from brat.inference.pdf_report import ReportScan
from brat.inference.render import overlay, png_bytes, side_by_side
from brat.labels import METHOD_NAMES

SET_MEANING = (
    "The prediction set holds every class the model cannot rule out: for scans like the ones it "
    "was calibrated on, the true class lies in the set at least {:.0%} of the time."
)
UPLOAD_TYPES = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "dcm", "dicom", "nii", "gz"]

header(
    "Diagnose",
    "Drop brain MRI slices (JPEG, PNG, BMP, TIFF or DICOM), or a study (a NIfTI volume, a DICOM "
    "series). Each gets a label, calibrated probabilities and a heatmap of where the model found "
    "its evidence. Uploads stay in memory: nothing is written to disk.",
)
files = st.file_uploader(
    "Brain MRI slices", type=UPLOAD_TYPES, accept_multiple_files=True, key="uploads"
)
files = files or sample_ui()
if not files:
    st.stop()
model = site_ui(explainer())
if model is None:
    st.stop()
settings = settings_ui(model)
method, opacity, colormap, error_rate = settings
if study_ui(files, model, *settings):
    st.stop()
results = analyse_uploads_ui(files, model, error_rate)
chosen, case_id = batch_table_ui(results, model.classifier.path)
upload, data, summary, error = results[chosen]
if is_study_upload(upload) and chosen_study_ui(upload, model, *settings):
    st.stop()
st.subheader(upload.name)
if error:
    st.error(f"{upload.name}: {error}", icon=":material/broken_image:")
    st.stop()
window = dicom_ui(data, upload.name)
target = st.selectbox(
    "Explain class",
    [None, *CLASSES],
    format_func=lambda c: f"the prediction ({summary.label})" if c is None else c,
    key="target",
)
with st.spinner(f"Computing {METHOD_NAMES[method]}…"):
    result, error = analyse_upload(
        data, upload.name, method, target, window, error_rate, model_key(model), model
    )
if error:
    st.error(error, icon=":material/error:")
    st.stop()
audit_ui(result, data, upload.name, method, model, (chosen, method, target, window, error_rate))

classifier = model.classifier
if reason := result.verdict_reason(classifier.ood.threshold if classifier.ood else None):
    alert = st.error if not result.in_distribution else st.warning
    alert(reason, icon=":material/report:" if not result.in_distribution else ":material/help:")
summary_row = st.columns(5)
summary_row[0].metric("Result", result.verdict, f"top class {result.label}", delta_color="off")
summary_row[1].metric("Calibrated probability", f"{result.confidence:.1%}")
summary_row[2].metric("Prediction set", result.set_text or "none")
summary_row[3].metric("Heatmap", f"{METHOD_NAMES[method]}", result.target_class, delta_color="off")
summary_row[4].metric(
    "View plane",
    result.plane or "unknown",
    f"{result.plane_confidence:.0%} confidence" if result.plane else "no plane model",
    delta_color="off",
)
if result.prediction_set:
    st.caption(SET_MEANING.format(1 - error_rate))
site_note_ui(classifier, error_rate)
left, right = st.columns([1, 2])
left.plotly_chart(probability_bars(result.probabilities), key=f"probabilities-{chosen}")
left.caption(
    f"Heatmap: {METHOD_NAMES[method]} for {result.target_class}; the white outline encloses "
    f"its hottest 15%. Model and heatmap took {1000 * result.timings['model']:.0f} ms."
    + (f" {result.heatmap_note}" if result.heatmap_note else "")
)
overlaid = overlay(result.pixels, result.heatmap, opacity, colormap)
original_column, overlay_column = right.columns(2)
original_column.image(result.pixels, caption="Original", clamp=True, width="stretch")
overlay_column.image(overlaid, caption="Heatmap overlay", width="stretch")

stem = upload.name.rsplit(".", 1)[0]
caption = f"{upload.name}: {result.label} {result.confidence:.1%}; {METHOD_NAMES[method]}"
buttons = st.columns(3, vertical_alignment="bottom")
if len(files) == 1:
    case_id = case_id_ui(buttons[2])
scan = ReportScan(upload.name, sha256_bytes(data), result, overlaid)
report_button_ui(
    buttons[0], "PDF report", f"{stem}-report.pdf", lambda: [scan], model.classifier.path, case_id
)
buttons[1].download_button(
    "Side-by-side PNG",
    png_bytes(side_by_side(result.pixels, overlaid), f"{caption} for {result.target_class}"),
    f"{stem}-{method}.png",
    "image/png",
    icon=":material/image:",
)
