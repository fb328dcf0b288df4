"""A site's own scans in the app: validated on the Evaluate page and saved as a site profile,
chosen in the Diagnose sidebar, and the Train page's adapt mode."""

from __future__ import annotations

import json
import shutil

import pytest

from brat.settings import SAMPLES, SHIPPED_MODEL
from tests.app.test_pages import VERDICTS, open_page, texts


@pytest.fixture
def model_copy(tmp_path, monkeypatch):
    """The shipped model copied to a folder the app may write site profiles into, active."""
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    monkeypatch.setenv("BRAT_MODEL", str(model))
    return model


def test_evaluate_validates_a_site_and_diagnose_answers_with_its_profile(
    toy_dataset, model_copy, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("BRAT_DATA", str(toy_dataset))
    monkeypatch.setenv("BRAT_HOME", str(tmp_path / "home"))
    app = open_page("evaluate")
    app.toggle(key="eval-site").set_value(True).run()
    app.text_input(key="site-name").set_value("toy-clinic").run()
    assert not app.exception, app.exception
    # 48 generated slices, most of them not a brain MRI to the model: not fit, and why.
    verdicts = [e.value for kind in ("error", "info", "success") for e in getattr(app, kind)]
    assert any(v.startswith("**Not fit.**") for v in verdicts), verdicts
    assert "called not a brain MRI" in " ".join(verdicts)
    app.button(key="site-save").click().run()
    assert not app.exception, app.exception
    assert (model_copy / "sites" / "toy-clinic" / "profile.json").is_file()
    assert any("Saved site toy-clinic" in s.value for s in app.success)

    app = open_page("diagnose")
    app.selectbox(key="sample").set_value("pituitary_tumor/fs1361.jpg")
    app.button[0].click().run()
    assert app.selectbox(key="site").value is None  # the model's own calibration first
    app.selectbox(key="site").set_value("toy-clinic").run()
    assert not app.exception, app.exception
    assert app.metric[0].value in VERDICTS
    assert "Calibrated on site toy-clinic's 48 labelled scans" in texts(app)
    lines = [json.loads(line) for line in (tmp_path / "home" / "audit" / "audit.jsonl").open()]
    assert [line.get("site") for line in lines][-2:] == ["toy-clinic", "toy-clinic"]


def test_the_train_page_adapts_in_its_own_mode_and_says_what_is_wrong(
    toy_dataset, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("BRAT_DATA", str(toy_dataset))
    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    app = open_page("train")
    app.segmented_control(key="train-mode").set_value("Adapt a model to a site").run()
    assert not app.exception, app.exception
    assert app.selectbox(key="adapt-model").value.endswith("(active)")
    app.text_input(key="adapt-site").set_value("toy-site").run()
    app.button[0].click().run()  # the site folder is still the dataset folder
    assert any("given as the site and as the model's own data" in e.value for e in app.error)
    app.multiselect(key="site_folders").set_value([str(SAMPLES)]).run()
    app.button[0].click().run()  # Start adapting: the shipped model never trained on toy data
    assert not app.exception, app.exception
    assert any("training images are not in the replay folders" in e.value for e in app.error)
