"""Export a model folder's classifier for serving elsewhere.

- savedmodel: a TensorFlow SavedModel (`keras.Model.export`) for TensorFlow Serving; signature
  `serve` takes float32 (n, S, S, 1) slices in [0, 1] (as `brat.data.preprocess.prepare_slice` makes
  them) and returns the four logits.
- tflite: the same graph converted for TensorFlow Lite (XNNPACK on CPU).
- onnx: the same graph converted with tf2onnx, opset 17 (`brat.inference.serving.to_onnx`).
The calibration temperature, class names and research-use notice go beside it in brat.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from brat import DISCLAIMER
from brat.files import atomic_write_json
from brat.inference.classifier import Classifier
from brat.model_folder import META_FILE

FORMATS = ("savedmodel", "tflite", "onnx")


def export_model(classifier: Classifier, fmt: str, out: Path) -> Path:
    """Write `classifier` in format `fmt` to the folder `out`; returns the model file/folder."""
    import tensorflow as tf

    if fmt not in FORMATS:
        raise ValueError(f"`fmt` must be one of {FORMATS}. Received: {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = classifier.image_size
    saved = out / "savedmodel"
    if saved.exists():
        shutil.rmtree(saved)
    classifier.model.export(str(saved), format="tf_saved_model", verbose=False)
    target = saved
    if fmt == "tflite":
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        target = out / "model.tflite"
        target.write_bytes(converter.convert())
        shutil.rmtree(saved)
    elif fmt == "onnx":
        from brat.inference.serving import to_onnx

        target = out / "model.onnx"
        target.write_bytes(to_onnx(classifier.model))
        shutil.rmtree(saved)
    meta = {
        "disclaimer": DISCLAIMER,
        "format": fmt,
        "source": str(classifier.path),
        "input": {"shape": [None, size, size, 1], "dtype": "float32", "range": [0.0, 1.0]},
        "output": "logits; probabilities = softmax(logits / temperature)",
        "classes": list(classifier.classes),
        "temperature": classifier.temperature,
    }
    atomic_write_json(out / META_FILE, meta)
    return target
