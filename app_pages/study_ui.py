"""The Diagnose page's study view: uploads that form one study (a NIfTI volume, the DICOM files of
a series, a multi-frame DICOM, or images marked as one study) get one verdict, a per-slice strip
and a slice viewer with its heatmap (`brat.inference.study`)."""

from __future__ import annotations

import streamlit as st

from brat.errors import BratError


def is_study_upload(upload) -> bool:
    """A NIfTI volume or a multi-frame DICOM: a study in one file."""
    from brat.data.studies import NIFTI_SUFFIXES

    name = upload.name.lower()
    return name.endswith(NIFTI_SUFFIXES) or _frames(upload.getvalue(), name) > 1


def study_ui(files: list, model, method: str, opacity: float, colormap: str, error_rate: float):
    """Show the study view and return True when the uploads are one study: one file that is a
    study, or several the user reads as one (by default, several single DICOM files)."""
    if len(files) == 1 and is_study_upload(files[0]):
        return chosen_study_ui(files[0], model, method, opacity, colormap, error_rate)
    names = [upload.name.lower() for upload in files]
    single = not any(is_study_upload(upload) for upload in files)
    as_study = single and st.toggle(
        "Read these uploads as one study (one patient's slices)",
        value=len(files) > 1 and all(name.endswith((".dcm", ".dicom")) for name in names),
        key="as-study",
        help="A DICOM series or several slices of one patient: one verdict from all the "
        "slices, and where along them the evidence lies.",
    )
    if as_study:
        _study_view(files, "axial", model, method, opacity, colormap, error_rate)
    return as_study


def chosen_study_ui(upload, model, method, opacity, colormap, error_rate) -> bool:
    """The study view of one upload that is a study (a volume is cut in the plane picked)."""
    from brat.data.studies import NIFTI_SUFFIXES

    plane = "axial"
    if upload.name.lower().endswith(NIFTI_SUFFIXES):
        plane = st.segmented_control(
            "View plane", ["axial", "coronal", "sagittal"], default="axial", key="study-plane"
        )
    _study_view([upload], plane or "axial", model, method, opacity, colormap, error_rate)
    return True


def upload_study(upload, model, error_rate: float):
    """(StudyResult, None) or (None, the error) of one upload that is a study, for the batch
    table's row; logged to the audit trail once per session."""
    items, hashes, key = _identity([upload], model)
    try:
        _, result = analysed_study(key, "axial", error_rate, items, model)
    except BratError as error:
        return None, error
    _audit_ui(result, hashes, model, (key, "axial", error_rate))
    return result, None


def _identity(files: list, model) -> tuple[list, list[str], str]:
    """The uploads' (name, bytes), their SHA-256s, and a key of the study they make, in order,
    as the model (with its site profile) reads it."""
    from app_pages.ui import model_key
    from brat.files import sha256_bytes

    items = [(upload.name, upload.getvalue()) for upload in files]
    hashes = [sha256_bytes(data) for _, data in items]
    return items, hashes, sha256_bytes(("".join(hashes) + model_key(model)).encode())[:16]


def _study_view(files, plane, model, method, opacity, colormap, error_rate) -> None:
    from app_pages.ui import site_note_ui

    items, hashes, key = _identity(files, model)
    with st.spinner("Reading and classifying every slice…"):
        try:
            study, result = analysed_study(key, plane, error_rate, items, model)
        except BratError as error:
            st.error(str(error), icon=":material/broken_image:")
            return
    _audit_ui(result, hashes, model, (key, plane, error_rate))
    _verdict_ui(result, error_rate)
    site_note_ui(model.classifier, error_rate)
    _slices_ui(study, result, model, method, opacity, colormap, key)
    _report_ui(study, result, model, method, hashes)


def _report_ui(study, result, model, method: str, hashes: list[str]) -> None:
    """The study's PDF report (made when the button is clicked) beside the case identifier."""
    from app_pages.diagnose_ui import case_id_ui
    from brat.files import sha256_bytes
    from brat.inference.study_report import study_pdf

    button, case = st.columns(2, vertical_alignment="bottom")
    case_id = case_id_ui(case, key="study-case-id")
    digest = sha256_bytes("".join(sorted(hashes)).encode())

    def report() -> bytes:
        return study_pdf(result, study, model, study_sha256=digest, method=method, case_id=case_id)

    button.download_button(
        "PDF report of the study",
        report,
        "brat-study-report.pdf",
        "application/pdf",
        icon=":material/picture_as_pdf:",
    )


