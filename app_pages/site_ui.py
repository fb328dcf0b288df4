"""Widgets for a site's own labelled scans: validating a model there and saving a site profile
(Evaluate page), adapting a model to a site (Train page). The work is brat's
(`brat.evaluation.site`, `brat.inference.site`, `brat.training.adapt`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages.ui import show_error
from brat.errors import BratError

SITE_HELP = (
    "A site is a set of labelled scans from one place (class folders or a metadata.csv with "
    "labels): see whether the model is fit for it against your criteria, and save its "
    "calibration there as a site profile."
)
SITE_NAME_HELP = "1-40 letters, digits, '-', '_' or '.': how results, PDFs and the audit name it."


@st.cache_resource(max_entries=4, show_spinner=False)
def site_validation(folder: str, name: str, key: str, criteria, error_rate: float, _model):
    """`brat.evaluation.site.validate` of the model (`key`: `app_pages.ui.model_key`) on the
    site's scans, kept per site, model and criteria."""
    from brat.evaluation.site import read_site, validate

    site = read_site(folder, name, progress=False)
    return site, validate(site, _model.classifier, criteria, error_rate=error_rate, progress=False)


def criteria_ui():
    from brat.evaluation.site import Criteria

    default = Criteria()
    columns = st.columns(4)
    values = [
        columns[i].number_input(label, 0.0, 1.0, value, 0.01, key=f"site-{field}", help=text)
        for i, (field, label, value, text) in enumerate(
            [
                ("accuracy", "Accuracy at least", default.accuracy, None),
                (
                    "lower_bound",
                    "Its 95% lower bound at least",
                    default.lower_bound,
                    "The Wilson interval's lower bound: shown only with enough scans.",
                ),
                ("coverage", "Set coverage at least", default.coverage, None),
                ("rejected", "Not a brain MRI at most", default.rejected, None),
            ]
        )
    ]
    return Criteria(*values)


def site_validation_ui(root: Path, model, error_rate: float) -> None:
    """The chosen folder as a site: the verdict against the user's criteria, its numbers, a
    PDF, and saving the site's calibration as a profile of the model."""
    from app_pages.ui import model_key
    from brat.evaluation.site import FIT, TOO_FEW
    from brat.evaluation.site_report import site_pdf

    name = st.text_input("Site name", "site", key="site-name", help=SITE_NAME_HELP)
    try:
        criteria = criteria_ui()
        with st.spinner("Reading the site's scans and measuring the model…"):
            site, report = site_validation(
                str(root), name, model_key(model), criteria, error_rate, model
            )
    except (BratError, ValueError, OSError) as error:
        show_error(error)
        return
    alert = {FIT: st.success, TOO_FEW: st.info}.get(report.verdict, st.error)
    alert(
        f"**{report.verdict.capitalize()}.** " + " ".join(report.reasons),
        icon=":material/fact_check:",
    )
    m, s = report.metrics, report.selective
    if m is not None:
        row = st.columns(5)
        row[0].metric("Scans", m.n, f"{len(report.not_mri)} not a brain MRI", delta_color="off")
        row[1].metric(
            "Accuracy",
            f"{m.accuracy:.1%}",
            f"95% CI {m.accuracy_ci95[0]:.1%}–{m.accuracy_ci95[1]:.1%}",
            delta_color="off",
        )
        row[2].metric("ECE", f"{m.ece:.3f}")
        if s is not None and s.coverage is not None:
            row[3].metric(
                "Set coverage",
                f"{s.coverage:.1%}",
                f"mean size {s.mean_set_size:.2f}",
                delta_color="off",
            )
        if s is not None:
            right = f"{s.answered_accuracy:.1%} right" if s.answered_accuracy is not None else ""
            row[4].metric("Answered", f"{s.answered:.1%}", right, delta_color="off")
        table = pd.DataFrame(m.per_class).T.rename_axis("class").reset_index()
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                c: st.column_config.NumberColumn(format="percent") for c in ("precision", "recall")
            }
            | {"f1": None},
        )
        st.caption(
            "View planes: "
            + ", ".join(f"{p} {n}" for p, n in report.planes.items())
            + f". {report.unreadable} unreadable and {report.unlabelled} unlabelled files, "
            f"{len(report.conflicts)} groups of copies under different labels left out."
        )
    buttons = st.columns(2)
    buttons[0].download_button(
        "Validation PDF",
        lambda: site_pdf(report),
        f"site-{name}-validation.pdf",
        "application/pdf",
        icon=":material/picture_as_pdf:",
    )
    if buttons[1].button(
        f"Save as site profile {name}",
        icon=":material/save:",
        help="Re-fit the model's temperature and prediction sets on these scans: the Diagnose "
        "page's calibration choice, `brat predict --site`. Use scans the model never trained on.",
        key="site-save",
    ):
        save_profile_ui(site, model, name)


def save_profile_ui(site, model, name: str) -> None:
    from brat.inference.site import calibrate_site

    try:
        profile = calibrate_site(
            model.classifier, site.root, site.records, name, [site.root], progress=False
        )
    except BratError as error:
        show_error(error)
        return
    st.success(
        f"Saved site {name}: temperature {profile.temperature:.2f}, ECE {profile.ece_before:.3f} "
        f"→ {profile.ece_after:.3f} on its {profile.n} scans. Choose it on the Diagnose page."
    )


def adapt_ui(allowed: bool, running: bool, model_choices: dict) -> None:
    """Adapt a model to a site: the model, the site's folders and name; the run trains in its own
    process like any training run, and writes a new model folder with the site's profile."""
    from app_pages.access_ui import chosen_folders, data_folder
    from brat.training.runs import start_run

    st.caption(
        "Fine-tunes a model on a site's own labelled scans, mixed with the model's training "
        "images from the dataset folders above so that it does not forget them; the model's test "
        "split stays held out. With 80 or more site scans, a quarter of the site's patients is "
        "held out to calibrate the new model on the site."
    )
    for warning in st.session_state.pop("adapt-warnings", []):
        st.warning(warning, icon=":material/warning:")
    model_label = st.selectbox("Model to adapt", list(model_choices), key="adapt-model")
    st.markdown("**The site's labelled scans**")
    site_root = data_folder("site_folders")
    name = st.text_input("Site name", "site", key="adapt-site", help=SITE_NAME_HELP)
    run_name = st.text_input("Run name (optional)", key="adapt-run")
    accept = st.checkbox("Adapt even to a site of one class", key="adapt-accept")
    if not st.button(
        "Start adapting",
        icon=":material/play_arrow:",
        disabled=running or not allowed or site_root is None,
        type="primary",
    ):
        return
    from brat.training.adapt import plan_adaptation

    try:
        with st.spinner("Reading the site's scans and the model's own images…"):
            plan = plan_adaptation(
                model_choices[model_label],
                chosen_folders("site_folders"),
                chosen_folders("data_folder"),
                name=name.strip(),
                accept_warnings=accept,
                progress=False,
            )
        run = start_run(
            plan.root,
            plan.manifest,
            plan.config,
            name=run_name.strip() or None,
            site={"name": plan.name, "folders": plan.site_folders},
        )
    except (BratError, ValueError) as error:
        show_error(error)
        return
    st.session_state["adapt-warnings"] = plan.warnings
    scans = plan.site_scans
    st.toast(
        f"Started {run.name}: {scans['train']} site scans ({scans['val']} held out to calibrate) "
        f"with {plan.replayed['train']} of the model's own training images.",
        icon=":material/play_arrow:",
    )
    st.rerun()
