"""Home: what the product is, what it is not, and where each task lives."""

import streamlit as st

from app_pages.ui import header
from brat.settings import active_model_path

header(
    "BraTum Scans",
    "Classify brain MRI slices into glioma, meningioma, pituitary tumour or no tumour, and see "
    "where the model found its evidence.",
)
st.page_link(
    "app_pages/diagnose.py",
    label="Diagnose: drop scans, get a label and a heatmap",
    icon=":material/stethoscope:",
)
st.page_link(
    "app_pages/dataset.py",
    label="Dataset: browse, find duplicates and leaks, preview augmentations",
    icon=":material/photo_library:",
)
st.page_link(
    "app_pages/train.py",
    label="Train: fine-tune MobileNetV2 in the background and compare runs",
    icon=":material/model_training:",
)
st.page_link(
    "app_pages/evaluate.py",
    label="Evaluate: confusion matrix, per-class metrics, calibration",
    icon=":material/analytics:",
)
st.page_link(
    "app_pages/model_card.py", label="Model card of the active model", icon=":material/description:"
)
st.caption(
    f"Active model: `{active_model_path()}`. Every page is also a command: `python -m brat --help`."
)
