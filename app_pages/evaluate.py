"""Evaluate: a model on a split; confusion matrix to its scans, per-class metrics, calibration."""

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.access_ui import data_folder, data_pages_unlocked
from app_pages.charts import confusion_matrix, reliability
from app_pages.evaluate_ui import (
    cell_scans_ui,
    evaluation,
    plane_comparison_ui,
    planes_ui,
    selective_ui,
    split_ui,
)
from app_pages.site_ui import SITE_HELP, site_validation_ui
from app_pages.ui import error_rate_slider, explainer, header, model_choices, show_error
from brat.errors import BratError
from brat.evaluation.evaluate import error_groups_text, source_rows
from brat.evaluation.metrics import reliability_bins

header(
    "Evaluate",
    "Measure a model on a split of the dataset it was trained on. The test split holds images "
    "from patients the model never saw in training or model selection.",
)
if not data_pages_unlocked("measure models on datasets"):
    st.stop()
root = data_folder()
choices = model_choices()
columns = st.columns(2)
model_label = columns[0].selectbox("Model", list(choices), key="eval-model")
if root is None:
    st.stop()
model = explainer(choices[model_label])
if model is None:
    st.stop()
if st.toggle("Validate the model on these folders as a site", key="eval-site", help=SITE_HELP):
    site_validation_ui(root, model, error_rate_slider("site-error-rate"))
    st.stop()
split = split_ui(columns[1], model.classifier, root)
try:
    result = evaluation(str(root), str(model.classifier.path), split, model)
except (BratError, OSError, ValueError) as error:
    show_error(error)
    st.stop()

m = result.metrics
low, high = m.accuracy_ci95
metrics = st.columns(4)
metrics[0].metric("Images", m.n)
metrics[1].metric(
    "Accuracy", f"{m.accuracy:.1%}", f"95% CI {low:.1%}–{high:.1%}", delta_color="off"
)
metrics[2].metric("Macro-F1", f"{m.macro_f1:.3f}")
metrics[3].metric(
    "ECE (calibrated)", f"{m.ece:.3f}", f"uncalibrated {m.ece_uncalibrated:.3f}", delta_color="off"
)

classes = list(m.per_class)
left, right = st.columns([3, 2])
with left:
    st.subheader("Confusion matrix")
    st.caption("Rows: true class; columns: predicted class. Click a cell to see its scans.")
    figure = confusion_matrix(np.array(m.confusion_matrix), classes)
    event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="confusion")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if points:
        st.session_state["cell-true"], st.session_state["cell-predicted"] = points[0]["customdata"]
with right:
    st.subheader("Per class")
    st.dataframe(
        pd.DataFrame(m.per_class).T.rename_axis("class").reset_index(),
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in ("precision", "recall", "f1")
        },
    )
    truth = np.array([classes.index(label) for label in result.labels])
    st.plotly_chart(reliability(reliability_bins(result.probabilities, truth)), key="reliability")

if result.by_source and len(result.by_source) > 1:
    st.subheader("Per source")
    st.dataframe(pd.DataFrame(source_rows(result.by_source)), hide_index=True)
planes_ui(result)

if result.error_groups:
    st.subheader("Errors by patient")
    st.caption(
        error_groups_text(result.error_groups, result.groups_n)
        + " Where errors cluster by patient, a split of a few dozen patients moves by several "
        "points; cross-validation shows how much."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {**row, "predicted": ", ".join(f"{k} {v}" for k, v in row["predicted"].items())}
                for row in result.error_groups
            ]
        ),
        hide_index=True,
    )

st.subheader("Knowing when not to answer")
selective_ui(result, model.classifier)

st.subheader("Scans of one cell")
cell_scans_ui(root, result, model)

plane_comparison_ui(root, model, choices, split)
