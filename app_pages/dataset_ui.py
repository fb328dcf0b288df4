"""The Dataset page's widgets: the image table (cached), thumbnails, the browse grid, duplicate
clusters and the augmentation preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.ui import show_error
from brat.errors import BratError

COLUMNS = 6


@st.cache_data(show_spinner="Reading the folder…", max_entries=4)
def image_table(folder: str, model_path: str) -> pd.DataFrame:
    """One row per image (`brat.data.browse.image_rows`), the split that of the model at
    `model_path` when it was trained on this folder."""
    from brat.data.browse import image_rows

    return pd.DataFrame([vars(row) for row in image_rows(folder, model_path)])


@st.cache_data(
    show_spinner="Finding the view plane of every unlabelled image (about a minute for 4,500 "
    "images the first time; kept on disk after that)…",
    max_entries=4,
)
def with_predicted_planes(
    table: pd.DataFrame, folder: str, model_path: str, _classifier
) -> pd.DataFrame:
    """The table with the planes the plane classifier of `_classifier` (the model at
    `model_path`, as the app already holds it) predicts for unlabelled images."""
    from brat.data.browse import ImageRow, with_predicted_planes
    from brat.inference.planes import predict_planes_cached

    predictions = predict_planes_cached(Path(folder), _classifier, progress=False)
    rows = [ImageRow(**row) for row in table.to_dict("records")]
    return pd.DataFrame([vars(row) for row in with_predicted_planes(rows, predictions)])


@st.cache_data(max_entries=512, show_spinner=False)
def thumbnail_of(path: str, size: int = 160) -> np.ndarray | None:
    from brat.data.decode import read_image
    from brat.inference.render import thumbnail

    try:
        return thumbnail(read_image(path), size)
    except BratError:
        return None


def browse_ui(root, table: pd.DataFrame, page_size: int = 24) -> pd.DataFrame:
    """Filters by class, plane and split, and a page of thumbnails; returns the filtered rows."""
    filters = st.columns(3)
    shown = table
    for i, (column, title) in enumerate(
        {"label": "Class", "plane": "Plane", "split": "Split"}.items()
    ):
        values = filters[i].multiselect(
            title, sorted(table[column].unique()), key=f"filter-{column}"
        )
        if values:
            shown = shown[shown[column].isin(values)]
    pages = max(1, -(-len(shown) // page_size))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="page") if pages > 1 else 1
    st.caption(f"{len(shown)} of {len(table)} images")
    grid = st.columns(COLUMNS)
    for i, row in enumerate(shown.iloc[(page - 1) * page_size : page * page_size].itertuples()):
        image = thumbnail_of(str(root / row.path))
        with grid[i % COLUMNS]:
            source = f" ({row.plane_source})" if row.plane_source.startswith("predicted") else ""
            caption = f"{row.label} · {row.plane}{source} · {row.split}\n{row.path}"
            if image is None:
                st.warning(f"Unreadable: {row.path}")
            else:
                st.image(image, caption=caption, width="stretch")
    return shown


def duplicates_ui(root) -> None:
    """`brat scan`'s duplicate and leak clusters of the folder, side by side, on request."""
    st.markdown(
        "Exact copies, near-duplicates (the same slice resized, recompressed or re-windowed) and "
        "leaks (copies on both sides of the folder's Training/Testing split). The first scan of a "
        "folder reads every image (about 15 s for 4,500 images); later ones use a cache."
    )
    if st.button("Find duplicates and leaks", icon=":material/search:", key="scan"):
        from brat.data.scan import scan_dataset, scan_summary

        with st.spinner("Reading and comparing every image…"):
            try:
                summary = scan_summary(scan_dataset(root, progress=False))
                st.session_state["scan_summary"] = (str(root), summary)
            except BratError as error:
                show_error(error)
    folder, summary = st.session_state.get("scan_summary", (None, None))
    if not summary or folder != str(root):
        return
    metrics = st.columns(4)
    metrics[0].metric("Images", summary.images)
    metrics[1].metric("Distinct images", summary.distinct_images)
    metrics[2].metric("Near-duplicate clusters", summary.near_duplicate_clusters)
    metrics[3].metric("Leaked files", summary.cross_split_leak_files)
    if summary.unreadable:
        st.warning(f"{len(summary.unreadable)} unreadable files")
        st.dataframe(pd.DataFrame(summary.unreadable), hide_index=True)
    kinds = {
        "Leaks across splits": summary.clusters["cross_split_leaks"],
        "Label conflicts": summary.clusters["label_conflicts"],
        "Near duplicates": summary.clusters["near"],
    }
    kind = st.radio("Clusters", list(kinds), horizontal=True, key="cluster-kind")
    clusters = kinds[kind]
    st.caption(f"{len(clusters)} clusters; the largest 20 are shown.")
    for cluster in clusters[:20]:
        row = st.columns(min(len(cluster), COLUMNS))
        for i, path in enumerate(cluster[:COLUMNS]):
            image = thumbnail_of(str(root / path), 128)
            if image is not None:
                row[i].image(image, caption=path, width="stretch")
        if len(cluster) > COLUMNS:
            st.caption(f"… and {len(cluster) - COLUMNS} more")


def augmentation_ui(root, paths: list[str]) -> None:
    """One image as the model sees it, beside the augmentations with the chosen settings."""
    from brat.data.decode import read_image
    from brat.data.preprocess import prepare_slice
    from brat.inference.render import to_uint8
    from brat.training.augment import preview_augmentation

    path = st.selectbox("Image", paths, key="aug-image")
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
        return
    pipeline = preview_augmentation(clip, tile, brightness, contrast, clahe=clahe, seed=int(seed))
    pair = st.columns(2)
    pair[0].image(image, caption="Original (as the model sees it)", width="stretch")
    pair[1].image(pipeline(image=image)["image"], caption="Augmented", width="stretch")
    st.caption("Random samples with these settings")
    samples = st.columns(COLUMNS)
    for i in range(2 * COLUMNS):
        samples[i % COLUMNS].image(pipeline(image=image)["image"], width="stretch")
