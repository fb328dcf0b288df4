"""The forward pass `brat.analyze` serves with: ONNX Runtime, else TensorFlow.

One graph takes prepared slices and returns the classifier's logits, the last feature maps (for
the class-activation map) and the feature maps the out-of-distribution check and the plane
classifier pool. On this 2-core CPU, ONNX Runtime runs it several times faster than a compiled
TensorFlow function with the same outputs (`python -m brat bench`; the tests hold the outputs
equal). The graph is converted with tf2onnx once per model file and kept in brat's cache folder
(`$BRAT_CACHE_DIR`, default ~/.cache/brat), so only the first start after training pays for it.

`BRAT_RUNTIME=tensorflow` turns ONNX Runtime off; so does a missing onnxruntime or tf2onnx, or a
conversion that fails, with one warning.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

from brat.files import atomic_write_bytes, sha256_file

logger = logging.getLogger(__name__)

OPSET = 17


class OnnxHeads:
    """An ONNX Runtime session of a graph with an image input (and maybe more) and several outputs.

    A call that is the only one in flight runs on every core (up to `MAX_THREADS`); calls that
    overlap run on one thread each, so concurrent sessions each get a core instead of fighting
    over a shared pool (measurements: docs/performance.md).
    """

    def __init__(self, model_bytes: bytes) -> None:
        self._single = _session(model_bytes, threads=1)
        cores = _available_cores()
        self._parallel = (
            _session(model_bytes, threads=min(cores, MAX_THREADS)) if cores > 1 else self._single
        )
        self._inputs = [each.name for each in self._single.get_inputs()]
        self._in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, images: np.ndarray, *more: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for float32 (n, S, S, 1) slices (and the graph's further inputs,
        such as each slice's target class); safe to call from many threads."""
        feed = {self._inputs[0]: np.ascontiguousarray(images, np.float32)}
        feed |= {
            name: np.ascontiguousarray(value)
            for name, value in zip(self._inputs[1:], more, strict=True)
        }
        with self._lock:
            self._in_flight += 1
            alone = self._in_flight == 1
        try:
            return (self._parallel if alone else self._single).run(None, feed)
        finally:
            with self._lock:
                self._in_flight -= 1


# A slice's layers are small: more threads would mostly wait on each other (measured only on
# this project's 2-core machine, where both are used).
MAX_THREADS = 4
# How long pool threads wait for the next layer's work before they sleep. ONNX Runtime's default
# kept the second core busy for about 50 ms after every call; 1 ms keeps most of the speed-up.
SPIN_MICROSECONDS = 1000


def _session(model_bytes: bytes, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.spin_duration_us", str(SPIN_MICROSECONDS))
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.cache
def limit_blas_threads() -> None:
    """One BLAS thread for this process: the analysis path's matrix products are one slice's
    (the out-of-distribution distance, about 1 MFLOP), and OpenBLAS' pool threads spun after each
    one, taking 7 ms of the second core per analysis from ONNX Runtime, TensorFlow and the app.
    A process-wide setting, so the programs call it where they start (the app, the command
    line, the load test), never a library function."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1, user_api="blas")


def onnx_runtime_wanted() -> bool:
    """False when $BRAT_RUNTIME is "tensorflow" or onnxruntime is not installed (with a warning)."""
    if os.environ.get("BRAT_RUNTIME", "").lower() == "tensorflow":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.warning("onnxruntime is not installed: analysing with TensorFlow (slower).")
        return False
    return True


def _cache_file(key: str, cache_dir: Path | None) -> Path:
    from brat.data.fingerprint import default_cache_dir

    return (cache_dir or default_cache_dir()) / "onnx" / f"{key}.onnx"


def cached_graph(key: str, cache_dir: Path | None = None) -> OnnxHeads | None:
    """The graph an earlier start converted under `key`, or None (not converted yet, or a
    damaged entry)."""
    try:
        return OnnxHeads(_cache_file(key, cache_dir).read_bytes())
    except Exception:
        return None


def converted_graph(key: str, convert, cache_dir: Path | None = None) -> OnnxHeads | None:
    """`convert()` (serialised ONNX bytes) run now (a few seconds) and cached under `key`; None if
    it cannot be converted."""
    try:
        model_bytes = convert()
        heads = OnnxHeads(model_bytes)
    except Exception as error:  # tf2onnx missing or unable to convert: TensorFlow still works.
        logger.warning("ONNX conversion failed (%s): analysing with TensorFlow (slower).", error)
        return None
    # A read-only cache only costs the conversion at the next start.
    with contextlib.suppress(OSError):
        atomic_write_bytes(_cache_file(key, cache_dir), model_bytes)
    return heads


def cached_onnx_heads(
    keras_model, model_file: Path, cache_dir: Path | None = None
) -> OnnxHeads | None:
    """`keras_model`'s graph as an earlier start converted it, or None."""
    return cached_graph(_heads_key(keras_model, model_file), cache_dir)


def converted_onnx_heads(
    keras_model, model_file: Path, cache_dir: Path | None = None
) -> OnnxHeads | None:
    """`keras_model` converted now (a few seconds) and cached; None if it cannot be converted."""
    key = _heads_key(keras_model, model_file)
    return converted_graph(key, lambda: to_onnx(keras_model), cache_dir)


def graph_key(model_file: Path, description: list) -> str:
    """What a converted graph depends on: the model file, and `description` (its input shape,
    its outputs ...)."""
    digest = hashlib.sha256(sha256_file(model_file).encode())
    digest.update(repr(description).encode())
    return digest.hexdigest()[:32]


def _heads_key(keras_model, model_file: Path) -> str:
    outputs = [output.name for output in keras_model.outputs]
    return graph_key(model_file, [tuple(keras_model.input.shape), *outputs])


def to_onnx(keras_model) -> bytes:
    """`keras_model` (one (n, S, S, 1) float32 input) as a serialised ONNX graph."""
    import tensorflow as tf

    size = keras_model.input.shape[1]
    spec = (tf.TensorSpec((None, size, size, 1), tf.float32, name="slice"),)
    return function_to_onnx(lambda x: keras_model(x, training=False), spec)


def function_to_onnx(function, input_signature) -> bytes:
    """A TensorFlow function of `input_signature` (TensorSpecs) as a serialised ONNX graph."""
    import tensorflow as tf
    import tf2onnx

    tf2onnx.logging.set_level(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(
        tf.function(function), input_signature=input_signature, opset=OPSET
    )
    return proto.SerializeToString()
