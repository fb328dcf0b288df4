"""BraTum Scans: the Streamlit entry point (page config and navigation only)."""

import streamlit as st

st.set_page_config(page_title="BraTum Scans", page_icon=":material/neurology:", layout="wide")
st.navigation([st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)]).run()
