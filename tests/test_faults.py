"""Faults: kill -9 during training, a models folder that cannot be written or is full, a damaged
model file. Tiny models (32 px) on the toy slices of conftest.py."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from brat.cli import main
from brat.data.manifest import read_manifest, write_manifest
from brat.errors import BratError, DamagedModelError
from brat.evaluation.model_card import render_card
from brat.files import sha256_file
from brat.inference.classifier import load_classifier
from brat.model_folder import MODEL_FILE, promote
from brat.settings import ACTIVE_MODEL_FILE, promoted_model
from brat.training.train import manifest_digest, train
from tests.training.test_train import CONFIG, Recorder

ROOT = Path(__file__).resolve().parents[1]
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
PREVIOUS = {"model.keras": b"the previous model", "brat.json": b'{"the": "previous model"}'}


def previous_model(out: Path) -> None:
    """A model folder already at `out`, which a failed run must leave byte for byte."""
    out.mkdir(parents=True)
    for name, data in PREVIOUS.items():
        (out / name).write_bytes(data)


def is_previous_model(out: Path) -> bool:
    return {p.name: p.read_bytes() for p in out.iterdir()} == PREVIOUS


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def model_dir(toy_data, tmp_path_factory) -> Path:
    """A trained model folder (one epoch), to copy and damage."""
    root, rows = toy_data
    out = tmp_path_factory.mktemp("trained") / "model"
    train(root, rows, out, replace(CONFIG, epochs=1), progress=False)
    return out


def test_kill_9_during_training_then_the_same_command_resumes_with_the_same_split(
    toy_data,
    tmp_path,
) -> None:
    root, rows = toy_data
    manifest = tmp_path / "manifest.csv"
    write_manifest(rows, manifest)
    models = tmp_path / "models"
    out = models / "model"
    previous_model(out)
    command = [
        *(sys.executable, "-m", "brat", "train", str(root), "--out", str(out)),
        *("--manifest", str(manifest), "--image-size", "32", "--alpha", "0.35"),
        *("--weights", "none", "--epochs", "6", "--batch-size", "16", "--no-augment", "--quiet"),
    ]
    state_file = models / ".model.work" / "state.json"
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
    log = (tmp_path / "killed.log").read_text()
    assert process.returncode == -signal.SIGKILL, f"not killed while training:\n{log[-3000:]}"
    state = json.loads(state_file.read_text())
    killed_after = state["epoch"]
    assert 1 <= killed_after < 6
    assert is_previous_model(out)  # the serving model is untouched
    assert files(models) == [".model.work", "model"]  # no staging folder

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"(resumed after epoch {killed_after})" in again.stdout
    trained = [int(n) for n in re.findall(r"^epoch (\d+):", again.stdout, re.MULTILINE)]
    assert trained[0] == killed_after + 1  # the checkpointed epochs are not trained again
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(1, len(history) + 1))
    assert history[:killed_after] == state["history"]
    meta = json.loads((out / "brat.json").read_text())
    assert meta["manifest_sha256"] == manifest_digest(rows)  # the same split
    assert read_manifest(out / "manifest.csv") == read_manifest(manifest)
    assert meta["model_sha256"] == sha256_file(out / MODEL_FILE)
    assert files(models) == ["model"]


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only folders; the next test covers it")
def test_a_read_only_models_folder_is_a_clear_error_and_the_model_there_is_untouched(
    toy_data,
    tmp_path,
) -> None:
    root, rows = toy_data
    models = tmp_path / "models"
    previous_model(models / "model")
    models.chmod(0o555)
    try:
        with pytest.raises(BratError, match=r"models cannot be written \(\[Errno 13\]"):
            train(root, rows, models / "model", CONFIG, progress=False)
    finally:
        models.chmod(0o755)
    assert is_previous_model(models / "model")
    assert files(models) == ["model"]


def test_a_models_folder_that_cannot_be_created_is_a_clear_error(
    toy_data,
    tmp_path,
    capsys,
) -> None:
    root, rows = toy_data
    write_manifest(rows, tmp_path / "manifest.csv")
    (tmp_path / "models").write_text("a file where the models folder should be")
    command = ["train", str(root), "--out", str(tmp_path / "models" / "model")]
    command += ["--manifest", str(tmp_path / "manifest.csv"), "--image-size", "32", "--quiet"]
    assert main(command) == 1
    error = capsys.readouterr().err
    assert re.search(
        r"error: Cannot write the model folder .*models/model: .*models cannot be", error
    )
    assert files(tmp_path) == ["manifest.csv", "models"]


def test_a_full_disk_while_writing_the_model_keeps_the_previous_model_and_the_checkpoint(
    toy_data,
    tmp_path,
    monkeypatch,
) -> None:
    root, rows = toy_data
    out = tmp_path / "model"
    previous_model(out)

    def full(*args, **kwargs):
        raise FULL

    monkeypatch.setattr("brat.model_folder.write_manifest", full)  # after model.keras is staged
    config = replace(CONFIG, epochs=2)
    message = r"Cannot write the model to .*model \(\[Errno 28\] No space left on device\)"
    with pytest.raises(BratError, match=message):
        train(root, rows, out, config, progress=False)
    assert is_previous_model(out)
    assert files(tmp_path) == [".model.work", "model"]  # the staging folder is gone

    monkeypatch.undo()  # space freed: the same run writes its model without training again
    events = Recorder()
    result = train(root, rows, out, config, events=events, progress=False)
    assert events.epochs == [] and result.resumed_after == 2 and result.out == out
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert load_classifier(out).meta.split_sizes == {"train": 64, "val": 16}
    assert files(tmp_path) == ["model"]


def test_a_full_disk_while_checkpointing_is_a_clear_error_and_resumes_after_the_last_checkpoint(
    toy_data,
    tmp_path,
    monkeypatch,
) -> None:
    from brat.training import checkpoint

    root, rows = toy_data
    out = tmp_path / "model"
    previous_model(out)
    write_json = checkpoint.atomic_write_json

    def full_at_epoch_2(path, data):
        if path.name == "state.json" and data["epoch"] == 2:
            raise FULL
        write_json(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_json", full_at_epoch_2)
    message = r"Cannot save the checkpoint of epoch 2 in .*\.model\.work \(\[Errno 28\]"
    with pytest.raises(BratError, match=message):
        train(root, rows, out, CONFIG, progress=False)
    assert is_previous_model(out)
    assert json.loads((tmp_path / ".model.work" / "state.json").read_text())["epoch"] == 1

    monkeypatch.undo()
    events = Recorder()
    result = train(root, rows, out, CONFIG, events=events, progress=False)
    assert events.epochs == [2, 3, 4] and result.resumed_after == 1
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert files(tmp_path) == ["model"]


def test_a_failed_swap_puts_the_previous_model_back(model_dir, tmp_path, monkeypatch) -> None:
    """The last step renames the old folder aside and the new one in; if the second rename fails,
    the old folder goes back."""
    from brat import model_folder

    classifier = load_classifier(model_dir)
    out = tmp_path / "model"
    previous_model(out)
    rename = Path.replace

    def failing(self, target):
        if self.name.startswith(".model.staging-"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return rename(self, target)

    monkeypatch.setattr(Path, "replace", failing)
    with pytest.raises(BratError, match=r"Any model there before is unchanged"):
        rows = read_manifest(model_dir / "manifest.csv")
        model_folder.write(out, classifier.model, classifier.meta, [], rows, {})
    assert is_previous_model(out)
    assert files(tmp_path) == ["model"]


# Run in a child process: swap the trained model at argv[1] into argv[2], killing itself with
# SIGKILL right after the first rename has moved the old folder aside.
KILLED_MID_SWAP = """
import os, signal, sys
from pathlib import Path
from brat.inference.classifier import load_classifier
from brat.data.manifest import read_manifest
from brat import model_folder

