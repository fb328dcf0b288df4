"""Dataset: browse by class, plane and split; duplicates and leaks; live augmentation preview."""

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from brat.augment import preview_augmentation
from brat.dataset import load_dataset
from brat.decode import read_image
from brat.errors import BratError
from brat.preprocess import prepare_slice
from brat.render import thumbnail, to_uint8
from brat.ui import data_folder, header, show_error

PAGE_SIZE = 24
COLUMNS = 6

header(
    "Dataset", "Browse a dataset folder, check it for duplicates and leaks, preview augmentations."
)
root = data_folder()
if root is None:
    st.stop()


@st.cache_data(show_spinner="Reading the folder…", max_entries=4)
def records_table(folder: str) -> pd.DataFrame:
    """One row per image: path, class, plane, split (the folder's own, or the active model's)."""
    from brat.classifier import MANIFEST_FILE
    from brat.settings import active_model_path
    from brat.split import read_manifest

    dataset = load_dataset(folder)
    table = pd.DataFrame(
        {
            "path": [r.path for r in dataset.records],
            "label": [r.label or "unlabelled" for r in dataset.records],
            "plane": [r.plane or "unknown" for r in dataset.records],
            "split": [r.original_split or "unsplit" for r in dataset.records],
        }
    )
    try:  # The active model's split of this folder, when it was trained on it.
        manifest = {
            row.path: row.split for row in read_manifest(active_model_path() / MANIFEST_FILE)
        }
    except (OSError, BratError):
        manifest = {}
    if manifest and table["path"].isin(manifest).mean() > 0.5:
        table["split"] = table["path"].map(manifest).fillna("excluded")
    return table


@st.cache_data(show_spinner="Finding the view plane of every unlabelled image…", max_entries=4)
def predicted_planes(folder: str, model_path: str) -> pd.DataFrame:
    """path, plane, confidence, source of every image: hand labels first, else the model's."""
    from brat.classifier import load_classifier
    from brat.planes import predict_planes

    predictions = predict_planes(Path(folder), load_classifier(model_path), progress=False)
    return pd.DataFrame([vars(p) for p in predictions])


@st.cache_data(max_entries=512, show_spinner=False)
def load_thumbnail(path: str, size: int = 160) -> np.ndarray | None:
    try:
        return thumbnail(read_image(path), size)
    except BratError:
        return None


try:
    table = records_table(str(root))
except BratError as error:
    show_error(error)
    st.stop()
table["plane_source"] = np.where(table["plane"] == "unknown", "", "label")
if st.toggle(
    "Predict the view plane of unlabelled images",
    key="predict-planes",
    help="With the active model's plane classifier (about a minute for 4,500 images the first "
    "time). Hand labels from metadata.csv are kept.",
):
    from brat.settings import active_model_path

    try:
        planes = predicted_planes(str(root), str(active_model_path())).set_index("path")
    except BratError as error:
        show_error(error)
    else:
        known = planes.loc[table["path"]]
        found = (table["plane"] == "unknown").to_numpy() & (known["plane"] != "").to_numpy()
        table.loc[found, "plane"] = known["plane"].to_numpy()[found]
        table.loc[found, "plane_source"] = [
            f"predicted {c:.0%}" for c in known["confidence"].to_numpy()[found]
        ]

browse, counts, duplicates, augment = st.tabs(
    ["Browse", "Counts", "Duplicates and leaks", "Augmentation preview"]
)

with browse:
    filters = st.columns(3)
    chosen = {
        column: filters[i].multiselect(
            title, sorted(table[column].unique()), key=f"filter-{column}"
        )
        for i, (column, title) in enumerate(
            {"label": "Class", "plane": "Plane", "split": "Split"}.items()
        )
    }
    shown = table
    for column, values in chosen.items():
        if values:
            shown = shown[shown[column].isin(values)]
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="page") if pages > 1 else 1
    st.caption(f"{len(shown)} of {len(table)} images")
    grid = st.columns(COLUMNS)
    for i, row in enumerate(shown.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE].itertuples()):
        image = load_thumbnail(str(root / row.path))
        with grid[i % COLUMNS]:
            source = f" ({row.plane_source})" if row.plane_source.startswith("predicted") else ""
            caption = f"{row.label} · {row.plane}{source} · {row.split}\n{row.path}"
            if image is None:
                st.warning(f"Unreadable: {row.path}")
            else:
                st.image(image, caption=caption, width="stretch")

