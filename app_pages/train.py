"""Train: fine-tune MobileNetV2 in a process of its own, watch it live, stop or resume it, promote
it."""

import streamlit as st

from app_pages.access_ui import data_folder, data_pages_unlocked
from app_pages.site_ui import adapt_ui
from app_pages.train_ui import finished_runs_ui, run_progress_ui, training_form_ui
from app_pages.ui import admin_unlocked, header, model_choices, show_error
from brat.errors import BratError
from brat.training.runs import current_run, start_run, training_rows

TRAIN, ADAPT = "Train a new model", "Adapt a model to a site"
header(
    "Train",
    "Fine-tune MobileNetV2 on a dataset folder. Training runs in a process of its own: leave the "
    "page, reload it, open it in another tab or restart the app, and the run goes on. Each epoch "
    "is checkpointed; a run that crashed or was killed resumes from its last epoch. The settings "
    "start at the shipped model's recipe. Or adapt a model to a site's own labelled scans.",
)
if not data_pages_unlocked("train on datasets"):
    st.stop()
allowed = admin_unlocked("start, stop and promote training runs")
run = current_run()
running = run is not None and run.running

root = data_folder()
mode = st.segmented_control(
    "Mode", [TRAIN, ADAPT], default=TRAIN, key="train-mode", label_visibility="collapsed"
)
submitted = False
if mode == ADAPT:
    adapt_ui(allowed, running, model_choices())
else:
    config, problem, name, submitted = training_form_ui(running, allowed)

if submitted and root is not None and allowed:
    try:
        if problem:
            raise problem
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
    run_progress_ui(run, allowed)


if run is not None:
    st.fragment(show_run, run_every=1.0 if running else None)()
finished_runs_ui(allowed)
