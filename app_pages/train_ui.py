"""The Train page's widgets: the training settings (defaults: `TrainConfig()`, the shipped
recipe), a run's live progress and charts, and the finished runs with promotion."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages.charts import training_batches, training_epochs
from app_pages.ui import show_error
from brat import PLANES
from brat.errors import BratError
from brat.training.config import AUGMENTATIONS, BALANCES, SCHEDULES, TrainConfig
from brat.training.model import ALPHAS, BACKBONE_BLOCKS, IMAGENET_SIZES, ModelConfig
from brat.training.runs import resume_run


def training_config_ui() -> TrainConfig:
    """The settings form's fields; every default is TrainConfig's. Raises ValueError for a
    combination TrainConfig refuses."""
    config, model = TrainConfig(), ModelConfig()
    columns = st.columns(4)
    plane = columns[0].selectbox("Planes", ["combined", *PLANES], key="plane")
    epochs = columns[1].number_input("Epochs", 1, 200, config.epochs, key="epochs")
    size = columns[2].selectbox(
        "Input size (px)", IMAGENET_SIZES, IMAGENET_SIZES.index(model.image_size), key="size"
    )
    alpha = columns[3].selectbox("Width (alpha)", ALPHAS, ALPHAS.index(model.alpha), key="alpha")
    columns = st.columns(4)
    learning_rate = columns[0].number_input(
        "Learning rate (0 = automatic)",
        0.0,
        1.0,
        config.learning_rate or 0.0,
        format="%.5f",
        key="learning_rate",
    )
    weights = columns[1].text_input(
        "Initial weights",
        model.weights,
        key="weights",
        help="imagenet (Keras download, else a local copy from $BRAT_WEIGHTS_DIR or Keras' "
        "cache), none, or the path of a MobileNetV2 no-top weights file.",
    )
    augment = columns[2].toggle("Augmentation", config.augment, key="augment")
    columns = st.columns(4)
    schedule = columns[0].selectbox(
        "Schedule",
        SCHEDULES,
        SCHEDULES.index(config.schedule),
        key="schedule",
        help="cosine: lower the learning rate along a cosine over every epoch and keep the last "
        "(the shipped model's); plateau: cut it when the validation loss stalls, stop early and "
        "keep the best epoch.",
    )
    evidence = columns[1].number_input(
        "Evidence loss weight",
        0.0,
        10.0,
        model.mask_weight,
        0.1,
        key="evidence",
        help="Teaches the model to find its evidence on the tumour, from the dataset's tumour "
        f"masks (images without a mask are unaffected; 0 = off). The shipped model used "
        f"{model.mask_weight}.",
    )
    strength = columns[2].selectbox(
        "Augmentation strength",
        AUGMENTATIONS,
        AUGMENTATIONS.index(config.augmentation),
        key="augmentation",
        help="standard: mirror, small rotation, zoom and shift, CLAHE and brightness/contrast "
        "(the shipped model's); strong: wider geometry, elastic or grid distortion, gamma, noise "
        "or blur; scanners: standard plus the looks of other scanners, sequences and saved "
        "slices (intensity curves, bias field, text, JPEG).",
    )
    columns = st.columns(4)
    frozen = columns[0].number_input(
        "Frozen blocks",
        0,
        BACKBONE_BLOCKS,
        config.frozen_blocks,
        key="frozen_blocks",
        help="Keep the backbone's stem and its first N of 17 blocks as loaded (pretrained "
        "weights only). 6 trains about 2.2x faster on a CPU (docs/training-speed.md).",
    )
    balance = columns[1].selectbox(
        "Sampling",
        BALANCES,
        BALANCES.index(config.balance),
        key="balance",
        help="none: every training image once an epoch; sources: within each class, every "
        "source (a folder, or metadata.csv's source) is drawn equally often.",
    )
    return TrainConfig(
        model=ModelConfig(
            image_size=int(size),
            alpha=float(alpha),
            weights=weights.strip(),
            mask_weight=float(evidence),
        ),
        epochs=int(epochs),
        schedule=schedule,
        learning_rate=learning_rate or None,
        augment=augment,
        augmentation=strength,
        plane=None if plane == "combined" else plane,
        frozen_blocks=int(frozen),
        balance=balance,
    )


def training_form_ui(running: bool, allowed: bool):
    """The settings form: (config or None, the problem with it or None, run name, submitted)."""
    with st.form("configure", border=True):
        try:
            config, problem = training_config_ui(), None
        except ValueError as error:
            config, problem = None, error
        name = st.text_input("Run name (optional)", key="run_name")
        submitted = st.form_submit_button(
            "Start training",
            icon=":material/play_arrow:",
            disabled=running or not allowed,
            type="primary",
        )
    return config, problem, name, submitted


def run_progress_ui(run, allowed: bool) -> None:
    """A run's progress, stop (or resume) button and live charts; a fragment reruns it every
    second while the run trains in its own process."""
    snapshot = run.snapshot()
    if snapshot.running != st.session_state.get("was_running", snapshot.running):
        st.session_state["was_running"] = snapshot.running
        st.rerun()  # The run ended: repaint the whole page (buttons, past runs).
    st.session_state["was_running"] = snapshot.running
    st.subheader(f"Run {snapshot.name}")
    eta = f", about {snapshot.eta / 60:.0f} min left" if snapshot.eta else ""
    st.progress(
        snapshot.fraction,
        f"{snapshot.status}. Epoch {snapshot.epoch or '–'} of {snapshot.epochs}, batch "
        f"{snapshot.batch} of {snapshot.batches or '–'}; {snapshot.elapsed / 60:.1f} min{eta}",
    )
    if snapshot.running:
        st.button(
            "Stop after this batch",
            icon=":material/stop:",
            on_click=run.stop,
            key="stop",
            disabled=not allowed,
        )
    elif snapshot.error:
        st.error(f"The run failed: {snapshot.error}. {snapshot.status}.", icon=":material/error:")
        if st.button("Resume", icon=":material/replay:", key="resume", disabled=not allowed):
            try:
                resume_run(snapshot.name)
                st.rerun()
            except BratError as error:
                show_error(error)
    else:
        st.success(f"{snapshot.state.replace('_', ' ').capitalize()}: {snapshot.status}.")
    charts = st.columns(2)
    if snapshot.batch_log:
        charts[0].plotly_chart(training_batches(snapshot.batch_log), key="batch-chart")
    if snapshot.epoch_log:
        charts[1].plotly_chart(training_epochs(snapshot.epoch_log), key="epoch-chart")


def finished_runs_ui(allowed: bool) -> None:
    """The finished model folders, and promotion of one to be the app's model."""
    import pandas as pd

    from brat.model_folder import list_models, promote
    from brat.settings import active_model_path, runs_dir

    st.subheader("Finished runs")
    runs = list_models()
    if not runs:
        st.caption(f"No finished runs in {runs_dir()} yet.")
        return
    table = pd.DataFrame([vars(run) for run in runs])
    table.insert(0, "active", table["path"] == str(active_model_path().resolve()))
    st.dataframe(
        table.drop(columns=["path"]),
        hide_index=True,
        column_config={
            "val_accuracy": st.column_config.NumberColumn("val accuracy", format="percent"),
            "val_macro_f1": st.column_config.NumberColumn("val macro-F1", format="%.3f"),
        },
    )
    chosen = st.selectbox("Run", table["name"], key="promote-choice")
    if st.button(
        "Make it the app's model", icon=":material/publish:", key="promote", disabled=not allowed
    ):
        try:
            promote(Path(table.loc[table["name"] == chosen, "path"].iloc[0]))
            st.cache_resource.clear()
            st.success(f"{chosen} is now the app's model.")
        except BratError as error:
            show_error(error)
