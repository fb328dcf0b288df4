"""Evaluate: a model on a split; confusion matrix to its scans, per-class metrics, calibration."""

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import brat
from brat.classifier import load_classifier
from brat.compare import compare_planes, comparison_rows, differences_text, find_plane_models
from brat.errors import BratError
from brat.evaluate import accuracy_by, error_groups_text, item_groups, predictions, report
from brat.labels import PLANES, SHOWN_METHOD
from brat.metrics import reliability_bins, softmax
from brat.model_card import COMPARISON_FILE
from brat.render import overlay
from brat.ui import data_folder, explainer, header, model_choices, show_error

SCANS_PER_CELL = 12


def comparison_frame(comparison: dict):
    """The comparison as a table, percentages and F1 formatted."""
    table = pd.DataFrame(comparison_rows(comparison))
    percent = [c for c in table.columns if "accuracy" in c]
    return table.style.format("{:.1%}", subset=percent).format(
        "{:.3f}", subset=[c for c in table.columns if "F1" in c]
    )


header(
    "Evaluate",
    "Measure a model on a split of the dataset it was trained on. The test split holds images "
    "from patients the model never saw in training or model selection.",
)
root = data_folder()
choices = model_choices()
columns = st.columns(2)
model_label = columns[0].selectbox("Model", list(choices), key="eval-model")
split = columns[1].selectbox("Split", ["test", "val", "train", "all"], key="eval-split")
if root is None:
    st.stop()
model = explainer(choices[model_label])
if model is None:
    st.stop()


@st.cache_data(show_spinner="Classifying the split…", max_entries=8)
def evaluation(folder: str, model_path: str, split: str, _model=None):
    paths, labels, logits = predictions(folder, _model.classifier, split, progress=False)
    try:
        planes = {r.path: r.plane for r in _model.classifier.manifest}
    except (OSError, BratError):
        planes = {}
    try:
        groups = item_groups(folder, _model.classifier, split)
    except (OSError, BratError):
        groups = {}
    full = report(_model.classifier, labels, paths, logits, split, groups)
    probabilities = softmax(logits, _model.classifier.temperature)
    return full, paths, labels, probabilities, [planes.get(p) for p in paths]


try:
    result, paths, labels, probabilities, planes = evaluation(
        str(root), str(model.classifier.path), split, model
    )
except (BratError, OSError, ValueError) as error:
    show_error(error)
    st.stop()
classes = list(model.classifier.classes)
predicted = [classes[i] for i in probabilities.argmax(axis=1)]

low, high = result["accuracy_ci95"]
metrics = st.columns(4)
metrics[0].metric("Images", result["n"])
metrics[1].metric(
    "Accuracy", f"{result['accuracy']:.1%}", f"95% CI {low:.1%}–{high:.1%}", delta_color="off"
)
metrics[2].metric("Macro-F1", f"{result['macro_f1']:.3f}")
metrics[3].metric(
    "ECE (calibrated)",
    f"{result['ece']:.3f}",
    f"uncalibrated {result['ece_uncalibrated']:.3f}",
    delta_color="off",
)

