"""Streamlit helpers the pages share: header and disclaimer, the cached model and its loading
in the background, errors, settings.

Importing this module does not load TensorFlow: `load_model_in_background` does, once per server
process, from `app.py`'s start-up hook before any page runs, then loads the model in a thread.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from brat import DISCLAIMER
from brat.errors import BratError


def keep_keras_session() -> None:
    """Stop Streamlit from clearing the Keras session after every script and fragment run.

    Streamlit calls `keras.backend.clear_session()` after each run; in TensorFlow that also empties
    the eager kernel cache, so the next model call rebuilds its kernels (~210 ms instead of
    ~15 ms). The app keeps one model for its lifetime, so it has no stale Keras state to clear;
    Streamlit's other clean-up (matplotlib figures) is kept.
    """
    from streamlit.runtime.scriptrunner import script_runner

    original = script_runner._clean_problem_modules
    if getattr(original, "keeps_keras_session", False):
        return

    def clean_problem_modules_except_keras() -> None:
        import sys

        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")

    clean_problem_modules_except_keras.keeps_keras_session = True
    script_runner._clean_problem_modules = clean_problem_modules_except_keras


def header(title: str, intro: str | None = None) -> None:
    st.title(title)
    st.caption(f":material/warning: {DISCLAIMER}")
    if intro:
        st.markdown(intro)


def admin_unlocked(action: str) -> bool:
    """True when `action` (e.g. "train and promote models") is open to this session: no admin
    password is set in .streamlit/secrets.toml, or this session typed it."""
    import hmac

    from brat.settings import admin_password

    password = admin_password()
    if password is None or st.session_state.get("admin_unlocked"):
        return True
    with st.form("admin-login", border=True):
        typed = st.text_input(
            f"Admin password (needed to {action})", type="password", key="admin-password"
        )
        if st.form_submit_button("Unlock", icon=":material/lock_open:"):
            if hmac.compare_digest(typed.encode(), password.encode()):
                st.session_state["admin_unlocked"] = True
                st.rerun()
            st.error("Wrong password.", icon=":material/lock:")
    return False


@st.cache_resource(show_spinner=False, max_entries=3)
def _explainer(path: str):
    import numpy as np

    import brat
    from brat.inference.classifier import load_classifier
    from brat.inference.explain import Explainer
    from brat.labels import SHOWN_METHOD

    # The app's only model cache: clearing it (promotion) really loads the model again.
    # A first start converts the model for ONNX Runtime after the warm-up, not before it.
    explainer = Explainer(load_classifier(path), defer_conversion=True)
    # Trace both heatmap paths the Diagnose page uses now, not on the user's first scan.
    blank = np.full((explainer.classifier.image_size,) * 2, 0.5, np.float32)
    for method in {"gradcam", SHOWN_METHOD}:
        brat.analyze(blank, method, model=explainer)
    explainer.convert_in_background()
    return explainer


def explainer(model_path: Path | str | None = None):
    """The cached explainer of a model folder (default: the active model), or None after showing
    why it cannot be loaded. The app starts loading the active model when it starts
    (`load_model_in_background`), so this rarely waits."""
    from brat.settings import active_model_path

    path = Path(model_path or active_model_path()).resolve()
    try:
        with st.spinner("Loading the model (the first time after installing, its conversion too)…"):
            return _explainer(str(path))
    except BratError as error:
        st.error(str(error), icon=":material/error:")
        return None


@st.cache_resource(show_spinner=False)
def load_model_in_background() -> ModelLoading:
    """Start loading the active model in a thread, once per server process, so the model is
    ready (loaded, converted for ONNX Runtime on a first start, traced) when a user needs it;
    the libraries it needs are imported first, in the caller (`app.py`'s start-up hook)."""
    import threading

    # TensorFlow, Keras and scikit-learn are imported here, before any page can import them:
    # two threads importing TensorFlow at once can see it half initialised.
    import brat.inference.conformal
    import brat.inference.explain  # noqa: F401
    from brat.settings import active_model_path

    loading = ModelLoading(str(active_model_path().resolve()))
    threading.Thread(target=loading.run, name="brat-model-loading", daemon=True).start()
    return loading


class ModelLoading:
    """The background loading of one model folder: when it started, and how it ended."""

    def __init__(self, path: str) -> None:
        import time

        self.path = path
        self.started = time.monotonic()
        self.seconds: float | None = None  # set when loaded
        self.error: str | None = None

    def run(self) -> None:
        import time

        try:
            _explainer(self.path)
        except Exception as error:  # shown in the sidebar; the pages show it again on use
            self.error = str(error) or type(error).__name__
        self.seconds = time.monotonic() - self.started

    @property
    def done(self) -> bool:
        return self.seconds is not None


def wait_for_model_threads(timeout: float = 300) -> None:
    """Wait for the model's loading and its ONNX conversion to end: TensorFlow aborts a process
    that exits while one of them still runs (tests and benchmarks call this before exiting)."""
    import threading

    names = {"brat-model-loading", "onnx-conversion"}
    while running := [t for t in threading.enumerate() if t.name in names]:
        running[0].join(timeout)  # loading starts the conversion when it ends


def model_status(loading: ModelLoading) -> None:
    """The sidebar's model line: loading (refreshed every second until done), ready or failed."""

    ticking = not loading.done

    @st.fragment(run_every=1 if ticking else None)
    def status() -> None:
        import time

        if ticking and loading.done:
            st.rerun()  # once, the whole page: this line stops refreshing
        if loading.error:
            st.caption(f":material/error: The model could not be loaded: {loading.error}")
        elif loading.done:
            st.caption(f":material/check_circle: Model ready (loaded in {loading.seconds:.1f} s)")
        else:  # one element in each state, so no line is left over from the previous one
            elapsed = time.monotonic() - loading.started
            st.progress(min(elapsed / 10, 0.95), f"Loading the model… {elapsed:.0f} s")

    status()


def model_choices() -> dict[str, Path]:
    """Label -> model folder: the active model first, then the shipped one and finished runs."""
    from brat.model_folder import list_models
    from brat.settings import SHIPPED_MODEL, active_model_path

    active = active_model_path().resolve()
    choices = {f"{active.name} (active)": active}
    if SHIPPED_MODEL.resolve() != active:
        choices[f"{SHIPPED_MODEL.name} (shipped)"] = SHIPPED_MODEL.resolve()
    for run in list_models():
        if Path(run.path).resolve() != active:
            choices[run.name] = Path(run.path).resolve()
    return choices


def first_time(key: tuple) -> bool:
    """True the first time this session meets `key` (a rerun of a page is not a new event)."""
    seen = st.session_state.setdefault("seen-keys", set())
    if key in seen:
        return False
    seen.add(key)
    return True


def show_error(error: Exception) -> None:
    """A clear message, never a traceback."""
    st.error(str(error) or type(error).__name__, icon=":material/error:")


def error_rate_slider(key: str, *, disabled: bool = False) -> float:
    """The prediction sets' error rate, picked from `brat.inference.conformal.ERROR_RATES`."""
    from brat.inference.conformal import ERROR_RATE, ERROR_RATES

    return st.select_slider(
        "Prediction set error rate",
        ERROR_RATES,
        ERROR_RATE,
        format_func=lambda rate: f"{rate:.0%}",
        key=key,
        help="The share of scans whose true class may fall outside their prediction set. "
        "Lower: larger sets, fewer definite answers.",
        disabled=disabled,
    )


MODEL_CALIBRATION = "the model's own calibration"


def site_ui(model):
    """The sidebar's site choice: the model's own calibration, or one of its site profiles
    (`brat calibrate-site`, `brat adapt`, the Evaluate page's site section); the explainer
    answering with it, or None after showing why the profile cannot be used (or for None)."""
    from brat.inference.site import site_names

    if model is None:
        return None
    sites = site_names(model.classifier.path)
    if not sites:
        return model
    with st.sidebar:
        site = st.selectbox(
            "Calibration",
            [None, *sites],
            format_func=lambda s: MODEL_CALIBRATION if s is None else f"site {s}",
            key="site",
            help="A site profile re-fits the model's probabilities and prediction sets on one "
            "site's own labelled scans, so that they hold for that site's scans.",
        )
    try:
        return model.for_site(site)
    except BratError as error:
        show_error(error)
        return None


def site_note_ui(classifier, error_rate: float) -> None:
    """Under a result: which site's calibration answered, and whether its sets promise the
    error rate (nothing with the model's own calibration)."""
    if site := classifier.site:
        st.caption(
            f":material/location_on: Calibrated on site {site.name}'s {site.n} labelled scans. "
            + site.guarantee_note(error_rate)
        )


def model_key(model) -> str:
    """What the page caches key a model's answers on: its folder, and its site profile."""
    site = model.classifier.site
    path = str(model.classifier.path)
    return f"{path}|site:{site.name}:{site.created}" if site else path
