"""A tiny MobileNetV2 trained a few steps on generated slices: learning, resume, stop, output."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from brat.cli import main
from brat.data.manifest import write_manifest
from brat.errors import DatasetError
from brat.evaluation.evaluate import evaluate
from brat.inference.classifier import load_classifier
from brat.labels import CLASSES
from brat.training.model import ModelConfig
from brat.training.train import TrainConfig, TrainingEvents, train
from tests.synthetic import make_slice

CONFIG = TrainConfig(
    model=ModelConfig(image_size=32, alpha=0.35, weights="none", mask_weight=0.0),
    epochs=4,
    schedule="plateau",
    batch_size=16,
    patience=10,
    augment=False,
)


class Recorder(TrainingEvents):
    def __init__(self, crash_after: int = 0, stop_at: tuple[int, int] | None = None) -> None:
        self.epochs: list[int] = []
        self.batches: list[tuple[int, int, int]] = []
        self.crash_after, self.stop_at = crash_after, stop_at
        self.stop = threading.Event()

    def on_batch(self, epoch, batch, batches, logs):
        self.batches.append((epoch, batch, batches))
        assert "loss" in logs
        if self.stop_at == (epoch, batch):
            self.stop.set()

    def on_epoch(self, row):
        self.epochs.append(row["epoch"])
        if row["epoch"] == self.crash_after:
            raise RuntimeError("simulated crash")


def run(data, out, events=None, config=CONFIG):
    root, rows = data
    return train(
        root, rows, out, config, events=events, stop=events and events.stop, progress=False
    )


def test_training_learns_and_writes_a_complete_model_folder(toy_data, tmp_path) -> None:
    events = Recorder()
    result = run(toy_data, tmp_path / "model", events)
    assert result.status == "completed" and events.epochs == [1, 2, 3, 4]
    assert events.batches[:4] == [(1, 1, 4), (1, 2, 4), (1, 3, 4), (1, 4, 4)]
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "brat.json",
        "familiarity.npz",  # too few validation images for conformal.npz
        "history.json",
        "manifest.csv",
        "model.keras",
        "ood.npz",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no work or staging folder left
    meta = json.loads((tmp_path / "model" / "brat.json").read_text())
    assert meta["best_epoch"] == result.best_epoch and meta["temperature"] == result.temperature
    assert meta["split_sizes"] == {"train": 64, "val": 16}

    classifier = load_classifier(tmp_path / "model")
    assert classifier.ood is not None and np.isfinite(classifier.ood.threshold)
    report = evaluate(toy_data[0], classifier, "test", progress=False)
    assert report.metrics.n == 16 and sum(map(sum, report.metrics.confusion_matrix)) == 16
    assert len(report.misclassified) == round(16 * (1 - report.metrics.accuracy))
    probabilities = classifier.classify(make_slice(0, size=128) / 255.0)
    assert probabilities.shape == (4,) and abs(probabilities.sum() - 1) < 1e-6

    # The same through the command line, and the model card from the measured files.
    out = tmp_path / "model"
    assert (
        main(
            [
                "evaluate",
                str(toy_data[0]),
                "--model",
                str(out),
                "--quiet",
                "--json",
                str(out / "evaluation-test.json"),
            ]
        )
        == 0
    )
    assert json.loads((out / "evaluation-test.json").read_text())["n"] == 16
    assert main(["card", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "Research use only" in card and "## Held-out test split" in card
    assert f"{100 * report.metrics.accuracy:.1f}%" in card
    assert "crossval.json is not there yet" in card


def test_evaluate_without_a_model_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["evaluate", str(tmp_path), "--model", str(tmp_path / "none")]) == 1
    assert "No trained model at" in capsys.readouterr().err


def test_a_crashed_run_resumes_after_its_last_epoch(toy_data, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(toy_data, tmp_path / "model", Recorder(crash_after=2))
    assert not (tmp_path / "model").exists()
    state = json.loads((tmp_path / ".model.work" / "state.json").read_text())
    assert state["epoch"] == 2

    events = Recorder()
    result = run(toy_data, tmp_path / "model", events)
    assert events.epochs == [3, 4]  # epochs 1 and 2 are not trained again
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert (tmp_path / "model" / "model.keras").is_file()
    assert not (tmp_path / ".model.work").exists()


def test_a_stop_request_keeps_the_best_completed_epoch(toy_data, tmp_path) -> None:
    events = Recorder(stop_at=(2, 1))
    result = run(toy_data, tmp_path / "model", events)
    assert result.status == "stopped" and result.best_epoch == 1
    assert [row["epoch"] for row in result.history] == [1]
    assert events.batches[-1] == (2, 1, 4)  # ended right after the batch that asked
    assert load_classifier(tmp_path / "model").meta.status == "stopped"


def test_the_cosine_schedule_trains_every_epoch_and_keeps_the_last(toy_data, tmp_path) -> None:
    # patience 1 would stop a plateau run at the first epoch whose validation loss is not better.
    config = replace(CONFIG, schedule="cosine", patience=1, learning_rate=1e-3)
    result = run(toy_data, tmp_path / "model", config=config)
    assert result.status == "completed" and result.best_epoch == 4
    rates = [row["learning_rate"] for row in result.history]
    assert np.allclose(rates, [1e-3, 1e-3 * 0.8536, 1e-3 * 0.5, 1e-3 * 0.1464], rtol=1e-3)
    assert config.cosine_rate(1) == 1e-3 and config.cosine_rate(5) < 1e-12  # epoch 5 would be 0
    assert load_classifier(tmp_path / "model").meta.config.schedule == "cosine"
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")


def test_label_smoothing_spreads_the_target_and_survives_a_resume(toy_data, tmp_path) -> None:
    from brat.training.losses import SmoothedSparseCrossentropy

    logits = np.array([[2.0, 0, 0, 0], [0, 1, 3, 0]], "float32")
    labels = np.array([0, 2])
    target = np.eye(4)[labels] * 0.9 + 0.1 / 4
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(target * log_p).sum(axis=1)
    assert float(SmoothedSparseCrossentropy(0.1)(labels, logits)) == pytest.approx(expected.mean())
    weighted = SmoothedSparseCrossentropy(0.1)(labels, logits, sample_weight=np.array([1.0, 0]))
    assert float(weighted) == pytest.approx(expected[0] / 2)

    config = replace(CONFIG, label_smoothing=0.1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(toy_data, tmp_path / "model", Recorder(crash_after=1), config=config)
    result = run(toy_data, tmp_path / "model", config=config)  # reloads the checkpoint's loss
    assert result.resumed_after == 1 and len(result.history) == 4
    assert load_classifier(tmp_path / "model").meta.config.label_smoothing == 0.1
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.0)


def test_a_stop_in_the_first_epoch_leaves_the_previous_model_untouched(toy_data, tmp_path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.keras").write_text("the previous model")
    result = run(toy_data, out, Recorder(stop_at=(1, 2)))
    assert result.out is None and result.status == "stopped"
    assert (out / "model.keras").read_text() == "the previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_bad_manifests_are_clear_errors(toy_data, tmp_path) -> None:
    root, rows = toy_data
    no_val = [r for r in rows if r.split != "val"]
    with pytest.raises(DatasetError, match="both the train and the val split"):
        train(root, no_val, tmp_path / "m", CONFIG, progress=False)
    with pytest.raises(DatasetError, match="no images of the axial plane"):
        train(root, rows, tmp_path / "m", TrainConfig(plane="axial"), progress=False)


def test_crossval_trains_every_round_and_resumes_from_saved_rounds(toy_data, tmp_path) -> None:
    from dataclasses import replace

    from brat.data.scan import scan_dataset
    from brat.training.crossval import crossval

    scanned = scan_dataset(toy_data[0], progress=False)
    config = replace(CONFIG, epochs=1)
    report = crossval(scanned, config, 3, tmp_path, progress=False)
    # Generated slices that the duplicate finder takes for copies under different labels are
    # left out, as in a split.
    labels = {r.path: r.label for r in scanned.dataset.records}
    conflicting = {p for c in scanned.duplicates.label_conflicts(labels) for p in c}
    assert report.folds == 3 and report.n == 96 - len(conflicting)
    assert len(report.rounds) == 3
    accuracies = [r["accuracy"] for r in report.rounds]
    assert report.mean["accuracy"] == sum(accuracies) / 3
    assert {"tumour_accuracy", "ece", "glioma_tumor_recall"} <= set(report.std)
    for r in report.rounds:
        assert sum(g["wrong"] for g in r["error_groups"]) <= round(r["n"] * (1 - r["accuracy"]))
    # benchmarks.hard_patients reads the rounds from the work folder crossval wrote.
    from benchmarks.hard_patients import hard_patients

    totals = hard_patients([tmp_path])["runs"][tmp_path.name]
    errors = sum(round(r["n"] * (1 - r["accuracy"])) for r in report.rounds)
    assert totals["n"] == report.n and totals["errors"] == errors

    events = Recorder()
    again = crossval(scanned, config, 3, tmp_path, events=events, progress=False)
    assert events.epochs == [] and again.mean == report.mean


def test_crossval_rounds_train_side_by_side_on_a_local_dask_cluster(toy_data, tmp_path) -> None:
    """`cluster="local:2"`: the rounds train in two worker processes on the same manifests as
    here, and write their results where a rerun on this machine finds them. (Numbers match here
    only to float rounding: Dask's workers run one oneDNN thread each.)"""
    from dataclasses import replace

    from brat.data.scan import scan_dataset
    from brat.training.crossval import crossval

    scanned = scan_dataset(toy_data[0], progress=False)
    config = replace(CONFIG, epochs=1)
    there = crossval(scanned, config, 3, tmp_path, progress=False, cluster="local:2")
    assert len(there.rounds) == 3 and all(0 <= r["accuracy"] <= 1 for r in there.rounds)
    assert all(r["training_seconds"] > 0 for r in there.rounds)
    events = Recorder()
    here = crossval(scanned, config, 3, tmp_path, events=events, progress=False)
    assert events.epochs == [] and here.mean == there.mean  # every round was done there


DETERMINISM_SCRIPT = """
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from brat.inference.classifier import load_classifier
from brat.data.manifest import read_manifest
from brat.training.train import train
from tests.training.test_train import CONFIG

root, manifest, out = (Path(p) for p in sys.argv[1:])
config = replace(CONFIG, epochs=2, augment=True, deterministic=True)
weights = []
for name in ("a", "b"):
    train(root, read_manifest(manifest), out / name, config, progress=False)
    weights.append(load_classifier(out / name).model.get_weights())
same = all(np.array_equal(x, y) for x, y in zip(*weights, strict=True))
print("identical" if same else "different")
"""


def test_deterministic_mode_gives_identical_models(toy_data, tmp_path) -> None:
    """In a subprocess: op determinism is process-wide and cannot be switched off again."""
    import subprocess
    import sys

    from brat.data.manifest import write_manifest

    root, rows = toy_data
    write_manifest(rows, tmp_path / "manifest.csv")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            DETERMINISM_SCRIPT,
            str(root),
            str(tmp_path / "manifest.csv"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=600,
    )
    assert result.stdout.strip() == "identical", result.stderr[-2000:]


@pytest.mark.parametrize("target", ["head", "evidence"])
def test_training_with_masks_as_an_auxiliary_target(toy_data, tmp_path, target) -> None:
    """The toy squares are the 'tumours': their masks train a second output, which the saved
    classifier no longer has (for "evidence", its weights are the plain dense layer's)."""
    root, rows = toy_data
    corners = [(20, 20), (20, 80), (80, 20), (80, 80)]
    masked = []
    for row in rows:
        x, y = corners[CLASSES.index(row.label)]
        mask = np.zeros((128, 128), np.uint8)
        cv2.rectangle(mask, (x, y), (x + 28, y + 28), 255, -1)
        mask_path = f"masks/{row.path}"
        (root / mask_path).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / mask_path), mask)
        masked.append(replace(row, mask=mask_path))
    model = replace(CONFIG.model, mask_weight=1.0, mask_target=target)
    config = replace(CONFIG, model=model, epochs=2, augment=True)
    recorder = Recorder()
    result = train(root, masked, tmp_path / "model", config, events=recorder, progress=False)
    assert result.out is not None and len(result.history) == 2
    assert {"loss", "accuracy", "tumour_mask_loss"} <= set(result.history[-1])
    classifier = load_classifier(result.out)
    assert len(classifier.model.outputs) == 1
    assert classifier.model.get_layer("out_relu") is not None
    assert type(classifier.model.get_layer("logits")).__name__ == "Dense"