with counts:
    for column in ("plane", "split"):
        grouped = table.groupby(["label", column]).size().reset_index(name="images")
        chart = px.bar(
            grouped,
            x="label",
            y="images",
            color=column,
            barmode="group",
            text="images",
            title=f"Class x {column}",
            labels={"label": "class"},
        )
        st.plotly_chart(chart, key=f"counts-{column}")
    labelled = table[table["plane"] != "unknown"]
    if len(labelled):
        st.subheader("Sub-classes (class / plane), as in the original project")
        sub = labelled.assign(subclass=labelled["label"] + " / " + labelled["plane"])
        st.dataframe(sub.groupby("subclass").size().rename("images").reset_index(), hide_index=True)

with duplicates:
    st.markdown(
        "Exact copies, near-duplicates (the same slice resized, recompressed or re-windowed) and "
        "leaks (copies on both sides of the folder's Training/Testing split). The first scan of a "
        "folder reads every image (about 15 s for 4,500 images); later ones use a cache."
    )
    if st.button("Find duplicates and leaks", icon=":material/search:", key="scan"):
        from brat.scan import scan_dataset, scan_report

        with st.spinner("Reading and comparing every image…"):
            try:
                st.session_state["scan_report"] = (
                    str(root),
                    scan_report(scan_dataset(root, progress=False)),
                )
            except BratError as error:
                show_error(error)
    folder, report = st.session_state.get("scan_report", (None, None))
    if report and folder == str(root):
        metrics = st.columns(4)
        metrics[0].metric("Images", report["images"])
        metrics[1].metric("Distinct images", report["distinct_images"])
        metrics[2].metric("Near-duplicate clusters", report["near_duplicate_clusters"])
        metrics[3].metric("Leaked files", report["cross_split_leak_files"])
        if report["unreadable"]:
            st.warning(f"{len(report['unreadable'])} unreadable files")
            st.dataframe(pd.DataFrame(report["unreadable"]), hide_index=True)
        kinds = {
            "Leaks across splits": report["clusters"]["cross_split_leaks"],
            "Label conflicts": report["clusters"]["label_conflicts"],
            "Near duplicates": report["clusters"]["near"],
        }
        kind = st.radio("Clusters", list(kinds), horizontal=True, key="cluster-kind")
        clusters = kinds[kind]
        st.caption(f"{len(clusters)} clusters; the largest 20 are shown.")
        for cluster in clusters[:20]:
            row = st.columns(min(len(cluster), COLUMNS))
            for i, path in enumerate(cluster[:COLUMNS]):
                image = load_thumbnail(str(root / path), 128)
                if image is not None:
                    row[i].image(image, caption=path, width="stretch")
            if len(cluster) > COLUMNS:
                st.caption(f"… and {len(cluster) - COLUMNS} more")

with augment:
    path = st.selectbox("Image", shown["path"].tolist() or table["path"].tolist(), key="aug-image")
    settings = st.columns(4)
    clahe = settings[0].toggle("CLAHE", True, key="aug-clahe")
    clip = settings[0].slider("Clip limit", 1.0, 8.0, 2.0, 0.5, key="aug-clip", disabled=not clahe)
    tile = settings[1].slider("Tile grid", 2, 16, 8, key="aug-tile", disabled=not clahe)
    brightness = settings[2].slider("Brightness limit", 0.0, 0.5, 0.2, 0.05, key="aug-brightness")
    contrast = settings[3].slider("Contrast limit", 0.0, 0.5, 0.2, 0.05, key="aug-contrast")
    seed = settings[1].number_input("Seed", 0, 10_000, 0, key="aug-seed")
    try:
        image = to_uint8(prepare_slice(read_image(root / path), 256)[0])
    except BratError as error:
        show_error(error)
        st.stop()
    pipeline = preview_augmentation(clip, tile, brightness, contrast, clahe=clahe, seed=int(seed))
    pair = st.columns(2)
    pair[0].image(image, caption="Original (as the model sees it)", width="stretch")
    pair[1].image(pipeline(image=image)["image"], caption="Augmented", width="stretch")
    st.caption("Random samples with these settings")
    samples = st.columns(COLUMNS)
    for i in range(2 * COLUMNS):
        samples[i % COLUMNS].image(pipeline(image=image)["image"], width="stretch")
