"""Shared fixtures: a private fingerprint cache, synthetic slices, the shared dataset and a toy
training set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.synthetic import make_slice

# ../shared next to the project checkout holds the development datasets; BRAT_SHARED overrides.
SHARED = Path(os.environ.get("BRAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BRAIN_MRI = SHARED / "datasets" / "brain-mri"
SARTAJ = SHARED / "datasets" / "sartaj-training"


@pytest.fixture(autouse=True, scope="session")
def _private_state(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or write the user's caches, runs or active model."""
    names = ("BRAT_CACHE_DIR", "BRAT_HOME", "BRAT_MODEL", "BRAT_DATA")
    previous = {name: os.environ.get(name) for name in names}
    os.environ["BRAT_CACHE_DIR"] = str(tmp_path_factory.mktemp("brat-cache"))
    os.environ["BRAT_HOME"] = str(tmp_path_factory.mktemp("brat-home"))
    os.environ.pop("BRAT_MODEL", None)
    os.environ.pop("BRAT_DATA", None)
    yield
    from app_pages.ui import wait_for_model_threads

    wait_for_model_threads()  # TensorFlow aborts an exit while the app's loading thread runs
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def brain_mri() -> Path:
    if not (BRAIN_MRI / "metadata.csv").is_file():
        pytest.skip(f"the development dataset is not at {BRAIN_MRI}")
    return BRAIN_MRI


@pytest.fixture(scope="session")
def sartaj() -> Path:
    """The Training half of the original project's Kaggle dataset (a second source)."""
    if not (SARTAJ / "Training").is_dir():
        pytest.skip(f"the original project's Kaggle dataset is not at {SARTAJ}")
    return SARTAJ


@pytest.fixture
def slice_image():
    return make_slice


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory) -> Path:
    """A class-folder dataset of 48 generated slices (12 per class), 128 px PNG."""
    import cv2

    from brat.labels import CLASSES

    root = tmp_path_factory.mktemp("toy-dataset")
    for i in range(48):
        label = CLASSES[i % 4]
        (root / label).mkdir(exist_ok=True)
        cv2.imwrite(str(root / label / f"{i:03d}.png"), make_slice(1000 + i))
    return root


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    """Slices whose class is a bright square in one of four places, learnable in a few steps, and
    their manifest rows (64 train, 16 val, 16 test). Per module: tests may add files to it."""
    import cv2

    from brat.data.manifest import ManifestRow
    from brat.labels import CLASSES

    root = tmp_path_factory.mktemp("toy")
    corners = [(20, 20), (20, 80), (80, 20), (80, 80)]
    rows = []
    for i in range(96):
        label = i % 4
        image = make_slice(i, size=128, structures=3)
        x, y = corners[label]
        cv2.rectangle(image, (x, y), (x + 28, y + 28), 255, -1)
        path = f"{CLASSES[label]}/{i}.png"
        (root / CLASSES[label]).mkdir(exist_ok=True)
        cv2.imwrite(str(root / path), image)
        split = "train" if i < 64 else "val" if i < 80 else "test"
        rows.append(ManifestRow(path=path, label=CLASSES[label], split=split, group=str(i)))
    return root, rows
