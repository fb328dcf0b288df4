"""How fast is brat on this machine? `python -m brat bench --json OUT` (see `run_bench`).

Measures, on the same model and the same images: the cold start of a fresh process until its first
analysis is done; warm `brat.analyze` (prediction + Grad-CAM on the original image) p50/p95, with
the runtime it served with, the same with TensorFlow alone, and with the app's default heatmap
(LayerCAM); the peer path (`model.predict` then tf-keras-vis Gradcam, per image) p50/p95 and the
speed-up; batch classification throughput, and `brat predict`'s files-to-verdicts rate; training
throughput of the model's recipe, and the pace a training run (in its own process, as the Train
page starts one) keeps while 8 sessions analyse, against its pace alone; the app's first paint;
peak memory.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from brat import DISCLAIMER
from brat.labels import SHOWN_METHOD

# Analysing sessions beside the training run in the under-load measure (the 8).
LOAD_SESSIONS = 8


def _percentiles(seconds: list[float]) -> dict:
    values = np.array(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "n": len(values),
    }


def bench_images(data_root: Path | None, classifier, count: int) -> tuple[list, str]:
    """Encoded images to analyse: the model's own test split when its folder is given."""
    if data_root is not None:
        rows = [r for r in classifier.manifest_for(data_root) if r.split == "test"]
        step = max(1, len(rows) // count)
        paths = [Path(data_root) / r.path for r in rows[::step][:count]]
        if all(p.is_file() for p in paths):
            return [p.read_bytes() for p in paths], f"{len(paths)} test-split images"
    import cv2

    from brat.data.synthetic import generated_slice

    images = [cv2.imencode(".png", generated_slice(i, 512))[1].tobytes() for i in range(count)]
    return images, f"{count} generated 512-px slices"


def cold_start(model: Path, image: Path) -> float:
    """Seconds for a fresh Python process to import brat, load the model and analyse one file."""
    code = (
        "import sys, brat; from brat.inference.analysis import explainer_for; "
        "brat.analyze(sys.argv[1], model=explainer_for(sys.argv[2]))"
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, str(image), str(model)],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return time.perf_counter() - started


def run_bench(
    model: Path | None = None, data_root: Path | None = None, count: int = 40, quick: bool = False
) -> dict:
    import tempfile

    import keras
    import tensorflow as tf
    from tf_keras_vis.gradcam import Gradcam

    import brat
    from brat.data.decode import decode_image
    from brat.data.preprocess import prepare_slice
    from brat.evaluation.training_load import pace_under_load
    from brat.inference.analysis import explainer_for
    from brat.inference.explain import Explainer
    from brat.settings import active_model_path

    model = Path(model or active_model_path()).resolve()
    explainer = explainer_for(model)
    classifier = explainer.classifier
    count = 8 if quick else count
    images, source = bench_images(data_root, classifier, count)

    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        handle.write(images[0])
        handle.flush()
        cold = cold_start(model, Path(handle.name))

    warm = _analyze_times(explainer, images)
    shown = _analyze_times(explainer, images, passes=1, method=SHOWN_METHOD)
    serving_rss = _peak_rss_mb()  # model loaded and analyses done: what the app holds
    tensorflow_only = None
    if explainer.runtime != "tensorflow":  # the same analyses without ONNX Runtime
        tensorflow_only = _analyze_times(Explainer(classifier, runtime="tensorflow"), images)
    prepared = np.stack(
        [prepare_slice(decode_image(data).pixels, classifier.image_size)[0] for data in images]
    )
    tool = Gradcam(classifier.model, clone=False)
    peer = []
    for i in range(min(len(images), 4 if quick else 20) + 1):
        started = time.perf_counter()
        x = prepared[i % len(prepared)][None, ..., None]
        scores = classifier.model.predict(x, verbose=0)
        target = int(np.argmax(scores[0]))
        tool(lambda logits, t=target: logits[:, t], x, penultimate_layer="out_relu")
        if i:  # the first call includes tracing
            peer.append(time.perf_counter() - started)

    batch = np.repeat(prepared, max(1, 64 // len(prepared)) + 1, axis=0)[:64]
    classifier.logits(batch)
    started = time.perf_counter()
    classifier.logits(batch)
    batch_rate = len(batch) / (time.perf_counter() - started)

    scoring_rate = _scoring_rate(explainer, images, 32 if quick else 512)
    train_rate = _training_rate(classifier, steps=2 if quick else 6)
    under_load = pace_under_load(
        lambda: brat.analyze(images[0], model=explainer), LOAD_SESSIONS, 4.0 if quick else 15.0
    )
    paint = page_paint_seconds()
    warm_stats, peer_stats = _percentiles(warm), _percentiles(peer)
    return {
        "disclaimer": DISCLAIMER,
        "model": str(model),
        "image_size": classifier.image_size,
        "images": source,
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cold_start_s": round(cold, 2),
        "runtime": explainer.runtime,
        "analyze_warm": warm_stats,
        "analyze_warm_tensorflow": tensorflow_only and _percentiles(tensorflow_only),
        "shown_method": SHOWN_METHOD,  # the app's default heatmap, and its analyze time
        "analyze_warm_shown": _percentiles(shown),
        "peer_predict_plus_tf_keras_vis": peer_stats,
        "speedup_p50": round(peer_stats["p50_ms"] / warm_stats["p50_ms"], 1),
        "batch_images_per_s": round(batch_rate, 1),
        "predict_scans_per_s": round(scoring_rate, 1),  # `brat predict FOLDER`, files to verdicts
        "training_images_per_s": round(train_rate, 1),
        "training_under_load": under_load,
        "page_without_model_paint_s": paint,
        "peak_rss_mb_serving": serving_rss,
        "peak_rss_mb_with_peer_and_training": _peak_rss_mb(),
    }


def _analyze_times(
    explainer, images: list[bytes], passes: int = 3, method: str = "gradcam"
) -> list[float]:
    """Seconds per `brat.analyze` of each image, `passes` times over the images (a shared
    2-core machine's timings wander by a millisecond from one pass to the next), after a
    warm-up (tracing, kernel creation)."""
    import brat

    for data in images[:3]:
        brat.analyze(data, method, model=explainer)
    times = []
    for data in images * passes:
        started = time.perf_counter()
        brat.analyze(data, method, model=explainer)
        times.append(time.perf_counter() - started)
    return times


def page_paint_seconds() -> float | None:
    """Seconds for a fresh server process to run the app's home page to its end, as a
    browser's first paint waits for, after the start-up hook (the model loading in a thread
    meanwhile); None where app_main.py is not beside the package."""
    app = Path(__file__).resolve().parents[2] / "app_main.py"
    if not app.is_file():
        return None
    code = (
        "import sys, time\n"
        "from streamlit.testing.v1 import AppTest\n"
        "from app_pages.ui import load_model_in_background, wait_for_model_threads\n"
        "load_model_in_background()  # as app.py's start-up hook does\n"
        "app = AppTest.from_file(sys.argv[1], default_timeout=60)\n"
        "started = time.perf_counter()\n"
        "app.run()\n"
        "assert not app.exception, app.exception\n"
        "print(time.perf_counter() - started, flush=True)\n"
        "wait_for_model_threads()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(app)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=app.parent,
        check=True,
    )
    return round(float(done.stdout.strip().splitlines()[-1]), 2)


def _scoring_rate(explainer, images: list[bytes], count: int) -> float:
    """Scans per second of `brat predict`'s batch path (read, decode, every check, no heatmap)
    over `count` files written from the bench images."""
    import tempfile

    from brat.inference.batch import score_scans

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i in range(count):
            paths.append(Path(folder) / f"{i:05d}.png")
            paths[-1].write_bytes(images[i % len(images)])
        for _ in score_scans(paths[:8], explainer):
            pass  # warm-up
        started = time.perf_counter()
        scored = sum(1 for _ in score_scans(paths, explainer))
        return scored / (time.perf_counter() - started)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _training_rate(classifier, steps: int) -> float:
    """Images per second of training steps (batch 32) for the model's own recipe (its
    configuration and frozen blocks)."""
    from dataclasses import replace

    import keras

    from brat.training.model import build_model, freeze_lowest_blocks
    from brat.training.train import loss_arguments

    recipe = classifier.meta.config
    config = replace(recipe.model, weights="none")
    model = build_model(config)
    freeze_lowest_blocks(model, recipe.frozen_blocks)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4), **loss_arguments(replace(recipe, model=config))
    )
    rng = np.random.default_rng(0)
    x = rng.random((32, config.image_size, config.image_size, 1), np.float32)
    y = rng.integers(0, 4, 32)
    if len(model.outputs) > 1:  # trained with a mask loss: a target map, summing to 1 per image
        where = rng.random((32, *model.outputs[1].shape[1:])).astype(np.float32)
        y = (y, where / where.sum(axis=(1, 2, 3), keepdims=True))
    model.train_on_batch(x, y)  # tracing
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * 32 / (time.perf_counter() - started)
