"""Who may read which datasets in the app: the allowed folders to pick from, the bounded first
walk of a folder, and the login or password the dataset pages need (`brat.data.access`)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app_pages.ui import admin_unlocked, show_error
from brat.errors import BratError

SURVEY_SECONDS = 60  # how long a folder's bounded walk is trusted before it is walked again
_surveyed: dict[tuple, float] = {}  # (folder, roots, limit) -> when it passed, for every session


def login_configured() -> bool:
    """True when Streamlit's OpenID Connect login is set up (`[auth]` in secrets.toml)."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, OSError):
        return False


def user_name() -> str | None:
    """The logged-in user's e-mail (or name) for the audit trail, or None without a login."""
    if not login_configured() or not st.user.is_logged_in:
        return None
    return st.user.get("email") or st.user.get("name")


def data_pages_unlocked(action: str) -> bool:
    """Reading datasets is a permission: with the login configured, a logged-in user may; with
    an admin password (`admin_unlocked`), whoever typed it; with neither, everyone."""
    if login_configured():
        if st.user.is_logged_in:
            return True
        st.info(f"Log in to {action}.", icon=":material/lock:")
        st.button("Log in", on_click=st.login, icon=":material/login:")
        return False
    return admin_unlocked(action)


def data_folder(key: str = "data_folder") -> Path | None:
    """The allowed dataset folders to pick from (`brat.settings.data_roots`; a folder inside
    one may be typed), shared by all pages of a session; the folder to read the chosen ones as
    one (`brat.data.folders`), or None after saying why not."""
    from brat.data.access import AccessError, allowed_folder
    from brat.settings import SAMPLES, data_roots, default_data_dir

    roots = data_roots()
    if key not in st.session_state:
        default = default_data_dir() or SAMPLES
        inside = any(Path(default).resolve().is_relative_to(r.resolve()) for r in roots)
        st.session_state[key] = [str(default if inside or not roots else roots[0])]
    chosen = st.multiselect(
        "Dataset folders",
        list(dict.fromkeys([*map(str, roots), *st.session_state[key]])),
        key=key,
        accept_new_options=True,
        help="The folders this app may read (an administrator sets them: data_roots). Several "
        "are read as one dataset, copies across them found and kept together; type the path of a "
        "folder inside one of them to read only that one. Class folders (Kaggle layouts) or a "
        "folder with metadata.csv.",
    )
    if not chosen:
        st.info("Pick a dataset folder above.", icon=":material/folder:")
        return None
    try:
        folders = [allowed_folder(text, roots) for text in chosen]
    except AccessError as error:
        show_error(error)
        return None
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        st.error(f"There is no folder at {', '.join(missing)}.", icon=":material/error:")
        return None
    if folders == [SAMPLES.resolve()]:
        st.info(
            "Showing the bundled demo: 16 slices (4 per class; figshare tumour slices from the "
            "shipped model's test split and MNI152 template slices, see samples/README.md). Pick "
            "or type your own dataset folder above for real numbers.",
            icon=":material/science:",
        )
    try:
        for folder in folders:
            if not survey_ui(folder, roots, key):
                return None
        return combined_folder(tuple(str(folder) for folder in folders))
    except BratError as error:
        show_error(error)
        return None


def chosen_folders(key: str = "data_folder") -> list[Path]:
    """The folders picked under `key` by `data_folder` (which checked them), as paths."""
    from brat.data.access import allowed_folder
    from brat.settings import data_roots

    return [allowed_folder(text, data_roots()) for text in st.session_state.get(key, [])]


def survey_ui(folder: Path, roots: list[Path], key: str) -> bool:
    """Walk `folder` once under the file-count and depth limits before any page reads it
    (`brat.data.access.survey`), showing how far it got, with a button that stops it; the result
    is trusted for a minute by every session. False when stopped."""
    from brat.data.access import survey
    from brat.settings import max_files

    limit = max_files()
    cache_key = (str(folder), tuple(map(str, roots)), limit)
    if time.monotonic() - _surveyed.get(cache_key, -SURVEY_SECONDS) < SURVEY_SECONDS:
        return True
    status = st.empty()
    with status.container():
        line = st.empty()
        stop = st.button(
            f"Stop reading {folder.name}", key=f"{key}-stop-{folder}", icon=":material/stop:"
        )
    if stop:
        status.warning(f"Stopped reading {folder}. Pick another folder.", icon=":material/stop:")
        return False
    line.caption(f"Reading {folder}…")
    try:
        survey(
            folder,
            roots,
            max_files=limit,
            progress=lambda files: line.caption(f"Reading {folder}: {files:,} files so far…"),
        )
    finally:
        status.empty()
    _surveyed[cache_key] = time.monotonic()
    return True


@st.cache_data(ttl=60, show_spinner=False)
def combined_folder(folders: tuple[str, ...]) -> Path:
    """`brat.data.folders.dataset_root` of the chosen folders, cached for a minute: it lists
    every image of every folder, and a page reruns on every click."""
    from brat.data.folders import dataset_root

    return dataset_root(folders)