matrix = np.array(result["confusion_matrix"])
left, right = st.columns([3, 2])
with left:
    st.subheader("Confusion matrix")
    st.caption("Rows: true class; columns: predicted class. Click a cell to see its scans.")
    cells = [(t, p) for t in range(len(classes)) for p in range(len(classes))]
    figure = go.Figure(
        go.Scatter(
            x=[classes[p] for _, p in cells],
            y=[classes[t] for t, _ in cells],
            mode="markers+text",
            text=[str(matrix[t, p]) for t, p in cells],
            marker={
                "symbol": "square",
                "size": 70,
                "color": [np.log1p(matrix[t, p]) for t, p in cells],
                "colorscale": "Blues",
            },
            textfont={"size": 16},
            customdata=[[classes[t], classes[p]] for t, p in cells],
            hovertemplate="true %{customdata[0]}<br>predicted %{customdata[1]}: %{text}"
            "<extra></extra>",
        )
    )
    figure.update_layout(
        height=420,
        xaxis={"title": "predicted", "side": "top"},
        yaxis={"title": "true", "autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="confusion")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if points:
        st.session_state["cell-true"], st.session_state["cell-predicted"] = points[0]["customdata"]
with right:
    st.subheader("Per class")
    st.dataframe(
        pd.DataFrame(result["per_class"]).T.rename_axis("class").reset_index(),
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in ("precision", "recall", "f1")
        },
    )
    truth = np.array([classes.index(label) for label in labels])
    bins = pd.DataFrame(reliability_bins(probabilities, truth))
    diagram = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash"}),
            go.Scatter(
                x=bins["confidence"],
                y=bins["accuracy"],
                mode="lines+markers",
                name="model",
                text=bins["n"],
                hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>n %{text}",
            ),
        ]
    )
    diagram.update_layout(
        title="Reliability (calibrated)",
        height=300,
        xaxis_title="confidence",
        yaxis_title="accuracy",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    st.plotly_chart(diagram, key="reliability")

by_plane = pd.DataFrame(accuracy_by(planes, labels, predicted))
if len(by_plane):
    st.subheader("Per view plane (images with a known plane)")
    st.dataframe(by_plane.rename(columns={"group": "plane"}), hide_index=True)

if result.get("error_groups"):
    st.subheader("Errors by patient")
    st.caption(
        error_groups_text(result) + " Where errors cluster by patient, a split of a few dozen "
        "patients moves by several points; cross-validation shows how much."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {**row, "predicted": ", ".join(f"{k} {v}" for k, v in row["predicted"].items())}
                for row in result["error_groups"]
            ]
        ),
        hide_index=True,
    )

st.subheader("Scans of one cell")
pick = st.columns(2)
true_class = pick[0].selectbox("True class", classes, key="cell-true")
predicted_class = pick[1].selectbox("Predicted class", classes, key="cell-predicted")
chosen = [
    i for i in range(len(paths)) if labels[i] == true_class and predicted[i] == predicted_class
]
st.caption(f"{len(chosen)} scans; the {min(len(chosen), SCANS_PER_CELL)} most confident are shown.")
chosen.sort(key=lambda i: -probabilities[i].max())
grid = st.columns(4)
for k, i in enumerate(chosen[:SCANS_PER_CELL]):
    try:
        analysis = brat.analyze(root / paths[i], SHOWN_METHOD, model=model)
    except BratError as error:
        grid[k % 4].warning(f"{paths[i]}: {error}")
        continue
    grid[k % 4].image(
        overlay(analysis.pixels, analysis.heatmap),
        caption=f"{paths[i]}: {predicted[i]} {probabilities[i].max():.0%}",
        width="stretch",
    )

st.subheader("One model for all planes against one model per plane")
st.caption(
    "The original project trained once on all scans and once per view plane. Here both are "
    "measured on the same held-out images of this model's split; each image's plane is its hand "
    "label or the plane classifier's prediction."
)
stored = model.classifier.path / COMPARISON_FILE
if stored.is_file():
    comparison = json.loads(stored.read_text(encoding="utf-8"))
    st.caption(
        f"Measured with `brat compare` and stored with {model.classifier.path.name}. "
        + differences_text(comparison)
    )
    st.dataframe(comparison_frame(comparison), hide_index=True)
plane_models = find_plane_models(model.classifier.path, choices)
missing = [plane for plane in PLANES if plane not in plane_models]
if missing:
    st.info(
        f"No {', '.join(missing)} model yet. Train one per plane on the Train page (Planes), "
        "on this model's split, to compare them here.",
        icon=":material/info:",
    )
elif st.button(f"Compare on the {split} split", icon=":material/compare:", key="compare"):
    with st.spinner("Classifying with four models…"):
        try:
            comparison = compare_planes(
                root,
                model.classifier,
                {plane: load_classifier(path) for plane, path in plane_models.items()},
                split=split,
                progress=False,
            )
        except (BratError, OSError, ValueError) as error:
            show_error(error)
            st.stop()
    st.caption(
        ", ".join(f"{plane}: {path.name}" for plane, path in plane_models.items())
        + ". "
        + differences_text(comparison)
    )
    st.dataframe(comparison_frame(comparison), hide_index=True)
