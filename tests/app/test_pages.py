"""Every page of the Streamlit app through AppTest: no exception, the key widgets, real results."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import brat
from brat import CLASSES, DISCLAIMER
from tests.synthetic import make_dicom, make_slice

APP = str(Path(__file__).resolve().parents[2] / "app_main.py")
VERDICTS = {*CLASSES, "uncertain", "not a brain MRI"}
PAGES = ("home", "diagnose", "dataset", "train", "evaluate", "model_card")


def open_page(page: str, timeout: float = 300) -> AppTest:
    """The app (app_main.py: navigation, sidebar) showing `page`."""
    app = AppTest.from_file(APP, default_timeout=timeout).run()
    if page != "home":
        app.switch_page(f"app_pages/{page}.py").run()
    return app


def texts(app: AppTest) -> str:
    parts = [
        e.value
        for kind in ("caption", "markdown", "error", "warning", "info", "success")
        for e in getattr(app, kind)
    ]
    return "\n".join(str(p) for p in parts)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_paints_with_the_disclaimer_and_no_exception(page, toy_dataset, monkeypatch):
    monkeypatch.setenv("BRAT_DATA", str(toy_dataset))
    app = open_page(page)
    assert not app.exception, app.exception
    assert DISCLAIMER in texts(app)


def test_the_app_keeps_the_keras_session_between_runs() -> None:
    """Streamlit clears the Keras session after every run (and with it TensorFlow's kernel cache,
    which made each rerun's first model call ~15x slower); the app switches that off."""
    import keras
    from keras.src.backend.common import global_state

    keras.backend.clear_session()  # A fresh tracker, then two script runs.
    tracker = global_state.GLOBAL_STATE_TRACKER
    app = open_page("home")
    app.run()
    assert global_state.GLOBAL_STATE_TRACKER is tracker


def test_diagnose_classifies_uploads_and_reports_bad_files(slice_image) -> None:
    app = open_page("diagnose")
    assert app.info, "the page invites an upload"
    scan = png(slice_image(3, size=256))
    app.file_uploader(key="uploads").set_value(
        [("scan.png", scan, "image/png"), ("broken.jpg", b"\xff\xd8\xff not a jpeg", "image/jpeg")]
    )
    app.run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert list(table["file"]) == ["scan.png", "broken.jpg"]
    assert table.loc[0, "result"] in VERDICTS
    # An unreadable file says so in the result column, its reason beside its name.
    assert table.loc[1, "result"] == "unreadable: not an image" and list(table.columns[:3]) == [
        "file",
        "result",
        "reason",
    ]
    assert "cannot" in table.loc[1, "reason"] or "not an image" in table.loc[1, "reason"]
    assert app.metric[0].value == table.loc[0, "result"]
    # CSV and PDF report of the batch; PDF report and PNG of the chosen scan.
    assert len(app.get("download_button")) == 4
    assert app.text_input(key="case-id").label == "Case identifier"

    app.selectbox(key="chosen").select_index(1)
    app.run()
    assert any("broken.jpg" in e.value for e in app.error)

    app.selectbox(key="chosen").select_index(0)
    app.selectbox(key="method").set_value("gradcam++")
    app.run()
    app.selectbox(key="target").set_value("no_tumor")
    app.run()
    assert not app.exception, app.exception
    assert "Grad-CAM++ for no_tumor" in texts(app)
    assert app.metric[3].value == "Grad-CAM++"
    assert app.metric[1].label == "Calibrated probability"
    top = app.metric[0].delta.removeprefix("top class ")
    assert app.metric[2].label == "Prediction set" and top in app.metric[2].value.split(" or ")
    assert "the true class lies in the set at least 95%" in texts(app)
    app.select_slider(key="error-rate").set_value(0.01)
    app.run()
    assert not app.exception, app.exception
    assert "at least 99%" in texts(app)
    assert "found no evidence" not in texts(app)
    # A class the model finds no positive evidence for anywhere in this slice (which one depends
    # on the model): the page says why its map is empty.
    empty = [
        label
        for label in CLASSES
        if brat.analyze(scan, method="gated-layercam", target_class=label).heatmap.max() == 0
    ]
    assert empty, "the model finds evidence for every class in this slice: take another slice"
    app.selectbox(key="method").set_value("gated-layercam")
    app.selectbox(key="target").set_value(empty[0])
    app.run()
    assert f"no evidence for {empty[0]} anywhere in this scan" in texts(app)


def test_diagnose_analyses_a_sample_scan_and_logs_it_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    app = open_page("diagnose")
    assert "try a bundled sample scan" in texts(app)
    app.selectbox(key="sample").set_value("pituitary_tumor/fs1361.jpg")
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert app.metric[0].value == "pituitary_tumor"  # a held-out figshare slice
    assert app.subheader[0].value == "sample fs1361.jpg"
    app.run()  # a rerun is not a new analysis
    lines = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").open()]
    assert [line["method"] for line in lines] == ["gradcam", "gated-layercam"]
    assert {line["origin"] for line in lines} == {"app"}
    assert all("file_name" not in line and line["verdict"] == "pituitary_tumor" for line in lines)


@pytest.mark.parametrize("page", ["dataset", "evaluate"])
def test_with_no_dataset_configured_the_pages_open_on_the_bundled_samples(page, monkeypatch):
    monkeypatch.delenv("BRAT_DATA", raising=False)
    app = open_page(page)
    assert not app.exception, app.exception
    assert "Showing the bundled demo: 16 slices" in texts(app)
    if page == "dataset":  # every image's plane, on the first view
        counts = app.dataframe[0].value
        assert counts.loc["all", "all"] == 16 and "unknown" not in counts.columns
    else:  # the samples are not the model's folder: all of them are measured
        assert app.metric[0].value == "16"


def test_diagnose_reads_a_volume_as_one_study_with_a_slice_viewer() -> None:
    import nibabel

    volume = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
    app = open_page("diagnose")
    app.file_uploader(key="uploads").set_value(
        [("anatomical.nii", volume.read_bytes(), "application/octet-stream")]
    )
    app.run()
    assert not app.exception, app.exception
    assert app.metric[0].label == "Study result" and app.metric[0].value in VERDICTS
    slider = next(s for s in app.select_slider if s.label == "Slice")
    assert len(slider.options) == int(app.metric[3].value)  # one stop per slice analysed
    strongest, first = slider.value, slider.options[0]
    # The strongest slices come first, the strongest leading, each with a button to view it.
    shown = [b.label for b in app.button if b.label.startswith("View slice")]
    assert len(shown) == 3 and shown[0] == f"View slice {strongest}"
    slider.set_value(int(first)).run()
    slider = next(s for s in app.select_slider if s.label == "Slice")
    assert slider.value == int(first) and len(app.image) == 3 + 2
    next(b for b in app.button if b.label.startswith("Jump")).click().run()
    assert next(s for s in app.select_slider if s.label == "Slice").value == strongest
    next(b for b in app.button if b.label == shown[2]).click().run()
    assert (
        f"View slice {next(s for s in app.select_slider if s.label == 'Slice').value}" == (shown[2])
    )
    assert any(b.label == "PDF report of the study" for b in app.get("download_button"))
    app.segmented_control(key="study-plane").set_value("sagittal").run()
    assert not app.exception, app.exception


def test_a_volume_among_several_uploads_is_one_row_of_the_batch_table(slice_image) -> None:
    import nibabel

    volume = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
    app = open_page("diagnose")
    app.file_uploader(key="uploads").set_value(
        [
            ("anatomical.nii", volume.read_bytes(), "application/octet-stream"),
            ("scan.png", png(slice_image(3, size=256)), "image/png"),
        ]
    )
    app.run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert table.loc[0, "file"].startswith("anatomical.nii (study of ")
    assert table.loc[0, "result"] in VERDICTS and table.loc[1, "result"] in VERDICTS
    app.selectbox(key="chosen").select_index(0)
    app.run()
    assert not app.exception, app.exception
    assert any(m.label == "Study result" for m in app.metric)


def test_diagnose_reads_dicom_with_window_and_level() -> None:

    pixels = make_slice(11, size=128).astype(np.uint16) * 8
    app = open_page("diagnose")
    app.file_uploader(key="uploads").set_value(
        ("slice.dcm", make_dicom(pixels, WindowCenter=1000, WindowWidth=2000), "application/dicom")
    )
    app.run()
    assert not app.exception, app.exception
    centre, width = app.slider(key="window-centre"), app.slider(key="window-width")
    assert (centre.value, width.value) == (1000.0, 2000.0)
    width.set_value(400.0)
    app.run()
    assert not app.exception, app.exception
    assert app.metric[0].value in VERDICTS
    # The patient's fields are behind a closed expander, and nowhere else on the page.
    (patient,) = [e for e in app.expander if "patient" in e.label]
    assert not patient.proto.expanded
    assert "Test^Patient" in str(patient.table[0].value.values)
    assert len([t for t in app.table if "Test^Patient" in str(t.value.values)]) == 1
    assert "Test^Patient" not in texts(app) + str([m.value for m in app.metric])


@pytest.mark.heavy
def test_diagnose_gives_the_real_label_of_a_held_out_scan(brain_mri) -> None:
    app = open_page("diagnose")
    scan = (brain_mri / "pituitary_tumor" / "fs0931.jpg").read_bytes()
    app.file_uploader(key="uploads").set_value(("fs0931.jpg", scan, "image/jpeg"))
    app.run()
    assert not app.exception, app.exception
    assert app.metric[0].value == "pituitary_tumor"


def test_diagnose_refuses_to_diagnose_a_photo() -> None:
    from benchmarks.ood_samples import package_pictures

    pictures = package_pictures()
    if "skimage/chelsea.png" not in pictures:
        pytest.skip("scikit-image's sample pictures are not installed")
    buffer = io.BytesIO()
    pictures["skimage/chelsea.png"].save(buffer, format="PNG")  # a cat
    app = open_page("diagnose")
    app.file_uploader(key="uploads").set_value(("cat.png", buffer.getvalue(), "image/png"))
    app.run()
    assert not app.exception, app.exception
    assert app.metric[0].value == "not a brain MRI"
    assert any("does not look like a brain MRI" in e.value for e in app.error)


def test_dataset_page_browses_filters_scans_and_previews(toy_dataset, monkeypatch) -> None:
    monkeypatch.setenv("BRAT_DATA", str(toy_dataset))
    app = open_page("dataset")
    assert "48 of 48 images" in texts(app)
    app.multiselect(key="filter-label").set_value(["no_tumor"])
    app.run()
    assert "12 of 48 images" in texts(app)
    planes = app.multiselect(key="filter-plane").options  # predicted without a click
    assert planes and set(planes) <= {"axial", "coronal", "sagittal"}
    app.button(key="scan").click()
    app.run()
    assert not app.exception, app.exception
    assert app.metric[0].value == "48"
    app.slider(key="aug-clip").set_value(6.0)
    app.slider(key="aug-contrast").set_value(0.4)
    app.run()
    assert not app.exception, app.exception


def test_dataset_page_says_when_the_folder_is_missing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRAT_DATA", str(tmp_path / "nowhere"))
    app = open_page("dataset")
    assert not app.exception
    assert "There is no folder" in app.error[0].value


def test_train_page_trains_lists_and_promotes(toy_dataset, tmp_path, monkeypatch) -> None:
    from brat.settings import active_model_path
    from brat.training.runs import current_run

    monkeypatch.setenv("BRAT_DATA", str(toy_dataset))
    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    app = open_page("train")
    app.selectbox(key="size").set_value(96)
    app.selectbox(key="alpha").set_value(0.35)
    app.number_input(key="epochs").set_value(2)
    app.text_input(key="weights").set_value("none")
    app.text_input(key="run_name").set_value("toy-run")
    assert app.selectbox(key="augmentation").value == "standard"  # the shipped recipe's
    app.selectbox(key="augmentation").set_value("strong")
    app.button[0].click()  # the form's submit button
    app.run()
    assert not app.exception, app.exception
    run = current_run()
    assert run.name == "toy-run"
    run.join(timeout=600)
    app.run()
    assert not app.exception, app.exception
    assert run.snapshot().state == "completed", run.snapshot()  # cosine: every epoch
    config = json.loads((run.out / "brat.json").read_text())["config"]
    # the page's defaults are the shipped recipe: cosine schedule, evidence loss 0.5
    assert config["schedule"] == "cosine" and config["model"]["mask_target"] == "evidence"
    assert config["model"]["mask_weight"] == 0.5 and config["augmentation"] == "strong"
    assert run.snapshot().epoch_log and run.snapshot().batch_log
    assert "toy-run" in list(app.dataframe[-1].value["name"])

    app.selectbox(key="promote-choice").set_value("toy-run")
    app.button(key="promote").click()
    app.run()
    assert active_model_path() == run.out.resolve()
    assert any("now the app's model" in s.value for s in app.success)


def test_an_admin_password_locks_training_and_promotion(tmp_path, monkeypatch) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[brat]\nadmin_password = "s3cret"\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BRAT_HOME", str(tmp_path / "brat"))
    app = open_page("train")
    assert not app.exception, app.exception

    def button(label: str):
        return next((b for b in app.button if b.label == label), None)

    assert button("Start training") is None  # reading datasets needs the password too
    app.text_input(key="admin-password").set_value("wrong")
    button("Unlock").click()
    app.run()
    assert any("Wrong password" in e.value for e in app.error)
    assert button("Start training") is None
    app.text_input(key="admin-password").set_value("s3cret")
    button("Unlock").click()
    app.run()
    assert not app.exception, app.exception
    assert not button("Start training").disabled
    assert button("Unlock") is None


@pytest.mark.parametrize("page", ["dataset", "evaluate"])
def test_the_admin_password_guards_reading_datasets(page, tmp_path, monkeypatch) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[brat]\nadmin_password = "s3cret"\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    app = open_page(page)
    assert not app.exception, app.exception
    assert "Showing the bundled demo" not in texts(app) and not app.dataframe
    app.text_input(key="admin-password").set_value("s3cret")
    next(b for b in app.button if b.label == "Unlock").click()
    app.run()
    assert "Showing the bundled demo" in texts(app)


@pytest.mark.parametrize("logged_in", [False, True])
def test_with_a_login_configured_only_a_logged_in_user_reads_datasets(
    logged_in, tmp_path, monkeypatch
):
    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    app = AppTest.from_file(APP, default_timeout=300)
    app.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback"}
    app.user = {"is_logged_in": logged_in, "email": "reader@example.org"}
    app.run()
    app.switch_page("app_pages/dataset.py").run()
    assert not app.exception, app.exception
    assert ("Showing the bundled demo" in texts(app)) == logged_in
    assert any(b.label == "Log in" for b in app.button) != logged_in
    if logged_in:  # the audit trail names who analysed a scan
        app.switch_page("app_pages/diagnose.py").run()
        app.button[0].click().run()
        lines = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").open()]
        assert {line["user"] for line in lines} == {"reader@example.org"}


def test_two_allowed_folders_are_read_as_one_dataset(toy_dataset, monkeypatch) -> None:
    from brat.settings import SAMPLES

    monkeypatch.setenv("BRAT_DATA", str(toy_dataset))
    app = open_page("dataset")
    app.multiselect(key="data_folder").set_value([str(toy_dataset), str(SAMPLES)])
    app.run()
    assert not app.exception, app.exception
    assert "64 of 64 images" in texts(app)


def test_a_folder_outside_the_data_roots_is_refused_and_not_read(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BRAT_DATA", raising=False)
    app = open_page("dataset")
    app.multiselect(key="data_folder").set_value(["/usr/share"])
    app.run()
    assert not app.exception, app.exception
    assert any("outside the folders this app may read" in e.value for e in app.error)
    assert any("data_roots" in e.value for e in app.error)
    assert not app.dataframe and "images" not in texts(app)


def test_a_second_run_is_refused_while_one_trains(toy_dataset, tmp_path, monkeypatch) -> None:
    from brat.errors import BratError
    from brat.training.config import TrainConfig
    from brat.training.model import ModelConfig
    from brat.training.runs import start_run, training_rows

    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    rows, _ = training_rows(toy_dataset, reference=toy_dataset)
    model = ModelConfig(image_size=96, alpha=0.35, weights="none", mask_weight=0.0)
    config = TrainConfig(model=model, epochs=50, batch_size=8)
    run = start_run(toy_dataset, rows, config, name="long")
    try:
        with pytest.raises(BratError, match="still training"):
            start_run(toy_dataset, rows, config, name="second")
    finally:
        run.stop()
        run.join(timeout=600)
    assert not run.snapshot().running


def test_a_killed_training_process_shows_as_failed_and_resumes(
    toy_dataset, tmp_path, monkeypatch
) -> None:
    """The run trains in a process of its own: killing it leaves the page serving, showing the
    failure and a Resume button that starts it again from its checkpoint."""
    import os
    import signal
    import time

    from brat.training import runs
    from brat.training.config import TrainConfig
    from brat.training.model import ModelConfig

    monkeypatch.setenv("BRAT_DATA", str(toy_dataset))
    monkeypatch.setenv("BRAT_HOME", str(tmp_path))
    rows, _ = runs.training_rows(toy_dataset, reference=toy_dataset)
    model = ModelConfig(image_size=32, alpha=0.35, weights="none", mask_weight=0.0)
    run = runs.start_run(toy_dataset, rows, TrainConfig(model=model, epochs=500), name="killed")
    try:
        deadline = time.monotonic() + 300
        while not run.snapshot().epoch_log:
            assert time.monotonic() < deadline and run.running, run.snapshot()
            time.sleep(0.2)
        os.kill(run.pid, signal.SIGKILL)
        run.join(timeout=30)
        app = open_page("train")
        assert not app.exception, app.exception
        assert any("killed by signal 9" in e.value for e in app.error), [e.value for e in app.error]
        app.button(key="resume").click()
        app.run()
        assert not app.exception, app.exception
        assert runs.current_run().running
    finally:
        runs.current_run().stop()
        runs.current_run().join(timeout=300)


@pytest.mark.heavy
def test_evaluate_page_shows_the_confusion_matrix_and_its_scans(brain_mri, monkeypatch) -> None:
    monkeypatch.setenv("BRAT_DATA", str(brain_mri))
    app = open_page("evaluate")
    assert not app.exception, app.exception
    assert app.metric[0].value == "457"
    assert "errors in" in texts(app) and "groups (patients, or copies of one slice)" in texts(app)
    # The shipped model trained on two folders has no per-plane models on its split yet.
    assert any("Train one per plane" in info.value for info in app.info)
    app.selectbox(key="cell-true").set_value("meningioma_tumor")
    app.selectbox(key="cell-predicted").set_value("meningioma_tumor")
    app.run()
    assert not app.exception, app.exception
    assert len(app.get("imgs")) > 0 or "scans" in texts(app)


def test_diagnose_says_which_dicom_series_it_left_out_of_a_study() -> None:
    def dicom(k: int, series: str) -> bytes:
        return make_dicom(make_slice(k, size=128).astype("uint16") * 16, SeriesInstanceUID=series)

    uploads = [(f"{k}.dcm", dicom(k, uid)) for k, uid in enumerate(["1.2", "1.2", "1.2", "7.7"])]
    app = open_page("diagnose")
    app.file_uploader(key="uploads").set_value(
        [(name, data, "application/dicom") for name, data in uploads]
    )
    app.run()
    assert not app.exception, app.exception
    assert app.metric[0].label == "Study result" and app.metric[3].value == "3"
    assert any(i.value.startswith("Left out: 1 other DICOM series (1 slice;") for i in app.info)
