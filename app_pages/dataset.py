"""Dataset: browse by class, plane and split; duplicates and leaks; live augmentation preview."""

import pandas as pd
import streamlit as st

from app_pages.access_ui import data_folder, data_pages_unlocked
from app_pages.charts import class_counts
from app_pages.dataset_ui import (
    augmentation_ui,
    browse_ui,
    duplicates_ui,
    image_table,
    with_predicted_planes,
)
from app_pages.ui import explainer, header, show_error
from brat.errors import BratError
from brat.settings import active_model_path

header(
    "Dataset", "Browse a dataset folder, check it for duplicates and leaks, preview augmentations."
)
if not data_pages_unlocked("browse datasets"):
    st.stop()
root = data_folder()
if root is None:
    st.stop()
model_path = str(active_model_path())
try:
    table = image_table(str(root), model_path)
except BratError as error:
    show_error(error)
    st.stop()
model = explainer(model_path)
if model is not None and model.classifier.planes is None:
    st.info("The active model has no plane classifier: only hand-labelled planes are shown.")
elif model is not None:
    try:
        table = with_predicted_planes(table, str(root), model_path, model.classifier)
    except BratError as error:
        show_error(error)

predicted = table["plane_source"].str.startswith("predicted")
st.subheader("Images per class and view plane")
st.caption(
    "The original project's angles: axial (top), coronal (back), sagittal (left). Each image's "
    f"plane is its hand label, else the active model's plane classifier's prediction "
    f"({int(predicted.sum())} of {len(table)} predicted, marked in Browse)."
)
st.dataframe(
    pd.crosstab(table["label"], table["plane"], margins=True, margins_name="all"),
    width="content",
)
browse, counts, duplicates, augment = st.tabs(
    ["Browse", "Counts", "Duplicates and leaks", "Augmentation preview"]
)
with browse:
    shown = browse_ui(root, table)
with counts:
    for column in ("plane", "split"):
        st.plotly_chart(class_counts(table, column), key=f"counts-{column}")
    labelled = table[table["plane"] != "unknown"]
    if len(labelled):
        st.subheader("Sub-classes (class / plane), as in the original project")
        sub = labelled.assign(subclass=labelled["label"] + " / " + labelled["plane"])
        st.dataframe(sub.groupby("subclass").size().rename("images").reset_index(), hide_index=True)
with duplicates:
    duplicates_ui(root)
with augment:
    augmentation_ui(root, shown["path"].tolist() or table["path"].tolist())
