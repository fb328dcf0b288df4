"""The active model: $BRAT_MODEL, else the promoted one, else the shipped one; atomic promotion."""

from __future__ import annotations

import shutil

import pytest

from brat.errors import BratError
from brat.model_folder import promote
from brat.settings import SHIPPED_MODEL, active_model_path, default_data_dir


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BRAT_MODEL", raising=False)
    return tmp_path / "home"


def test_the_shipped_model_is_active_until_one_is_promoted(home, tmp_path) -> None:
    assert active_model_path() == SHIPPED_MODEL
    copy = tmp_path / "copy"
    shutil.copytree(SHIPPED_MODEL, copy)
    assert promote(copy) == copy.resolve()
    assert active_model_path() == copy.resolve()
    assert [p.name for p in home.iterdir()] == ["active-model"]  # no temporary file left


def test_brat_model_overrides_the_promoted_model(home, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRAT_MODEL", str(tmp_path / "elsewhere"))
    assert active_model_path() == tmp_path / "elsewhere"


def test_a_folder_that_is_not_a_model_is_refused_and_nothing_changes(home, tmp_path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.keras").write_text("not a model")
    (tmp_path / "junk" / "brat.json").write_text('{"config": {"model": {"image_size": 128}}}')
    with pytest.raises(BratError, match="cannot be loaded"):
        promote(tmp_path / "junk")
    assert active_model_path() == SHIPPED_MODEL


def test_a_promoted_model_that_was_deleted_falls_back_to_the_shipped_one(home, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(SHIPPED_MODEL, copy)
    promote(copy)
    shutil.rmtree(copy)
    assert active_model_path() == SHIPPED_MODEL


def test_the_data_folder_comes_from_the_environment_or_secrets(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BRAT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() is None
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[brat]\ndata = "/data/mri"\n')
    assert str(default_data_dir()) == "/data/mri"
    monkeypatch.setenv("BRAT_DATA", "/other")
    assert str(default_data_dir()) == "/other"
