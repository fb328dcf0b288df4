"""Fetch the public Kaggle brain-MRI datasets with kagglehub (needs a network)."""

from __future__ import annotations

import shutil
from pathlib import Path

from brat.errors import DownloadError

KAGGLE_DATASETS = {
    # Sartaj Bhuvaji, "Brain Tumor Classification (MRI)": the dataset the product is named after.
    "sartaj": "sartajbhuvaji/brain-tumor-classification-mri",
    # Masoud Nickparvar, "Brain Tumor MRI Dataset": figshare + sartaj + Br35H merged.
    "nickparvar": "masoudnickparvar/brain-tumor-mri-dataset",
}


def download_dataset(name: str, out: str | Path) -> Path:
    """Download dataset `name` (a key of KAGGLE_DATASETS) into the folder `out`."""
    if name not in KAGGLE_DATASETS:
        raise ValueError(
            f"`name` must be one of {sorted(KAGGLE_DATASETS)}. Received: name={name!r}"
        )
    handle = KAGGLE_DATASETS[name]
    out = Path(out)
    manual = (
        f"Download it by hand from https://www.kaggle.com/datasets/{handle}, unzip it, and pass "
        f"the folder that holds Training/ and Testing/ (for example {out}) to brat."
    )
    try:
        import kagglehub

        cached = Path(kagglehub.dataset_download(handle))
    except Exception as error:  # kagglehub raises requests, auth and HTTP errors of many kinds
        reason = "no network connection" if _is_network_error(error) else type(error).__name__
        raise DownloadError(f"Could not download {handle} ({reason}). {manual}") from error
    try:
        shutil.copytree(cached, out, dirs_exist_ok=True)
    except OSError as error:
        raise DownloadError(
            f"The dataset was downloaded but cannot be copied to {out} ({error})."
        ) from error
    return out


def _is_network_error(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return any(
        word in text for word in ("connection", "resolve", "timeout", "network", "unreachable")
    )
