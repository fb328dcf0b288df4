"""Adapting without labels: re-estimating batch-norm statistics on a batch from one source (AdaBN,
Li et al. 2016), measured on the images of a split from a source the model never saw, and on the
model's own validation split treated the same way (it must not hurt there).

    python -m benchmarks.batch_norm_adaptation DATA [DATA ...] --model DIR [--manifest M.csv] \\
        [--split test] [--source NAME] [--batch N]

Every batch-norm layer's moving mean and variance are replaced by the statistics of the given
images (all of them, or batches of --batch images each adapted on itself, as a study or a
clinic's batch would be), layer by layer from the input, and the same images are then classified.
Prints JSON: accuracy before and after, on the new source and on the validation split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from brat.data.folders import dataset_root
from brat.data.manifest import read_manifest, rows_for
from brat.data.prepared import prepare_images
from brat.inference.classifier import load_classifier
from brat.inference.serving import limit_blas_threads


def adapted_logits(classifier, images: np.ndarray) -> np.ndarray:
    """The classifier's logits on `images` after its batch-norm statistics were re-estimated on
    them (the model is put back as it was)."""
    import keras

    model = classifier.model
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.momentum, layer.trainable, layer.get_weights()) for layer in layers]
    try:
        for layer in layers:
            layer.trainable, layer.momentum = True, 0.0
        # One pass in training mode: every layer normalises with, and stores, the batch's own
        # statistics (momentum 0), each computed on the already adapted layers below it.
        model(images.astype(np.float32)[..., None] / 255.0, training=True)
        return classifier.logits(images)
    finally:
        for layer, (momentum, trainable, weights) in zip(layers, saved, strict=True):
            layer.momentum, layer.trainable = momentum, trainable
            layer.set_weights(weights)


def accuracy(logits: np.ndarray, truth: np.ndarray) -> float:
    return round(float((logits.argmax(axis=1) == truth).mean()), 4)


def measured(classifier, images: np.ndarray, labels: list[str], batch: int | None) -> dict:
    truth = np.array([classifier.classes.index(label) for label in labels])
    before = classifier.logits(images)
    step = batch or len(images)
    after = np.concatenate(
        [adapted_logits(classifier, images[i : i + step]) for i in range(0, len(images), step)]
    )
    return {"n": len(labels), "before": accuracy(before, truth), "after": accuracy(after, truth)}


def main() -> None:
    limit_blas_threads()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--source", help="only the images of this source (folder) of the split")
    parser.add_argument("--batch", type=int, help="adapt on batches of this many images")
    parser.add_argument("--validation-limit", type=int, default=600)
    args = parser.parse_args()
    root = dataset_root(args.data)
    classifier = load_classifier(args.model)
    rows = rows_for(read_manifest(args.manifest) if args.manifest else classifier.manifest, root)
    new = [
        r for r in rows if r.split == args.split and (not args.source or r.folder == args.source)
    ]
    val = [r for r in classifier.manifest_for(root) if r.split == "val"]
    val = [val[i] for i in np.random.default_rng(0).permutation(len(val))[: args.validation_limit]]
    size = classifier.image_size
    report = {"model": str(args.model), "batch": args.batch}
    for name, part in (("new source", new), ("validation split", val)):
        images = prepare_images(root, [r.path for r in part], size, progress=False)
        report[name] = measured(classifier, images, [r.label for r in part], args.batch)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
