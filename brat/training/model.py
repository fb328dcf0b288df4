"""The MobileNetV2 classifier: greyscale slice in, four class logits out.

TensorFlow is imported inside the functions, so importing brat stays fast for pages and commands
that need no model.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from brat.errors import BratError
from brat.labels import CLASSES

if TYPE_CHECKING:
    import keras

# Input sizes for which Keras publishes ImageNet MobileNetV2 weights.
IMAGENET_SIZES = (96, 128, 160, 192, 224)
# The backbone's last convolutional activation (stride 32), named as in keras.applications.
FEATURES_LAYER = "out_relu"
# The auxiliary tumour-mask output of a model trained with masks.
MASK_OUTPUT = "tumour_mask"
MASK_TARGETS = ("head", "evidence")
# MobileNetV2's inverted-residual blocks after its stem: keras.applications names the first
# "expanded_conv" and the others "block_1" ... "block_16".
BACKBONE_BLOCKS = 17
# Width multipliers Keras' MobileNetV2 accepts.
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


@dataclass(frozen=True)
class ModelConfig:
    # 160 px keeps a tumour of a few millimetres visible and trains ~2x faster than 224 on a CPU.
    image_size: int = 160
    # Width multiplier: 1.0 is the full MobileNetV2; 0.35 is ~4x cheaper.
    alpha: float = 1.0
    # Dropout before the classifier, as in keras-io's transfer-learning examples.
    dropout_rate: float = 0.2
    # "imagenet" (Keras' download), "none" (from scratch), a path to a backbone weights file, or
    # a brat model folder of the same size and width, whose every weight (classifier included)
    # the run starts from: fine-tuning a trained model on more data.
    weights: str = "imagenet"
    # Keras' default 0.99 kept validation accuracy at chance for several epochs from scratch.
    batchnorm_momentum: float = 0.9
    # Weight of an auxiliary loss that asks the last feature map to show where the tumour is
    # (from the dataset's tumour masks; images without a mask cost nothing); 0 trains on the
    # labels alone. 0.5 is the shipped recipe: heatmaps on the tumour far more often, same accuracy.
    mask_weight: float = 0.5
    # What the mask loss trains: "evidence" (shipped), the true class's evidence across cells
    # (`brat.training.evidence`); "head", a separate 1x1 convolution that reads the tumour's share
    # of each cell.
    mask_target: str = "evidence"

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"`image_size` must be >= 32. Received: image_size={self.image_size}")
        if self.alpha not in ALPHAS:
            raise ValueError(f"`alpha` must be one of {ALPHAS}. Received: alpha={self.alpha}")
        if self.mask_target not in MASK_TARGETS:
            raise ValueError(
                f"`mask_target` must be one of {MASK_TARGETS}. Received: {self.mask_target!r}"
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(
                f"`dropout_rate` must be in [0, 1). Received: dropout_rate={self.dropout_rate}"
            )


def build_model(
    config: ModelConfig,
    num_classes: int = len(CLASSES),
    frozen_blocks: int = 0,
    start: keras.Model | None = None,
) -> keras.Model:
    """A MobileNetV2 on a (size, size, 1) input in [0, 1], returning class logits.

    The backbone's layers are part of this model's own graph (not a nested model), so explanations
    can reach any of them by name (`FEATURES_LAYER` is the last convolutional activation). The stem
    and first `frozen_blocks` blocks are frozen when the backbone got pretrained weights; when it
    starts from scratch (no ImageNet weights to be had) every block trains, with a warning.
    """
    import keras

    size = config.image_size
    inputs = keras.Input((size, size, 1), name="slice")
    rgb = keras.layers.Concatenate(name="grey_to_rgb")([inputs, inputs, inputs])
    scaled = keras.layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(rgb)
    folder = trained_model_folder(config.weights)
    if folder and start is None:
        raise BratError(
            f"{folder} is a model folder: load its model (brat.training.train.starting_model) "
            "and pass it as `start`."
        )
    backbone, pretrained = _backbone(replace(config, weights="none") if folder else config, scaled)
    model = _classifier(config, num_classes, inputs, backbone.output)
    if folder:
        trained = {layer.name: layer for layer in start.layers}
        for layer in model.layers:  # by name: the training-only mask layers keep fresh weights
            if layer.weights and layer.name in trained:
                layer.set_weights(trained[layer.name].get_weights())
        pretrained = True
    if frozen_blocks and pretrained:
        freeze_lowest_blocks(model, frozen_blocks)
    elif frozen_blocks:
        print("warning: no pretrained weights to keep, so every block trains.", file=sys.stderr)
    return model


def _classifier(config: ModelConfig, num_classes: int, inputs, features) -> keras.Model:
    """Pooling, dropout and the class logits on the backbone's features, with the training-only
    mask output when the recipe has one."""
    import keras

    size = config.image_size
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    dropped = keras.layers.Dropout(config.dropout_rate, name="dropout")(pooled)
    name = f"brat_mobilenetv2_{config.alpha}_{size}"
    if config.mask_weight > 0 and config.mask_target == "evidence":
        from brat.training.evidence import ClassEvidence

        # Training-only: the dense weights of "logits" below, applied to the pooled features and
        # to every cell; `brat.training.train` copies them into the plain classifier it saves.
        logits, cells = ClassEvidence(num_classes, dtype="float32", name="logits")(
            [dropped, features]
        )
        cells = keras.layers.Identity(dtype="float32", name=MASK_OUTPUT)(cells)
        return keras.Model(inputs, [logits, cells], name=name)
    # float32 logits even under a mixed-precision policy, so the softmax stays accurate.
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(dropped)
    if config.mask_weight <= 0:
        return keras.Model(inputs, logits, name=name)
    # Training-only second output: a 1x1 convolution reads the tumour's share of each cell of the
    # last feature map. `classification_model` drops it after training.
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name=MASK_OUTPUT)(
        features
    )
    return keras.Model(inputs, [logits, mask], name=name)


def trained_model_folder(weights: str) -> Path | None:
    """The brat model folder `weights` names (a folder with model.keras and brat.json), else
    None (ImageNet, none, or a backbone weights file)."""
    if weights in {"imagenet", "none"}:
        return None
    path = Path(weights)
    return path if path.is_dir() and (path / "model.keras").is_file() else None


def freeze_lowest_blocks(model: keras.Model, blocks: int) -> None:
    """Stop training the backbone's stem and its first `blocks` inverted-residual blocks: their
    weights stay as loaded and their batch normalisation uses its stored statistics."""
    if blocks <= 0:
        return
    names = {layer.name for layer in model.layers}
    block = "expanded_conv" if blocks == 1 else f"block_{blocks - 1}"
    last = f"{block}_add" if f"{block}_add" in names else f"{block}_project_BN"
    backbone_started = False
    for layer in model.layers:
        backbone_started = backbone_started or layer.name == "Conv1"
        if backbone_started:
            layer.trainable = False
        if layer.name == last:
            return
    raise ValueError(f"The model has no layer {last!r}: is it a Keras MobileNetV2?")


def classification_model(model: keras.Model) -> keras.Model:
    """The logits-only model of a model built with an auxiliary mask output (else `model`)."""
    import keras

    if len(model.outputs) == 1:
        return model
    return keras.Model(model.inputs[0], model.outputs[0], name=model.name)


def _backbone(config: ModelConfig, scaled) -> tuple[keras.Model, bool]:
    """The backbone on `scaled`, and whether it starts from pretrained weights."""
    import keras

    shape = (config.image_size, config.image_size, 3)
    weights = config.weights
    backbone = None
    if weights == "imagenet":
        if config.image_size in IMAGENET_SIZES:
            try:
                backbone = keras.applications.MobileNetV2(
                    input_shape=shape,
                    input_tensor=scaled,
                    alpha=config.alpha,
                    include_top=False,
                    weights="imagenet",
                )
            except Exception as error:  # no network, a proxy, a broken cache ...
                reason = f"could not download the ImageNet weights ({type(error).__name__})"
        else:
            reason = f"Keras has no ImageNet weights for {config.image_size} px"
        if backbone is None:
            local = local_imagenet_weights(config.alpha)
            print(
                f"warning: {reason}; "
                + (
                    f"using the local copy {local}."
                    if local
                    else "training from scratch. Pass a local weights file with --weights PATH, "
                    "or put one in $BRAT_WEIGHTS_DIR, to fine-tune offline."
                ),
                file=sys.stderr,
            )
            weights = str(local) if local else "none"
    if backbone is None:
        backbone = keras.applications.MobileNetV2(
            input_shape=shape,
            input_tensor=scaled,
            alpha=config.alpha,
            include_top=False,
            weights=None,
        )
        if weights not in {"imagenet", "none"}:
            _load_backbone_weights(backbone, Path(weights))
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = config.batchnorm_momentum
    return backbone, weights != "none"


def local_imagenet_weights(alpha: float) -> Path | None:
    """A local ImageNet MobileNetV2 backbone file for `alpha`, if one is at hand.

    Looks in $BRAT_WEIGHTS_DIR for `mobilenet_v2_imagenet_{alpha}_224_no_top.h5` (the name the
    development weights use) or Keras' own file name, then in Keras' download cache.
    """
    names = (
        f"mobilenet_v2_imagenet_{alpha}_224_no_top.h5",
        f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5",
    )
    folders = [Path(os.environ["BRAT_WEIGHTS_DIR"])] if os.environ.get("BRAT_WEIGHTS_DIR") else []
    folders.append(Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models")
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _load_backbone_weights(backbone: keras.Model, path: Path) -> None:
    if not path.is_file():
        raise BratError(f"The weights file {path} does not exist.")
    try:
        backbone.load_weights(path)
    except Exception as error:
        raise BratError(
            f"The weights in {path} do not fit a MobileNetV2 backbone of this width "
            f"({type(error).__name__}: {str(error)[:120]})."
        ) from error
