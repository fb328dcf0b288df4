"""Class-activation maps: where in the scan the model found the evidence for a class.

`Explainer.predict` runs the classifier on prepared slices and returns its logits, the maps of one
method and the pooled features the checks read, in one pass where the method allows. Methods:
"gradcam" (Selvaraju et al. 2017; on the last feature map it needs no gradients and runs under
ONNX Runtime), "gradcam++" and "scorecam" (Faster-Score-CAM) through tf-keras-vis, "layercam"
(Jiang et al. 2021) on a stride-8 layer, and "gated-layercam" (LayerCAM gated by Grad-CAM, each
summed with the mirror image's map: the app's default). Every grid map is upsampled bilinear and
centre-aligned, min-max normalised, and can be put back on the original image (`to_image_space`).
Why these methods, layers and choices, with their measurements: docs/explanations.md.
"""

from __future__ import annotations

import copy
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from brat.inference.classifier import Classifier
from brat.inference.layercam import layercam_function
from brat.inference.serving import (
    cached_graph,
    cached_onnx_heads,
    converted_graph,
    converted_onnx_heads,
    function_to_onnx,
    graph_key,
    onnx_runtime_wanted,
)
from brat.labels import METHODS
from brat.model_folder import MODEL_FILE
from brat.training.model import FEATURES_LAYER

# Channels Faster-Score-CAM keeps; 20 gives maps close to full Score-CAM at 1/60 of its cost.
SCORECAM_CHANNELS = 20
# LayerCAM's layer (stride 8), chosen by the pointing game on the brain-mri validation split
# (docs/explanations.md).
LAYERCAM_LAYER = "block_6_expand_relu"


@dataclass
class ClassMaps:
    """Logits and normalised class-activation maps for a batch of prepared slices."""

    logits: np.ndarray  # (n, classes)
    targets: np.ndarray  # (n,) class index each map explains
    maps: np.ndarray  # (n, S, S) float32 in [0, 1]
    cams: np.ndarray  # (n, h, w) the raw maps on the feature grid, before upsampling
    features: np.ndarray  # (n, d) the out-of-distribution check's features (`Classifier.features`)
    penultimate: np.ndarray  # (n, channels) the explained layer's spatial mean (by default the
    # last feature map's: the classifier's penultimate features, which the familiarity check reads)


