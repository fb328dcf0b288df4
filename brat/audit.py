"""The audit trail: one JSON line per scan analysed in the app, by `brat predict` or `brat report`.

A line says which scan was judged, by which model, with what answer, and nothing that names a
patient: time (UTC, ISO 8601), origin ("app", "predict" or "report"), input_sha256 (of the file's
bytes), file_name (only where the user allows it, `brat.settings.audit_file_names`), model (the
model folder's name) and model_sha256 (of its model.keras), site (the site profile whose
calibration answered, when one did), verdict, label, probabilities,
prediction_set, method (the heatmap's; null for `brat predict`) and error (why a file could not be
read, without the technical detail, which may quote a path). `record` builds the line
from these fields alone, never by dumping an object, so no DICOM header field (patient name, ID,
birth date ...) can reach it.

The log is `$BRAT_HOME/audit/audit.jsonl`, on unless `brat.settings.audit_enabled` says otherwise.
Before a line would take it to MAX_BYTES it is renamed audit.jsonl.1, the older ones moving up to
audit.jsonl.BACKUPS and the oldest dropped, as the standard library's RotatingFileHandler does.
Each line is one write to the file opened for appending, made under a lock that also covers the
rotation, so the app and a `brat predict` can log at once. `brat audit` prints the log as CSV.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from brat.errors import BratError
from brat.files import model_file_sha256, sha256_bytes
from brat.settings import audit_enabled, audit_file_names, home

MAX_BYTES = 5 * 2**20  # ~15,000 lines: months of a clinic's use per file
BACKUPS = 5  # older files kept beside the current one
ORIGINS = ("app", "predict", "report")
# Every field a line may hold, in order; file_name only where the user allows it.
FIELDS = (
    "time",
    "origin",
    "user",
    "input_sha256",
    "file_name",
    "model",
    "model_sha256",
    "site",
    "verdict",
    "label",
    "probabilities",
    "prediction_set",
    "method",
    "error",
)


def log_path() -> Path:
    return home() / "audit" / "audit.jsonl"


def record(
    prediction: dict,
    *,
    input_sha256: str | None,
    model: str,
    model_sha256: str,
    method: str | None,
    origin: str,
    file_name: str | None = None,
    user: str | None = None,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> dict:
    """Append the line of one scan and return it. `prediction` is its `prediction_record` (only
    the verdict, label, probabilities, prediction set and error are read from it); `file_name`
    is logged without its folder; `user` is the app's logged-in user (Streamlit's login), when
    there is one. It writes regardless of the settings, which `record_analysis` and `logged`
    check. A BratError when the log cannot be written."""
    if origin not in ORIGINS:
        raise ValueError(f"`origin` must be one of {ORIGINS}. Received: origin={origin!r}")
    probabilities = prediction.get("probabilities")
    fields = {
        "origin": origin,
        "user": _text(user),
        "input_sha256": input_sha256,
        "file_name": re.split(r"[\\/]", file_name)[-1] if file_name else None,
        "model": str(model),
        "model_sha256": str(model_sha256),
        "site": _text(prediction.get("site")),
        "verdict": _text(prediction.get("verdict")),
        "label": _text(prediction.get("label")),
        "probabilities": {str(c): round(float(p), 6) for c, p in probabilities.items()}
        if probabilities
        else None,
        "prediction_set": _classes(prediction.get("prediction_set")),
        "method": _text(method),
        "error": _plain_error(prediction.get("error")),
    }
    fields = {
        k: v for k, v in fields.items() if v is not None or k not in {"file_name", "user", "site"}
    }
    try:
        return _append(fields, log_path(), max_bytes, backups)
    except OSError as error:
        raise BratError(
            f"The audit log {log_path()} cannot be written ({error}). Make $BRAT_HOME writable, "
            "or turn the audit trail off with BRAT_AUDIT=0."
        ) from error


def record_analysis(
    analysis,
    *,
    data: bytes | None,
    model,
    file_name: str | None = None,
    method: str | None = None,
    file_names: bool | None = None,
    user: str | None = None,
    error: str | None = None,
    origin: str = "app",
) -> dict | None:
    """Log one analysis of the app or of `brat report` (`origin`): a
    `brat.inference.analysis.Analysis` of the bytes `data` (None: a file that could not be read
    at all), made by `model`, its Explainer or Classifier; the line, or None when the audit trail
    is off. `method` is the heatmap shown (default: the analysis's); an upload that could not be
    read has no analysis and its `error` instead. The file name is logged when
    `file_names` is True, or None and the settings allow it (`audit_file_names`)."""
    if not audit_enabled():
        return None
    from brat.inference.prediction import prediction_record

    name, digest = model_identity(model)
    with_name = audit_file_names() if file_names is None else file_names
    return record(
        prediction_record("", analysis, error),
        input_sha256=sha256_bytes(data) if data is not None else None,
        model=name,
        model_sha256=digest,
        method=method or (analysis.method if analysis else None),
        origin=origin,
        file_name=file_name if with_name else None,
        user=user,
    )


def record_study(
    result, *, file_hashes: list[str], model, origin: str, user: str | None = None
) -> dict | None:
    """Log one study's verdict (a `brat.inference.study.StudyResult`); its input_sha256 is the
    SHA-256 of its files' SHA-256s sorted, so the same files give the same hash in any order. No
    file or study name is logged: a series' name often holds the patient's. None when the trail
    is off."""
    if not audit_enabled():
        return None
    name, digest = model_identity(model)
    return record(
        result.to_json(),
        input_sha256=sha256_bytes("".join(sorted(file_hashes)).encode()),
        model=name,
        model_sha256=digest,
        method=None,
        origin=origin,
        user=user,
    )


def logged(records: Iterable[dict], model, *, file_names: bool | None = None) -> Iterable[dict]:
    """`brat predict`'s records (`prediction_record`s with their `input_sha256`), each logged as
    it passes; unchanged when the audit trail is off. `model` is the Explainer or Classifier
    that scored them; `file_names` as for `record_analysis`."""
    if not audit_enabled():
        return records
    with_names = audit_file_names() if file_names is None else file_names
    return _logging(records, model_identity(model), with_names)


def _logging(records: Iterable[dict], identity: tuple[str, str], with_names: bool):
    name, digest = identity
    for prediction in records:
        record(
            prediction,
            input_sha256=prediction.get("input_sha256"),
            model=name,
            model_sha256=digest,
            method=None,
            origin="predict",
            file_name=prediction["path"] if with_names else None,
        )
        yield prediction


def model_identity(model) -> tuple[str, str]:
    """(folder name, SHA-256 of model.keras) of an Explainer, a Classifier or a model folder's
    path: the hash brat.json records (checked when a model is loaded), else the file's own."""
    from brat.model_folder import MODEL_FILE, read_meta

    if isinstance(model, (str, Path)):
        folder, meta = Path(model), read_meta(model)
    else:
        classifier = getattr(model, "classifier", model)
        folder, meta = Path(classifier.path), classifier.meta
    digest = meta.model_sha256 or model_file_sha256(folder / MODEL_FILE)  # older folders: none
    return folder.name, digest


def read(since: datetime | None = None) -> Iterator[dict]:
    """The log's lines, oldest first across the rotated files, from `since` (a datetime; one
    without a time zone is taken as UTC) when given. A line cut short by a crash is skipped."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    for text in _contents(log_path()):
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                time = datetime.fromisoformat(entry["time"])
            except (ValueError, KeyError, TypeError):
                continue
            if since is None or time >= since:
                yield entry


def to_csv(records: Iterable[dict], stream: TextIO) -> int:
    """Write `records` to `stream` as CSV with a header, one probability column per class
    (`probability_CLASS`) and the prediction set as CLASS|CLASS; the number of rows."""
    records = list(records)
    classes = list(dict.fromkeys(c for r in records for c in r.get("probabilities") or {}))
    before, after = FIELDS[: FIELDS.index("probabilities")], FIELDS[FIELDS.index("method") :]
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*before, *(f"probability_{c}" for c in classes), "prediction_set", *after])
    for r in records:
        probabilities = r.get("probabilities") or {}
        writer.writerow(
            [
                *(_cell(r.get(key)) for key in before),
                *(_cell(probabilities.get(c)) for c in classes),
                "|".join(r.get("prediction_set") or []),
                *(_cell(r.get(key)) for key in after),
            ]
        )
    return len(records)


def _text(value) -> str | None:
    return None if value is None else str(value)


def _classes(values) -> list[str] | None:
    return None if values is None else [str(value) for value in values]


def _plain_error(error: str | None) -> str | None:
    """An error message without its bracketed detail or quoted text (an OSError's or a
    decoder's, which may quote a path or a header value)."""
    if error is None:
        return None
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", str(error).partition(" (")[0])
    return text.strip()[:200]


def _cell(value) -> str:
    return "" if value is None else str(value)


def _append(fields: dict, path: Path, max_bytes: int, backups: int) -> dict:
    """Stamp `fields` with the time and append them as one line, rotating first if the line
    would take the file to `max_bytes`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        size = path.stat().st_size if path.exists() else 0
        if size and size + len(data) >= max_bytes:
            _rotate(path, backups)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, data)
        finally:
            os.close(descriptor)
    return line


def _rotate(path: Path, backups: int) -> None:
    """audit.jsonl -> .1 -> .2 ... -> .`backups` (dropped beyond), as RotatingFileHandler does;
    with no backups the file is emptied."""
    if backups < 1:
        path.unlink()
        return
    for index in range(backups - 1, 0, -1):
        older = _rotated(path, index)
        if older.exists():
            older.replace(_rotated(path, index + 1))
    path.replace(_rotated(path, 1))


def _rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def _contents(path: Path) -> list[str]:
    """The text of the rotated files, oldest first, then the current one; read under the lock,
    so a rotation meanwhile neither hides nor repeats lines."""
    if not path.parent.is_dir():
        return []
    with _locked(path):
        pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
        rotated = {
            int(match[1]): file
            for file in path.parent.iterdir()
            if (match := pattern.fullmatch(file.name))
        }
        files = [rotated[i] for i in sorted(rotated, reverse=True)]
        files += [path] if path.exists() else []
        return [file.read_text(encoding="utf-8", errors="replace") for file in files]


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on the log's folder (a lock file beside the log) for a block."""
    try:
        import fcntl
    except ImportError:  # Windows: each line is still one appending write; rotations may race.
        yield
        return
    with path.with_name(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
