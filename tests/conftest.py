"""Shared fixtures: a private fingerprint cache, synthetic slices and the shared dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.synthetic import make_slice

# ../shared next to the project checkout holds the development datasets; BRAT_SHARED overrides.
SHARED = Path(os.environ.get("BRAT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BRAIN_MRI = SHARED / "datasets" / "brain-mri"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or write the user's fingerprint cache."""
    previous = os.environ.get("BRAT_CACHE_DIR")
    os.environ["BRAT_CACHE_DIR"] = str(tmp_path_factory.mktemp("brat-cache"))
    yield
    if previous is None:
        os.environ.pop("BRAT_CACHE_DIR", None)
    else:
        os.environ["BRAT_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def brain_mri() -> Path:
    if not (BRAIN_MRI / "metadata.csv").is_file():
        pytest.skip(f"the development dataset is not at {BRAIN_MRI}")
    return BRAIN_MRI


@pytest.fixture
def slice_image():
    return make_slice
