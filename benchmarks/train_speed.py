"""How fast does the shipped recipe train on this machine, and what would make it faster? Prints
JSON.

    python -m benchmarks.train_speed [--steps N] [--candidates NAME,...] [--image-size S]

Each candidate runs in a fresh Python process (precision policies, XLA and thread pools are
process-wide), builds the shipped recipe's model (`TrainConfig()`: MobileNetV2 at 160 px with the
evidence loss, from scratch so nothing is downloaded) and trains it with `model.fit` on brat's own
input pipeline (`brat.training.pipeline.training_data`: shuffling, the standard augmentation off
the model's thread, the mask targets) over generated slices with tumour masks, as `brat train`
does. It reports images per second over the steps after the first three (tracing and warm-up).
Candidates (one change each against "baseline"):

- xla: the train step compiled with XLA (`jit_compile=True`), which fuses batch normalisation
  into the convolutions Keras 3 leaves unfused on a CPU;
- bf16: `mixed_bfloat16` precision;
- threads: TensorFlow's pools set to intra-op = cores, inter-op = 1;
- no-augment: the pipeline without augmentation (an upper bound for moving it off the critical
  path);
- batch-64: batches of 64;
- freeze-N: the backbone's stem and first N blocks not trained (`TrainConfig.frozen_blocks`):
  freeze-6 keeps every stride-8 block (0-5) as loaded, freeze-13 every block up to stride 16.

The machine's speed wanders by ~20% from minute to minute: compare candidates from one run, and
read the baseline measured beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

FROZEN = {"freeze-6": 6, "freeze-9": 9, "freeze-13": 13}
CANDIDATES = ("baseline", "xla", "bf16", "threads", "no-augment", "batch-64", *FROZEN)


def measure(candidate: str, steps: int, image_size: int) -> dict:
    """Images per second of `steps` training steps of one candidate, in this process."""
    from dataclasses import replace

    import keras
    import numpy as np
    import tensorflow as tf

    from brat.data.manifest import ManifestRow
    from brat.data.synthetic import generated_slice
    from brat.training.config import TrainConfig
    from brat.training.losses import loss_arguments
    from brat.training.model import build_model, freeze_lowest_blocks
    from brat.training.pipeline import training_data

    if candidate == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if candidate == "threads":
        tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    config = TrainConfig()
    config = replace(
        config,
        model=replace(config.model, weights="none", image_size=image_size),
        batch_size=64 if candidate == "batch-64" else config.batch_size,
        augment=candidate != "no-augment",
    )
    keras.utils.set_random_seed(0)
    model = build_model(config.model)
    freeze_lowest_blocks(model, FROZEN.get(candidate, 0))
    model.compile(
        optimizer=keras.optimizers.Adam(config.initial_learning_rate),
        jit_compile=candidate == "xla",
        **loss_arguments(config),
    )
    n = config.batch_size * (steps + 3)
    rng = np.random.default_rng(0)
    images = np.stack([generated_slice(i, image_size) for i in range(n)])
    masks = np.zeros_like(images)
    for i in range(n):  # a disc "tumour" on every image
        y, x = rng.integers(image_size // 4, 3 * image_size // 4, 2)
        yy, xx = np.ogrid[:image_size, :image_size]
        masks[i][(yy - y) ** 2 + (xx - x) ** 2 < (image_size // 10) ** 2] = 255
    labels = rng.integers(0, 4, n)
    labels[labels == 2] = 0  # no_tumor images have no mask to learn from

    rows = [
        ManifestRow(path=f"{i}", label="x", split="train", group="", mask="m") for i in range(n)
    ]
    data = training_data(images, labels, config, masks, rows)

    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    model.fit(data, epochs=1, steps_per_epoch=steps + 3, callbacks=[Clock()], verbose=0)
    timed = times[3:]
    seconds = timed[-1] - times[2]
    return {
        "candidate": candidate,
        "batch_size": config.batch_size,
        "image_size": image_size,
        "steps": len(timed),
        "images_per_second": round(config.batch_size * len(timed) / seconds, 2),
        "trainable_weights": len(model.trainable_weights),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per candidate")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: measure one
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.image_size)))
        return
    names = [name.strip() for name in args.candidates.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        raise SystemExit(f"unknown candidates {unknown}; choose from {', '.join(CANDIDATES)}")
    results = []
    for name in names:
        command = [sys.executable, "-m", "benchmarks.train_speed", "--one", name]
        command += ["--steps", str(args.steps), "--image-size", str(args.image_size)]
        started = time.perf_counter()
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        if done.returncode:
            results.append({"candidate": name, "error": done.stderr.strip().splitlines()[-1]})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        results[-1]["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    baseline = next((r for r in results if r["candidate"] == "baseline" and "error" not in r), None)
    if baseline:
        for result in results:
            if "images_per_second" in result:
                speed = result["images_per_second"] / baseline["images_per_second"]
                result["speed_up"] = round(speed, 2)
    print(json.dumps({"cpu_count": os.cpu_count(), "candidates": results}, indent=2))


if __name__ == "__main__":
    main()