class Explainer:
    """Computes class-activation maps for one classifier; build once, reuse for every image."""

    def __init__(
        self,
        classifier: Classifier,
        layer: str = FEATURES_LAYER,
        *,
        runtime: str | None = None,
        defer_conversion: bool = False,
    ) -> None:
        """`runtime` "tensorflow" keeps the forward pass in TensorFlow; None uses ONNX Runtime
        where it is installed (and $BRAT_RUNTIME is not "tensorflow"). With `defer_conversion`,
        a model not yet converted for ONNX Runtime serves from TensorFlow until
        `convert_in_background` has converted it (a few seconds)."""
        import keras

        self.classifier = classifier
        model = classifier.model
        self.layer = layer
        self._heads = keras.Model(
            model.inputs[0],
            [
                model.output,
                model.get_layer(layer).output,
                model.get_layer(classifier.features_layer).output,
            ],
        )
        # On the last feature map, under global average pooling and one dense layer, Grad-CAM
        # needs no gradients: d logit_c / d A_ijk = W_kc / (h w) everywhere, so its channel
        # weights are the dense weights of class c over h w (the CAM of Zhou et al. 2016). The
        # tests check this against the GradientTape version and tf-keras-vis.
        self._dense = model.get_layer("logits") if layer == FEATURES_LAYER else None
        graph = self._cam_graph if self._dense is not None else self._gradcam_graph
        self._gradcam = tf.function(graph, reduce_retracing=True)
        # LayerCAM's gradient spelt out as forward operations (`brat.inference.layercam`), with
        # the last feature map beside it (the mirror image's Grad-CAM needs nothing more).
        self._layercam_function = layercam_function(model, LAYERCAM_LAYER, FEATURES_LAYER)
        self._layercam = tf.function(self._layercam_function, reduce_retracing=True)
        self._library: dict[str, object] = {}
        # The same graphs under ONNX Runtime where available (`brat.inference.serving`), several
        # times faster on a CPU; the CAM's weighted sum then runs in NumPy.
        # LayerCAM's graph is converted when first needed (`brat predict` never needs it) or, with
        # `defer_conversion`, in the background with the heads.
        self._fast = self._fast_layercam = None
        self._unconverted = False
        self._onnx = self._dense is not None and runtime != "tensorflow" and onnx_runtime_wanted()
        self._convert_on_use = self._onnx and not defer_conversion
        if self._dense is not None:
            self._class_weights = np.asarray(self._dense.kernel, np.float32)  # (channels, classes)
        if self._onnx:
            self._fast = cached_onnx_heads(self._heads, self._model_file)
            self._fast_layercam = cached_graph(self._layercam_key)
            if self._fast is None and not defer_conversion:
                self._fast = converted_onnx_heads(self._heads, self._model_file)
            self._unconverted = defer_conversion and (
                self._fast is None or self._fast_layercam is None
            )

    @property
    def _model_file(self) -> Path:
        return self.classifier.path / MODEL_FILE

    def for_site(self, site: str | None) -> Explainer:
        """This explainer answering with site `site`'s calibration (`brat.inference.site`); the
        graphs are shared, so it costs no loading. Itself for None."""
        if site is None:
            return self
        from brat.inference.site import site_classifier

        explainer = copy.copy(self)
        explainer.classifier = site_classifier(self.classifier, site)
        return explainer

    @property
    def _layercam_key(self) -> str:
        size = self.classifier.image_size
        return graph_key(self._model_file, ["layercam", LAYERCAM_LAYER, FEATURES_LAYER, size])

    def _convert(self) -> None:
        """Convert the graphs not in the cache for ONNX Runtime (a few seconds each) and warm
        them; calls switch over in one assignment when a session is ready."""
        size = self.classifier.image_size
        image = np.zeros((1, size, size, 1), np.float32)
        if self._fast is None:
            fast = converted_onnx_heads(self._heads, self._model_file)
            if fast is not None:
                fast(image)  # its first call is the slow one
            self._fast = fast
        if self._fast is not None:
            self._convert_layercam()
            if self._fast_layercam is not None:
                self._fast_layercam(image, np.zeros(1, np.int32))

    def _convert_layercam(self) -> None:
        self._convert_on_use = False  # one attempt: a failure leaves LayerCAM on TensorFlow
        size = self.classifier.image_size
        spec = (
            tf.TensorSpec((None, size, size, 1), tf.float32, name="slice"),
            tf.TensorSpec((None,), tf.int32, name="target"),
        )
        self._fast_layercam = converted_graph(
            self._layercam_key, lambda: function_to_onnx(self._layercam_function, spec)
        )

    def convert_in_background(self) -> None:
        """Convert a deferred model for ONNX Runtime in a thread; calls meanwhile run on
        TensorFlow, and switch over when a session is ready."""
        if not self._unconverted:
            return
        self._unconverted = False
        threading.Thread(target=self._convert, name="onnx-conversion", daemon=True).start()

    @property
    def runtime(self) -> str:
        """What runs the forward pass of `predict`: "onnxruntime" or "tensorflow"."""
        return "onnxruntime" if self._fast is not None else "tensorflow"

    def _chosen(self, logits, targets):
        return tf.where(targets < 0, tf.argmax(logits, axis=1, output_type=tf.int32), targets)

    def _cam_graph(self, images, targets):
        logits, features, ood_features = self._heads(images, training=False)
        chosen = self._chosen(logits, targets)
        weights = tf.gather(tf.transpose(self._dense.kernel), chosen)  # (n, channels)
        weights = tf.cast(weights, features.dtype)
        area = tf.cast(tf.shape(features)[1] * tf.shape(features)[2], features.dtype)
        cam = tf.nn.relu(tf.einsum("nhwk,nk->nhw", features, weights) / area)
        return logits, chosen, cam, _pooled(ood_features), _pooled(features)

    def _fast_cam(self, images: np.ndarray, targets: np.ndarray):
        """`_cam_graph` with the forward pass under ONNX Runtime and the rest in NumPy."""
        logits, features, ood_features = self._fast(images)
        chosen = np.where(targets < 0, logits.argmax(axis=1), targets).astype(np.int32)
        pooled = ood_features.mean(axis=(1, 2)), features.mean(axis=(1, 2))
        return logits, chosen, self._class_cam(features, chosen), *pooled

    def _class_cam(self, features: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """Grad-CAM on the last feature maps, in closed form (see `__init__`), in NumPy."""
        weights = self._class_weights[:, chosen].T  # (n, channels)
        area = features.shape[1] * features.shape[2]
        cam = np.maximum(np.einsum("nhwk,nk->nhw", features, weights) / area, 0.0)
        return cam.astype(np.float32)

    def _gradcam_graph(self, images, targets):
        with tf.GradientTape() as tape:
            logits, features, ood_features = self._heads(images, training=False)
            chosen = self._chosen(logits, targets)
            score = tf.gather(logits, chosen, axis=1, batch_dims=1)
        gradients = tape.gradient(score, features)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1))
        return logits, chosen, cam, _pooled(ood_features), _pooled(features)

    def _fine(self, images: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(LayerCAM maps, last feature maps) of (n, S, S, 1) slices for their target classes."""
        targets = np.asarray(targets, np.int32)
        if self._fast_layercam is None and self._convert_on_use and self._fast is not None:
            self._convert_layercam()
        if self._fast_layercam is not None:
            return tuple(self._fast_layercam(images, targets))
        return tuple(t.numpy() for t in self._layercam(tf.constant(images), tf.constant(targets)))

    def forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logits, features, penultimate) of prepared slices (n, S, S) in [0, 1] with no map:
        `predict`'s forward pass alone, for batch scoring (`Classifier.checked` takes them)."""
        images = np.asarray(images, np.float32)[..., None]
        if self._fast is not None:
            logits, features, ood_features = self._fast(images)
        else:
            logits, features, ood_features = (
                t.numpy() for t in self._heads(images, training=False)
            )
        pooled = ood_features.mean(axis=(1, 2)), features.mean(axis=(1, 2))
        return np.asarray(logits, np.float64), *(np.asarray(p, np.float64) for p in pooled)

    def predict(
        self, images: np.ndarray, method: str = "gradcam", targets: np.ndarray | None = None
    ) -> ClassMaps:
        """Logits, maps and pooled features for prepared slices (n, S, S) in [0, 1]; a target of
        -1 (or None) explains the predicted class."""
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
        images = np.asarray(images, np.float32)[..., None]
        n, size = images.shape[0], images.shape[1]
        targets = np.full(n, -1, np.int32) if targets is None else np.asarray(targets, np.int32)
        logits, chosen, cams, pooled, penultimate = self._coarse(images, targets)
        if method == "layercam":
            cams = self._fine(images, chosen)[0]
        elif method == "gated-layercam":
            cams = self._mirrored_gated(images, chosen, cams)
        elif method != "gradcam":
            cams = self._library_maps(method, images, chosen)
        maps = np.stack([_normalise(upsample(cam, size)) for cam in cams])
        return ClassMaps(
            logits=logits.astype(np.float64),
            targets=chosen,
            maps=maps,
            cams=cams,
            features=np.asarray(pooled, np.float64),
            penultimate=np.asarray(penultimate, np.float64),
        )

    def _coarse(self, images: np.ndarray, targets: np.ndarray):
        """Logits, explained classes, Grad-CAM on the last feature map, the pooled features of the
        checks' layer and of the explained layer."""
        if self._fast is not None:
            return self._fast_cam(images, targets)
        return tuple(t.numpy() for t in self._gradcam(images, targets))

    def _mirrored_gated(self, images: np.ndarray, chosen: np.ndarray, coarse: np.ndarray):
        """Gated LayerCAM of the scans and their mirror images, both explaining `chosen`."""
        n = len(images)
        mirrored = images[:, :, ::-1]
        both = np.concatenate([images, mirrored])
        fine, features = self._fine(both, np.concatenate([chosen, chosen]))
        if self.layer == FEATURES_LAYER:  # the mirror's Grad-CAM from the maps already computed
            mirror = self._class_cam(features[n:], chosen)
        else:
            mirror = self._coarse(mirrored, chosen)[2]
        return _gated(fine[:n] + fine[n:, :, ::-1], coarse + mirror[:, :, ::-1])

    def _library_maps(self, method: str, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.scorecam import Scorecam

        if method not in self._library:
            kind = GradcamPlusPlus if method == "gradcam++" else Scorecam
            self._library[method] = kind(self.classifier.model, clone=False)
        tool = self._library[method]
        targets_tensor = tf.constant(targets)
        if method == "gradcam++":
            maps = tool(
                lambda logits: tf.gather(logits, targets_tensor, axis=1, batch_dims=1),
                images,
                penultimate_layer=self.layer,
                seek_penultimate_conv_layer=False,
                expand_cam=False,
                normalize_cam=False,
            )
        else:
            import keras

            was_enabled = keras.config.is_interactive_logging_enabled()
            keras.config.disable_interactive_logging()  # Score-CAM's predict() progress bars
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # input structure naming
                    maps = self._scorecam(tool, images, targets_tensor)
            finally:
                if was_enabled:
                    keras.config.enable_interactive_logging()
        return np.asarray(maps, np.float32)

    def _scorecam(self, tool, images, targets_tensor):
        return tool(
            lambda logits: tf.gather(tf.nn.softmax(logits), targets_tensor, axis=1, batch_dims=1),
            images,
            penultimate_layer=self.layer,
            seek_penultimate_conv_layer=False,
            max_N=SCORECAM_CHANNELS,
            expand_cam=False,
            normalize_cam=False,
        )


def _pooled(features):
    return tf.reduce_mean(features, axis=(1, 2))


def upsample(cam: np.ndarray, size: int) -> np.ndarray:
    """A feature-grid map to size x size, bilinear, each cell on the centre of its tile
    (tf-keras-vis' corner-aligned zoom shifts every cell towards the edges, by up to half a cell:
    16 px at 160 px input).

    Geometrically, MobileNetV2's stride-2 layers pad only the bottom and right, so a cell's
    receptive field is centred half a cell right of and below its tile's centre. Placing cells
    there lowered the pointing game on the brain-mri validation split from 30.0% to 21.9% (3.5x to
    3.1x heat in the masks); a quarter or half of that shift either way scored no better, so maps
    stay on the tile centres.
    """
    return cv2.resize(cam.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def _gated(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Fine maps gated by coarse ones of the same images: the product of the two, each min-max
    normalised, on the fine grid (the coarse map upsampled to it)."""
    size = fine.shape[1]
    return np.stack(
        [_normalise(f) * _normalise(upsample(c, size)) for f, c in zip(fine, coarse, strict=True)]
    )


def _normalise(cam: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1], as tf-keras-vis does; an all-equal map stays all zero."""
    low, high = float(cam.min()), float(cam.max())
    if high - low < 1e-12:
        return np.zeros_like(cam, np.float32)
    return ((cam - low) / (high - low)).astype(np.float32)


def to_image_space(
    heatmap: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]
) -> np.ndarray:
    """Place a map of the prepared input back on the decoded image of `shape`.

    `box` (top, bottom, left, right) is the square `prepare_slice` cropped, possibly reaching past
    the image's edges; the map is resized to it and the part inside the image kept.
    """
    top, bottom, left, right = box
    height, width = shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(bottom, height), min(right, width)
    canvas = np.zeros(shape, np.float32)
    if y1 <= y0 or x1 <= x0:
        return canvas
    # Sample the map only where the box meets the image: the same bilinear, centre-aligned
    # resampling as resizing the map to the whole box, without building that box (an elongated
    # image can make it billions of pixels).
    scale = heatmap.shape[0] / (bottom - top)
    to_map = np.array(
        [
            [scale, 0.0, (x0 - left + 0.5) * scale - 0.5],
            [0.0, scale, (y0 - top + 0.5) * scale - 0.5],
        ]
    )
    canvas[y0:y1, x0:x1] = cv2.warpAffine(
        heatmap.astype(np.float32),
        to_map,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.clip(canvas, 0.0, 1.0, out=canvas)