def test_plane_labels_give_a_plane_classifier_per_plane_models_and_the_comparison(
    toy_data, tmp_path, capsys
) -> None:
    root, rows = toy_data
    planed = [
        replace(row, plane=("axial", "coronal", "sagittal")[i % 3], plane_source="label")
        for i, row in enumerate(rows)
    ]
    config = replace(CONFIG, epochs=1)
    combined = train(root, planed, tmp_path / "combined", config, progress=False)
    assert (combined.out / "planes.npz").is_file()
    assert load_classifier(combined.out).planes is not None

    # Planes the classifier predicted itself are used to select images, never learnt from.
    predicted = [replace(row, plane_source="predicted") for row in planed]
    guessed = train(root, predicted, tmp_path / "guessed", config, progress=False)
    assert not (guessed.out / "planes.npz").exists()

    axial = train(root, planed, tmp_path / "axial", replace(config, plane="axial"), progress=False)
    meta = json.loads((axial.out / "brat.json").read_text())
    expected = sum(r.plane == "axial" and r.split == "train" for r in planed)
    assert meta["config"]["plane"] == "axial" and meta["split_sizes"]["train"] == expected
    assert not (axial.out / "planes.npz").exists()  # one plane cannot train a plane classifier

    # Per-plane models next to the combined one are what `brat compare` finds by default.
    for plane in ("coronal", "sagittal"):
        train(root, planed, tmp_path / plane, replace(config, plane=plane), progress=False)
    for plane in ("axial", "coronal", "sagittal"):
        (tmp_path / plane).rename(tmp_path / f"combined-{plane}")
    out = tmp_path / "comparison.json"
    command = ["compare", str(root), "--model", str(combined.out), "--json", str(out)]
    assert main(command) == 0
    report = json.loads(out.read_text())
    test = [r for r in planed if r.split == "test"]
    assert report["all"]["n"] == len(test)
    assert report["plane_sources"]["label"] == len(test)
    for plane, row in report["planes"].items():
        assert row["n"] == sum(r.plane == plane for r in test)
        for side in ("combined", "per_plane"):
            assert row[side]["n"] == row["n"]
            low, high = row[side]["accuracy_ci95"]
            assert low <= row[side]["accuracy"] <= high
        assert row["combined"]["ece"] != row["per_plane"]["ece"]  # two different models
    hits = sum(row["n"] * row["per_plane"]["accuracy"] for row in report["planes"].values())
    assert report["all"]["per_plane"]["accuracy"] == pytest.approx(hits / len(test))
    assert report["differences"] == {"axial": {}, "coronal": {}, "sagittal": {}}

    # A per-plane model that trained on the compared images is refused.
    leaky = tmp_path / "leaky"
    shutil.copytree(tmp_path / "combined-axial", leaky)
    write_manifest([replace(r, split="train") for r in planed], leaky / "manifest.csv")
    assert main([*command, "--axial", str(leaky)]) == 1
    assert "trained or was selected on 16 of the images" in capsys.readouterr().err
    assert main([*command, "--axial", str(tmp_path / "combined-coronal")]) == 1
    assert "trained on the coronal plane, not axial" in capsys.readouterr().err


