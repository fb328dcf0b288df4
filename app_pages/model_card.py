"""Model card: what the active model is, how it was trained and measured, and its limits."""

import streamlit as st

from app_pages.ui import header, model_choices, show_error
from brat.errors import BratError
from brat.evaluation.model_card import render_card
from brat.model_folder import CARD_FILE

header("Model card")
choices = model_choices()
label = st.selectbox("Model", list(choices), key="card-model")
try:
    card = render_card(choices[label])
except (BratError, OSError, ValueError, KeyError) as error:
    show_error(error)
    st.stop()
st.markdown(card)
st.download_button(f"Download {CARD_FILE}", card, CARD_FILE, "text/markdown")
