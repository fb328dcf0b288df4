"""Train: fine-tune MobileNetV2 in a background thread, watch it live, stop it, promote it."""

from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from brat import PLANES
from brat.errors import BratError
from brat.model import ALPHAS, IMAGENET_SIZES, ModelConfig
from brat.runs import current_run, past_runs, start_run, training_rows
from brat.settings import active_model_path, promote, runs_dir
from brat.train_config import AUGMENTATIONS, SCHEDULES, TrainConfig
from brat.ui import admin_unlocked, data_folder, header, show_error

header(
    "Train",
    "Fine-tune MobileNetV2 on a dataset folder. Training runs in the background: leave the page, "
    "reload it or open it in another tab, and the run goes on. Each epoch is checkpointed; after "
    "a crash, starting the same settings again resumes from the last epoch.",
)
allowed = admin_unlocked("start, stop and promote training runs")
run = current_run()
running = run is not None and run.running

with st.form("configure", border=True):
    root = data_folder()
    columns = st.columns(4)
    plane = columns[0].selectbox("Planes", ["combined", *PLANES], key="plane")
    epochs = columns[1].number_input("Epochs", 1, 200, 10, key="epochs")
    size = columns[2].selectbox(
        "Input size (px)", IMAGENET_SIZES, IMAGENET_SIZES.index(160), key="size"
    )
    alpha = columns[3].selectbox("Width (alpha)", ALPHAS, ALPHAS.index(1.0), key="alpha")
    columns = st.columns(4)
    learning_rate = columns[0].number_input(
        "Learning rate (0 = automatic)", 0.0, 1.0, 0.0, format="%.5f", key="learning_rate"
    )
    weights = columns[1].text_input(
        "Initial weights",
        "imagenet",
        key="weights",
        help="imagenet (Keras download, else a local copy from $BRAT_WEIGHTS_DIR or Keras' "
        "cache), none, or the path of a MobileNetV2 no-top weights file.",
    )
    augment = columns[2].toggle("Augmentation", True, key="augment")
    name = columns[3].text_input("Run name (optional)", key="run_name")
    columns = st.columns(4)
    schedule = columns[0].selectbox(
        "Schedule",
        SCHEDULES,
        SCHEDULES.index("cosine"),
        key="schedule",
        help="cosine: lower the learning rate along a cosine over every epoch and keep the last "
        "(the shipped model's); plateau: cut it when the validation loss stalls, stop early and "
        "keep the best epoch.",
    )
    evidence = columns[1].number_input(
        "Evidence loss weight",
        0.0,
        10.0,
        0.5,
        0.1,
        key="evidence",
        help="Teaches the model to find its evidence on the tumour, from the dataset's tumour "
        "masks (images without a mask are unaffected; 0 = off). The shipped model used 0.5.",
    )
    strength = columns[2].selectbox(
        "Augmentation strength",
        AUGMENTATIONS,
        key="augmentation",
        help="standard: mirror, small rotation, zoom and shift, CLAHE and brightness/contrast "
        "(the shipped model's); strong: wider geometry, elastic or grid distortion, gamma, noise "
        "or blur.",
    )
    submitted = st.form_submit_button(
        "Start training",
        icon=":material/play_arrow:",
        disabled=running or not allowed,
        type="primary",
    )

if submitted and root is not None and allowed:
    try:
        config = TrainConfig(
            model=ModelConfig(
                image_size=int(size),
                alpha=float(alpha),
                weights=weights.strip(),
                mask_weight=float(evidence),
                mask_target="evidence",
            ),
            epochs=int(epochs),
            schedule=schedule,
            learning_rate=learning_rate or None,
            augment=augment,
            augmentation=strength,
            plane=None if plane == "combined" else plane,
        )
        with st.spinner(
            "Reading the split" + (" and finding view planes…" if config.plane else "…")
        ):
            rows, origin = training_rows(root, planes=config.plane is not None)
        run = start_run(root, rows, config, name=name.strip() or None)
        st.toast(f"Started {run.name} on {origin}.", icon=":material/play_arrow:")
        running = True
    except (BratError, ValueError) as error:
        show_error(error)


def show_run() -> None:
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
    else:
        st.success(f"{snapshot.state.replace('_', ' ').capitalize()}: {snapshot.status}.")
    charts = st.columns(2)
    if snapshot.batch_log:
        batches = pd.DataFrame(snapshot.batch_log).melt(
            id_vars=["step", "epoch"], value_vars=["loss", "accuracy"], var_name="metric"
        )
        charts[0].plotly_chart(
            px.line(batches, x="step", y="value", color="metric", title="Per batch (training)"),
            key="batch-chart",
        )
    if snapshot.epoch_log:
        epochs_table = pd.DataFrame(snapshot.epoch_log).melt(
            id_vars=["epoch"],
            value_vars=["loss", "accuracy", "val_loss", "val_accuracy"],
            var_name="metric",
        )
        charts[1].plotly_chart(
            px.line(
                epochs_table, x="epoch", y="value", color="metric", markers=True, title="Per epoch"
            ),
            key="epoch-chart",
        )


if run is not None:
    st.fragment(show_run, run_every=1.0 if running else None)()

st.subheader("Finished runs")
runs = past_runs()
if not runs:
    st.caption(f"No finished runs in {runs_dir()} yet.")
    st.stop()
table = pd.DataFrame(runs)
active = str(active_model_path().resolve())
table.insert(0, "active", table["path"] == active)
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
