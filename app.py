"""BraTum Scans: `streamlit run app.py` serves the app (`app_main.py`, on 127.0.0.1).

The model starts loading (and, on a first start, converting for ONNX Runtime) in the background as
the server starts, not when the first browser connects, so a newcomer's first scan does not wait
for it. Streamlit runs an `st.App` in its ASGI server; the lifespan hook is its start-up hook.
"""

from contextlib import asynccontextmanager

import streamlit as st


@asynccontextmanager
async def lifespan(_app):
    from app_pages.ui import load_model_in_background

    load_model_in_background()
    yield


app = st.App("app_main.py", lifespan=lifespan)