source, out = Path(sys.argv[1]), Path(sys.argv[2])
classifier = load_classifier(source)
rename = Path.replace

def rename_then_die(self, target):
    if self.name.startswith(".model.staging-"):
        os.kill(os.getpid(), signal.SIGKILL)
    return rename(self, target)

Path.replace = rename_then_die
rows = read_manifest(source / "manifest.csv")
model_folder.write(out, classifier.model, classifier.meta, [], rows, {})
"""


@pytest.mark.parametrize("staging_left", [True, False])
def test_a_run_killed_between_the_two_renames_is_finished_by_the_next_load(
    model_dir, tmp_path, staging_left
) -> None:
    out = tmp_path / "model"
    previous_model(out)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SWAP, str(model_dir), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    pid = next(p.name for p in tmp_path.iterdir()).rpartition("-")[2]
    assert files(tmp_path) == [f".model.previous-{pid}", f".model.staging-{pid}"]
    if staging_left:  # The new model is complete: the swap is finished.
        meta = load_classifier(out).meta  # loads, and its model file matches its recorded hash
        assert meta.model_sha256 == sha256_file(out / MODEL_FILE)
        assert meta.manifest_sha256 == load_classifier(model_dir).meta.manifest_sha256
    else:  # Only the old folder is left: it goes back.
        shutil.rmtree(tmp_path / f".model.staging-{pid}")
        with pytest.raises(DamagedModelError):  # PREVIOUS is no real model, but it is back
            load_classifier(out)
        assert is_previous_model(out)
    assert files(tmp_path) == ["model"]


def test_a_swap_in_progress_in_a_live_process_is_left_alone(tmp_path) -> None:
    from brat.folder_swap import previous_folder, recover, staging_folder

    out = tmp_path / "model"
    staging_folder(out).mkdir()  # this process's: alive
    previous_folder(out).mkdir()
    assert not recover(out)
    assert files(tmp_path) == sorted([staging_folder(out).name, previous_folder(out).name])


def test_promoting_with_an_unwritable_home_is_a_clear_error_and_keeps_the_pointer(
    model_dir, tmp_path, monkeypatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("BRAT_HOME", str(home))
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(model_dir, first)
    shutil.copytree(model_dir, second)
    promote(first)
    pointer = (home / ACTIVE_MODEL_FILE).read_bytes()
    if AS_ROOT:  # root writes into read-only folders: the rename fails as on a read-only disk
        rename = Path.replace

        def read_only(self, target):
            if Path(target).parent == home:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            return rename(self, target)

        monkeypatch.setattr(Path, "replace", read_only)
    else:
        home.chmod(0o555)
    try:
        with pytest.raises(
            BratError, match=r"Cannot promote .*second: .*active model is unchanged"
        ):
            promote(second)
    finally:
        home.chmod(0o755)
    assert (home / ACTIVE_MODEL_FILE).read_bytes() == pointer
    assert promoted_model() == first.resolve()
    assert files(home) == [ACTIVE_MODEL_FILE]  # no temporary file left


@pytest.mark.parametrize("damage", ["one flipped byte", "truncated", "garbage"])
def test_a_damaged_model_file_is_detected_by_its_recorded_hash(model_dir, tmp_path, damage) -> None:
    copy = shutil.copytree(model_dir, tmp_path / "model")
    data = (copy / MODEL_FILE).read_bytes()
    (copy / MODEL_FILE).write_bytes(
        {
            "one flipped byte": data[:1000] + bytes([data[1000] ^ 1]) + data[1001:],
            "truncated": data[: len(data) // 2],
            "garbage": os.urandom(len(data)),
        }[damage]
    )
    message = (
        r"model.keras is damaged: its SHA-256 \w+… does not match the \w+… recorded in brat.json "
        r"when it was trained. Retrain the model or restore the file"
    )
    with pytest.raises(DamagedModelError, match=message):
        load_classifier(copy)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_model_file_without_a_recorded_hash_is_a_clear_error(
    model_dir, tmp_path, damage
) -> None:
    """Model folders written before the hash was recorded: Keras' failure, in the same words."""
    copy = shutil.copytree(model_dir, tmp_path / "model")
    meta = json.loads((copy / "brat.json").read_text())
    del meta["model_sha256"]
    (copy / "brat.json").write_text(json.dumps(meta))
    data = (copy / MODEL_FILE).read_bytes()
    damaged = data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data))
    (copy / MODEL_FILE).write_bytes(damaged)
    with pytest.raises(DamagedModelError, match=r"model.keras is damaged or not a Keras model"):
        load_classifier(copy)
    assert load_classifier(model_dir).meta.model_sha256  # the intact one still loads


def test_the_model_card_shows_the_hash_of_the_model_file(model_dir) -> None:
    digest = sha256_file(model_dir / MODEL_FILE)
    assert json.loads((model_dir / "brat.json").read_text())["model_sha256"] == digest
    assert f"- model.keras SHA-256 (checked when the model loads): `{digest}`" in render_card(
        model_dir
    )
