"""BraTum Scans: the script every browser session runs (page config, navigation and the shared
sidebar). `streamlit run app.py` serves it."""

import streamlit as st

from app_pages.ui import keep_keras_session, load_model_in_background, model_status
from brat import DISCLAIMER, __version__
from brat.inference.serving import limit_blas_threads

keep_keras_session()
limit_blas_threads()
st.set_page_config(page_title="BraTum Scans", page_icon=":material/neurology:", layout="wide")
loading = load_model_in_background()
pages = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/diagnose.py", title="Diagnose", icon=":material/stethoscope:"),
    st.Page("app_pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("app_pages/model_card.py", title="Model card", icon=":material/description:"),
]
page = st.navigation(pages)
with st.sidebar:
    model_status(loading)
    st.caption(f"BraTum Scans {__version__}. {DISCLAIMER}")
page.run()
