"""The Evaluate page's widgets: the cached evaluation, the scans of a confusion-matrix cell, and
the combined model against one model per plane."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app_pages.ui import error_rate_slider, show_error
from brat.errors import BratError


@st.cache_data(show_spinner="Classifying the split…", max_entries=8)
def evaluation(folder: str, model_path: str, split: str, _model):
    """`brat.evaluation.evaluate.evaluate` of the model on `split`, cached per folder, model and
    split."""
    from brat.evaluation.evaluate import evaluate

    return evaluate(folder, _model.classifier, split, by_source=True, progress=False)


def cell_scans_ui(root, result, model, shown: int = 12) -> None:
    """The most confident scans of one cell of the confusion matrix, with their heatmaps."""
    import brat
    from brat.inference.render import overlay
    from brat.labels import SHOWN_METHOD

    classes = list(result.metrics.per_class)
    pick = st.columns(2)
    true_class = pick[0].selectbox("True class", classes, key="cell-true")
    predicted_class = pick[1].selectbox("Predicted class", classes, key="cell-predicted")
    predicted, confidence = result.predicted, result.probabilities.max(axis=1)
    chosen = [
        i
        for i in range(len(result.paths))
        if result.labels[i] == true_class and predicted[i] == predicted_class
    ]
    st.caption(f"{len(chosen)} scans; the {min(len(chosen), shown)} most confident are shown.")
    chosen.sort(key=lambda i: -confidence[i])
    grid = st.columns(4)
    for k, i in enumerate(chosen[:shown]):
        path = result.paths[i]
        try:
            analysis = brat.analyze(root / path, SHOWN_METHOD, model=model)
        except BratError as error:
            grid[k % 4].warning(f"{path}: {error}")
            continue
        grid[k % 4].image(
            overlay(analysis.pixels, analysis.heatmap),
            caption=f"{path}: {predicted[i]} {confidence[i]:.0%}",
            width="stretch",
        )


def plane_comparison_ui(root, model, choices: dict, split: str) -> None:
    """The stored `brat compare` result of the model, and comparing it again on `split` when the
    three per-plane models exist."""
    st.subheader("One model for all planes against one model per plane")
    st.caption(
        "The original project trained once on all scans and once per view plane. Here both are "
        "measured on the same held-out images of this model's split; each image's plane is its "
        "hand label or the plane classifier's prediction."
    )
    import pandas as pd

    from brat.evaluation.compare import (
        PlaneComparison,
        compare_planes,
        differences_text,
        find_plane_models,
    )
    from brat.inference.classifier import load_classifier
    from brat.labels import PLANES
    from brat.model_folder import COMPARISON_FILE

    def show(comparison: PlaneComparison, caption: str) -> None:
        st.caption(caption + differences_text(comparison.differences))
        table = pd.DataFrame(comparison.rows())
        percent = [c for c in table.columns if "accuracy" in c]
        f1 = [c for c in table.columns if "F1" in c]
        styled = table.style.format("{:.1%}", subset=percent).format("{:.3f}", subset=f1)
        st.dataframe(styled, hide_index=True)

    stored = model.classifier.path / COMPARISON_FILE
    if stored.is_file():
        import json

        comparison = PlaneComparison.from_json(json.loads(stored.read_text(encoding="utf-8")))
        show(comparison, f"Measured with `brat compare` and stored with {stored.parent.name}. ")
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
                return
        names = ", ".join(f"{plane}: {path.name}" for plane, path in plane_models.items())
        show(comparison, f"{names}. ")


def selective_ui(result, classifier) -> None:
    """Prediction sets at an error rate the user picks, the share answered and its accuracy,
    and the risk-coverage curve of each ordering score."""
    import numpy as np
    import pandas as pd

    from app_pages.charts import risk_coverage
    from brat.evaluation.selective import selective_of

    outputs = result.outputs
    if outputs is None or classifier.conformal is None:
        st.caption("This model has no prediction sets: run `python -m brat fit-checks DATA`.")
        return
    rate = error_rate_slider("eval-error-rate")
    sets = classifier.conformal.sets(outputs.probabilities, rate)
    truth = np.array([classifier.classes.index(label) for label in result.labels])
    s = selective_of(classifier, truth, replace(outputs, sets=sets, error_rate=rate))
    columns = st.columns(4)
    columns[0].metric("Coverage", f"{s.coverage:.1%}", f"asked {1 - rate:.0%}", delta_color="off")
    columns[1].metric("Mean set size", f"{s.mean_set_size:.2f}")
    columns[2].metric("Answered", f"{s.answered:.1%}")
    accuracy = "–" if s.answered_accuracy is None else f"{s.answered_accuracy:.1%}"
    columns[3].metric("Accuracy when answered", accuracy)
    left, right = st.columns([3, 2])
    left.plotly_chart(risk_coverage(s.curves), key="risk-coverage")
    left.caption(
        "Scans answered in order of each score (surest first): the accuracy of those answered "
        "against their share. Error-detection ROC AUC: "
        + ", ".join(f"{k} {v:.3f}" for k, v in s.error_auroc.items() if v is not None)
        + "."
    )
    right.dataframe(
        pd.DataFrame(s.per_class).T.rename_axis("true class").reset_index(), hide_index=True
    )


def planes_ui(result) -> None:
    """Accuracy per view plane over every image: its hand label, else the predicted plane."""
    import pandas as pd

    from brat.evaluation.evaluate import accuracy_by

    by_plane = pd.DataFrame(accuracy_by(result.planes, result.labels, result.predicted))
    if not len(by_plane):
        return
    st.subheader("Per view plane")
    st.caption(
        f"Each image's hand-labelled plane, else the plane classifier's prediction "
        f"({result.planes_predicted} of {result.metrics.n} predicted)."
    )
    st.dataframe(by_plane.rename(columns={"group": "plane"}), hide_index=True)


def split_ui(column, classifier, root) -> str:
    """The split to measure; a folder the model never trained on (none of its images is in the
    model's manifest) is measured whole, and the page says why."""
    foreign = not classifier.manifest_for(root)
    split = column.selectbox(
        "Split",
        ["all"] if foreign else ["test", "val", "train", "all"],
        key="eval-split-all" if foreign else "eval-split",
    )
    if foreign:
        st.caption(
            "The model was not trained on this folder (none of its images is in the model's "
            "manifest), so every image is measured. Copies of training images in it would flatter "
            "the numbers: `brat scan` finds them."
        )
    return split
