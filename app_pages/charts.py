"""Plotly figures the pages draw: plain functions of measured values, no Streamlit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def probability_bars(probabilities: dict[str, float]) -> go.Figure:
    chart = px.bar(
        x=list(probabilities.values()),
        y=list(probabilities),
        orientation="h",
        range_x=[0, 1],
        labels={"x": "calibrated probability", "y": ""},
        text=[f"{p:.1%}" for p in probabilities.values()],
    )
    chart.update_layout(height=260, margin={"l": 0, "r": 10, "t": 10, "b": 0})
    return chart


def confusion_matrix(matrix: np.ndarray, classes: list[str]) -> go.Figure:
    """One square per cell, clickable (its customdata is [true, predicted])."""
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
    return figure


def reliability(bins: list[dict]) -> go.Figure:
    """Accuracy against confidence per bin (`brat.evaluation.metrics.reliability_bins`)."""
    table = pd.DataFrame(bins)
    figure = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash"}),
            go.Scatter(
                x=table["confidence"],
                y=table["accuracy"],
                mode="lines+markers",
                name="model",
                text=table["n"],
                hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>n %{text}",
            ),
        ]
    )
    figure.update_layout(
        title="Reliability (calibrated)",
        height=300,
        xaxis_title="confidence",
        yaxis_title="accuracy",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def class_counts(table: pd.DataFrame, column: str) -> go.Figure:
    """Images per class, split by `column` (plane or split)."""
    grouped = table.groupby(["label", column]).size().reset_index(name="images")
    return px.bar(
        grouped,
        x="label",
        y="images",
        color=column,
        barmode="group",
        text="images",
        title=f"Class x {column}",
        labels={"label": "class"},
    )


def training_batches(batch_log: list[dict]) -> go.Figure:
    batches = pd.DataFrame(batch_log).melt(
        id_vars=["step", "epoch"], value_vars=["loss", "accuracy"], var_name="metric"
    )
    return px.line(batches, x="step", y="value", color="metric", title="Per batch (training)")


def training_epochs(epoch_log: list[dict]) -> go.Figure:
    epochs = pd.DataFrame(epoch_log).melt(
        id_vars=["epoch"],
        value_vars=["loss", "accuracy", "val_loss", "val_accuracy"],
        var_name="metric",
    )
    return px.line(epochs, x="epoch", y="value", color="metric", markers=True, title="Per epoch")


def risk_coverage(curves: dict[str, list[dict]]) -> go.Figure:
    """Accuracy of the answered scans against the share answered, one line per ordering score
    (`brat.evaluation.selective`)."""
    rows = [
        {"score": name, "share answered": point["answered"], "accuracy": point["accuracy"]}
        for name, points in curves.items()
        for point in points
    ]
    chart = px.line(
        pd.DataFrame(rows), x="share answered", y="accuracy", color="score", markers=True
    )
    chart.update_layout(height=320, margin={"l": 0, "r": 10, "t": 10, "b": 0})
    return chart


def study_strip(
    indices: list[int], probabilities: np.ndarray, classes: list[str], current: int
) -> go.Figure:
    """Each class's calibrated probability along a study's slices, the shown slice marked."""
    figure = go.Figure(
        [
            go.Scatter(x=indices, y=probabilities[:, i], mode="lines+markers", name=name)
            for i, name in enumerate(classes)
        ]
    )
    figure.add_vline(x=current, line_dash="dot", line_color="grey")
    figure.update_layout(
        height=240,
        margin={"l": 0, "r": 10, "t": 10, "b": 0},
        xaxis_title="slice",
        yaxis={"title": "calibrated probability", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.35},
    )
    return figure