@st.cache_resource(max_entries=4, show_spinner=False)
def analysed_study(key: str, plane: str, error_rate: float, _items: list, _model):
    """The study of the uploads `_items` (whose bytes `key` hashes) and its result, kept as
    objects: a slider move must not copy a study's slices."""
    from brat.data.studies import study_from_files
    from brat.inference.study import analyze_study

    name = _items[0][0] if len(_items) == 1 else "study"
    study = study_from_files(_items, plane, name)
    return study, analyze_study(study, _model, error_rate)


def _frames(data: bytes, name: str) -> int:
    """How many frames a DICOM upload holds (0 for anything else)."""
    import io

    import pydicom

    if not name.endswith((".dcm", ".dicom")):
        return 0
    try:
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        return int(header.get("NumberOfFrames", 1) or 1)
    except Exception:
        return 0


def _audit_ui(result, hashes: list[str], model, key: tuple) -> None:
    """The study's line in the audit trail, once per session and study."""
    from app_pages.access_ui import user_name
    from app_pages.ui import first_time
    from brat import audit

    if not first_time(("audit-study", *key)):
        return
    try:
        audit.record_study(result, file_hashes=hashes, model=model, origin="app", user=user_name())
    except BratError as error:
        st.warning(f"This study is not in the audit log: {error}", icon=":material/history:")


def _verdict_ui(result, error_rate: float) -> None:
    st.subheader(f"Study {result.name}: {result.slices} slices")
    if result.verdict == "not a brain MRI":
        st.error(
            "No slice of this study looks like a brain MRI slice the model knows.",
            icon=":material/report:",
        )
    elif result.reasons:
        st.warning(f"Uncertain: {'; '.join(result.reasons)}.", icon=":material/help:")
    row = st.columns(4)
    row[0].metric("Study result", result.verdict, f"top class {result.label}", delta_color="off")
    row[1].metric("Study probability", f"{result.probabilities[result.label]:.1%}")
    row[2].metric("Prediction set", " or ".join(result.prediction_set or []) or "none")
    row[3].metric("Slices", result.slices, f"{result.skipped} outside the head", delta_color="off")
    if result.left_out:
        st.info(f"Left out: {result.left_out}.", icon=":material/filter_alt:")
    st.caption(
        "A tumour shows on a few slices of a study: the study's tumour probability comes from its "
        "strongest slices and a study with no tumour slice is a no-tumour study (slices that do "
        f"not look like a brain MRI are left out). Its prediction set (at a {error_rate:.0%} "
        "error rate) is calibrated on single slices, so for a study it is a rule, not a "
        "guarantee."
    )


def _strongest_ui(study, result, slider: str) -> None:
    """The study's strongest slices first, each with its evidence and a button to view it."""
    classes = list(result.probabilities)
    if result.label == "no_tumor":
        st.markdown("**The slices closest to a tumour reading** (check these before agreeing)")
        column, name = classes.index("no_tumor"), "tumour"
    else:
        st.markdown(f"**The strongest slices for {result.label}**")
        column, name = classes.index(result.label), result.label
    strongest = result.strongest_slices()
    for cell, position in zip(st.columns(len(strongest)), strongest, strict=True):
        index = result.indices[position]
        p = result.slice_probabilities[position, column]
        p = 1.0 - p if name == "tumour" else p
        cell.image(study.slices[position], caption=f"Slice {index}: {name} {p:.0%}", clamp=True)
        cell.button(
            f"View slice {index}",
            key=f"strongest-{slider}-{index}",
            on_click=lambda i=index: st.session_state.update({slider: i}),
        )


def _slices_ui(study, result, model, method, opacity, colormap, key: str) -> None:
    import brat
    from app_pages.charts import study_strip
    from brat.inference.render import overlay
    from brat.labels import METHOD_NAMES

    strongest = result.indices[result.strongest_slice]
    slider = f"study-slice-{key}"  # each study its own slider: a new one opens on its strongest
    st.session_state.setdefault(slider, strongest)
    _strongest_ui(study, result, slider)
    st.button(
        "Jump to the slice with the most evidence",
        icon=":material/my_location:",
        on_click=lambda: st.session_state.update({slider: strongest}),
    )
    index = st.select_slider("Slice", result.indices, key=slider)
    classes = list(result.probabilities)
    st.plotly_chart(
        study_strip(result.indices, result.slice_probabilities, classes, index), key="study-strip"
    )
    pixels = study.slices[result.indices.index(index)]
    analysis = brat.analyze(pixels, method, result.label, model=model)
    left, right = st.columns(2)
    left.image(analysis.pixels, caption=f"Slice {index}", clamp=True, width="stretch")
    right.image(
        overlay(analysis.pixels, analysis.heatmap, opacity, colormap),
        caption=f"{METHOD_NAMES[method]} for {result.label}: "
        f"{analysis.probabilities[result.label]:.1%} on this slice",
        width="stretch",
    )