def test_compare_says_how_the_per_plane_models_were_trained_differently() -> None:
    from brat.evaluation.compare import differences_text, training_differences

    evidence = ModelConfig(mask_weight=0.5, mask_target="evidence")
    combined = TrainConfig(model=evidence, schedule="cosine").to_dict()
    same = {**combined, "plane": "axial"}
    # Written before brat had schedules or the evidence loss: those count as their defaults.
    older = {k: v for k, v in combined.items() if k != "schedule"} | {"plane": "coronal"}
    older["model"] = {k: v for k, v in combined["model"].items() if k[:5] != "mask_"}
    changed = {"schedule": ["cosine", "plateau"], "model.mask_weight": [0.5, 0.0]}
    changed["model.mask_target"] = ["evidence", "head"]
    combined, same, older = (TrainConfig.from_dict(c) for c in (combined, same, older))
    assert training_differences(combined, same) == {}
    assert training_differences(combined, older) == changed
    differences = {"axial": {}, "coronal": changed, "sagittal": changed}
    assert differences_text(differences) == (
        "The axial model was trained with the combined model's settings. The coronal and "
        "sagittal models differ from the combined model in schedule plateau (combined: cosine), "
        "model.mask_weight 0.0 (combined: 0.5), model.mask_target head (combined: evidence)."
    )


def test_one_plane_may_lack_a_class_but_the_combined_model_may_not(toy_data) -> None:
    from brat.training.train import _select_rows

    _, rows = toy_data
    coronal = [
        replace(row, plane="axial" if row.label == "no_tumor" else "coronal", plane_source="label")
        for row in rows
    ]
    train_rows, _ = _select_rows(coronal, "coronal")
    assert {r.label for r in train_rows} == set(CLASSES) - {"no_tumor"}
    without = [row for row in rows if row.label != "no_tumor"]
    with pytest.raises(DatasetError, match=r"no images of \['no_tumor'\]"):
        _select_rows(without, None)
