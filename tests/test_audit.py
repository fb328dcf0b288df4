"""The audit trail: one line per analysed scan with exactly the allowed fields, file names only
when allowed, off when switched off, rotated by size, printed as CSV, and never a patient field."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import cv2
import pytest

from brat import audit
from brat.cli import main
from brat.data.dicom import dicom_patient_fields
from brat.inference.analysis import analyze, explainer_for
from brat.settings import SHIPPED_MODEL, audit_enabled, audit_file_names
from tests.synthetic import make_dicom, make_slice

ROOT = Path(__file__).resolve().parents[1]
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "ID-12345", "PatientBirthDate": "19700101"}
PREDICTION = {
    "path": "/archive/Doe_Jane/scan.png",
    "label": "glioma_tumor",
    "verdict": "uncertain",
    "probabilities": {"glioma_tumor": 0.6, "no_tumor": 0.4},
    "prediction_set": ["glioma_tumor", "no_tumor"],
    "ood_score": 3.0,
}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A private BRAT_HOME, and no audit setting from the environment or a secrets file."""
    monkeypatch.setenv("BRAT_HOME", str(tmp_path / "home"))
    for name in ("BRAT_AUDIT", "BRAT_AUDIT_FILE_NAMES", "BRAT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path / "home"


def lines() -> list[dict]:
    if not audit.log_path().is_file():
        return []
    return [json.loads(line) for line in audit.log_path().read_text().splitlines()]


def write(prediction: dict = PREDICTION, **options) -> dict:
    return audit.record(
        prediction,
        input_sha256="ab" * 32,
        model="mobilenetv2-brain-mri",
        model_sha256="cd" * 32,
        method="gradcam",
        origin="app",
        **options,
    )


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), make_slice(3, size=128))
    (folder / "b.jpg").write_bytes(b"\xff\xd8 cut short")
    return folder


def test_a_line_holds_exactly_the_allowed_fields(home) -> None:
    written = write()
    assert lines() == [written]
    # No name, and no site: the model's own calibration answered.
    assert list(written) == [f for f in audit.FIELDS if f not in {"file_name", "user", "site"}]
    assert written["origin"] == "app" and written["verdict"] == "uncertain"
    assert written["probabilities"] == PREDICTION["probabilities"]
    assert written["prediction_set"] == ["glioma_tumor", "no_tumor"]
    assert written["error"] is None
    assert datetime.fromisoformat(written["time"]).utcoffset().total_seconds() == 0
    assert b"Doe_Jane" not in audit.log_path().read_bytes()  # the path is never logged
    assert write(file_name="C:\\scans\\Doe_Jane\\scan.png")["file_name"] == "scan.png"


def test_an_error_is_logged_without_its_detail() -> None:
    error = "The file cannot be opened ([Errno 2] No such file: '/archive/Doe_Jane/x.dcm')."
    written = write({"path": "/archive/Doe_Jane/x.dcm", "error": error})
    assert written["error"] == "The file cannot be opened"
    assert written["label"] is None and written["probabilities"] is None


def test_an_unknown_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="origin='web'"):
        audit.record(
            PREDICTION, input_sha256="", model="m", model_sha256="", method=None, origin="web"
        )


@pytest.mark.parametrize(
    ("environment", "secrets", "enabled", "names"),
    [
        ({}, "", True, False),
        ({"BRAT_AUDIT": "0"}, "", False, False),
        ({"BRAT_AUDIT": "off", "BRAT_AUDIT_FILE_NAMES": "1"}, "", False, True),
        ({}, "audit = false\naudit_file_names = true\n", False, True),
        ({"BRAT_AUDIT": "1"}, "audit = false\n", True, False),
    ],
    ids=["defaults", "env-off", "env-names", "secrets", "env-beats-secrets"],
)
def test_the_settings(tmp_path, monkeypatch, environment, secrets, enabled, names) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(f"[brat]\n{secrets}")
    assert (audit_enabled(), audit_file_names()) == (enabled, names)


def test_rotation_by_size_keeps_every_line_in_order(home) -> None:
    for i in range(12):
        write({**PREDICTION, "label": f"scan{i}"}, max_bytes=1200, backups=3)
    files = sorted(p.name for p in audit.log_path().parent.glob("audit.jsonl*"))
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3"]
    assert all(p.stat().st_size < 1200 for p in audit.log_path().parent.glob("audit.jsonl*"))
    kept = [entry["label"] for entry in audit.read()]
    assert kept == [f"scan{i}" for i in range(12 - len(kept), 12)]  # the oldest were dropped
    assert 6 <= len(kept) < 12
    times = [entry["time"] for entry in audit.read()]
    assert times == sorted(times)


def test_read_since_and_a_cut_last_line(home) -> None:
    write()
    with audit.log_path().open("a") as handle:
        handle.write('{"time": "2099-01-01T00:00:00+00:00", "ori')  # a crash mid-line
    assert len(list(audit.read())) == 1
    assert list(audit.read(datetime(2099, 1, 1))) == []


