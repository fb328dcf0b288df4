"""Each export format loads in its own runtime and gives the classifier's logits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brat.cli import main
from brat.inference.classifier import load_classifier
from brat.settings import SHIPPED_MODEL


@pytest.fixture(scope="module")
def slices() -> np.ndarray:
    return np.random.default_rng(0).random((3, 160, 160, 1), np.float32)


@pytest.fixture(scope="module")
def reference(slices) -> np.ndarray:
    return np.asarray(load_classifier(SHIPPED_MODEL).model(slices))


def _run(fmt: str, out) -> None:
    assert main(["export", "--model", str(SHIPPED_MODEL), "--format", fmt, "--out", str(out)]) == 0
    meta = json.loads((out / "brat.json").read_text())
    assert meta["format"] == fmt and meta["input"]["shape"] == [None, 160, 160, 1]
    assert meta["disclaimer"].startswith("Research use only")


def test_savedmodel(tmp_path, slices, reference) -> None:
    import tensorflow as tf

    _run("savedmodel", tmp_path)
    loaded = tf.saved_model.load(str(tmp_path / "savedmodel"))  # keep it: it owns the weights
    served = loaded.serve(slices).numpy()
    assert np.allclose(served, reference, atol=1e-4)


def test_tflite(tmp_path, slices, reference) -> None:
    import tensorflow as tf

    _run("tflite", tmp_path)
    interpreter = tf.lite.Interpreter(str(tmp_path / "model.tflite"))
    source = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(source, slices.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source, slices)
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.allclose(output, reference, atol=1e-4)


def test_onnx(tmp_path, slices, reference) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    _run("onnx", tmp_path)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    output = session.run(None, {session.get_inputs()[0].name: slices})[0]
    assert np.allclose(output, reference, atol=1e-4)