def test_brat_audit_prints_csv(home, capsys, tmp_path) -> None:
    write()
    write({"path": "x", "error": "The file is empty (0 bytes)."}, file_name="x.png")
    assert main(["audit"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2
    assert rows[0]["probability_glioma_tumor"] == "0.6"
    assert rows[0]["prediction_set"] == "glioma_tumor|no_tumor" and rows[0]["file_name"] == ""
    assert rows[1]["error"] == "The file is empty" and rows[1]["file_name"] == "x.png"
    out = tmp_path / "audit.csv"
    assert main(["audit", "--csv", str(out), "--since", "2099-01-01"]) == 0
    header = out.read_text().splitlines()[0]
    assert header.startswith("time,origin,user,input_sha256,file_name,model,")
    assert len(out.read_text().splitlines()) == 1  # the header only


def test_to_csv_of_nothing_is_a_header() -> None:
    stream = io.StringIO()
    assert audit.to_csv([], stream) == 0
    assert stream.getvalue().startswith("time,origin,")


def test_predict_logs_one_line_per_scan(scans, tmp_path) -> None:
    out = tmp_path / "out.json"
    assert main(["predict", str(scans), "--json", str(out), "--quiet"]) == 1  # b.jpg is damaged
    results = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(out.read_text())}
    logged = lines()
    assert [entry["origin"] for entry in logged] == ["predict", "predict"]
    readable, damaged = logged
    assert readable["input_sha256"] == results["a.png"]["input_sha256"]
    assert readable["verdict"] == results["a.png"]["verdict"] and readable["method"] is None
    assert readable["model"] == SHIPPED_MODEL.name and len(readable["model_sha256"]) == 64
    assert damaged["error"] and damaged["label"] is None
    assert "file_name" not in readable and b"a.png" not in audit.log_path().read_bytes()

    assert main(["predict", str(scans), "--json", str(out), "--quiet", "--audit-file-names"]) == 1
    assert [entry.get("file_name") for entry in lines()[2:]] == ["a.png", "b.jpg"]


def test_predict_logs_nothing_when_switched_off(scans, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out.json"
    assert main(["predict", str(scans), "--json", str(out), "--quiet", "--no-audit"]) == 1
    monkeypatch.setenv("BRAT_AUDIT", "0")
    assert main(["predict", str(scans), "--json", str(out), "--quiet"]) == 1
    assert lines() == []


def test_no_dicom_patient_field_ever_reaches_the_log(tmp_path, monkeypatch) -> None:
    data = make_dicom(make_slice(5, size=128).astype("uint16") * 16, **PATIENT)
    assert dicom_patient_fields(data)["PatientID"] == "ID-12345"  # the header holds them
    scan = tmp_path / "scan.dcm"
    scan.write_bytes(data)
    monkeypatch.setenv("BRAT_AUDIT_FILE_NAMES", "1")  # even with file names allowed

    assert main(["predict", str(scan), "--json", str(tmp_path / "out.json"), "--quiet"]) == 0
    explainer = explainer_for(SHIPPED_MODEL)
    analysis = analyze(data, "gradcam", model=explainer, name=scan.name)
    written = audit.record_analysis(analysis, data=data, model=explainer, file_name=scan.name)
    assert written["origin"] == "app" and written["method"] == "gradcam"
    assert written["file_name"] == "scan.dcm" and written["verdict"] == analysis.verdict

    raw = audit.log_path().read_bytes()
    assert len(raw.splitlines()) == 2
    for value in (*PATIENT.values(), "Doe", "Jane", "12345", "Test^Patient"):
        assert value.encode() not in raw


def test_record_analysis_is_silent_when_switched_off(monkeypatch) -> None:
    monkeypatch.setenv("BRAT_AUDIT", "false")
    assert audit.record_analysis(None, data=b"", model=None) is None
    assert lines() == []


def test_the_audit_command_does_not_load_tensorflow() -> None:
    code = "import sys, brat.audit, brat.cli; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_report_logs_each_scan_and_its_study(scans, tmp_path) -> None:
    pdf = tmp_path / "report.pdf"
    files = [str(scans / "a.png"), str(scans / "b.jpg")]
    assert main(["report", *files, "--out", str(pdf), "--audit-file-names"]) == 1  # b is damaged
    readable, damaged = lines()
    assert (readable["origin"], readable["file_name"]) == ("report", "a.png")
    assert readable["input_sha256"] == audit.sha256_bytes((scans / "a.png").read_bytes())
    assert readable["verdict"] and readable["method"]
    assert (damaged["origin"], damaged["file_name"], damaged["label"]) == ("report", "b.jpg", None)
    assert damaged["error"]

    slices = [str(scans / "a.png")] * 2
    assert main(["report", *slices, "--study", "--out", str(pdf), "--no-audit"]) == 0
    assert len(lines()) == 2
    assert main(["report", *slices, "--study", "--out", str(pdf)]) == 0
    study = lines()[-1]
    assert study["origin"] == "report" and "file_name" not in study and study["verdict"]
