"""Class-activation maps: shapes, ranges, alignment, equivalence with tf-keras-vis, rendering."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from brat.inference.classifier import load_classifier
from brat.inference.explain import METHODS, Explainer, to_image_space
from brat.inference.render import hottest_region, overlay, png_bytes, side_by_side
from brat.labels import SHOWN_METHOD
from brat.settings import SHIPPED_MODEL
from tests.synthetic import make_slice

SIZE = 160  # the shipped model's input size


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    """The shipped model: an untrained network has all-zero maps, which would prove nothing."""
    explainer = Explainer(load_classifier(SHIPPED_MODEL))
    assert explainer.classifier.image_size == SIZE
    return explainer


def slices(n: int) -> np.ndarray:
    return np.stack([make_slice(i, size=SIZE) for i in range(n)]).astype(np.float32) / 255.0


@pytest.mark.parametrize("method", METHODS)
def test_maps_have_the_input_size_and_lie_in_0_1(explainer, method) -> None:
    result = explainer.predict(slices(2), method, np.array([0, 3]))
    assert result.maps.shape == (2, SIZE, SIZE) and result.maps.dtype == np.float32
    assert result.maps.min() >= 0.0 and result.maps.max() <= 1.0
    assert result.targets.tolist() == [0, 3]
    assert result.logits.shape == (2, 4)


def test_the_fast_gradcam_equals_tf_keras_vis(explainer) -> None:
    """The fused function's Grad-CAM equals tf-keras-vis' on the feature grid. Upsampling then
    differs on purpose: ours is centre-aligned (see `upsample`), tf-keras-vis' zoom is
    corner-aligned, which moves every cell towards the image's edges."""
    from tf_keras_vis.gradcam import Gradcam

    images = slices(3)
    # The predicted classes: another class's evidence can be negative in every cell, and a map
    # that ReLU leaves all zero would compare nothing.
    ours = explainer.predict(images, "gradcam")
    targets = ours.targets.tolist()
    raw = Gradcam(explainer.classifier.model, clone=False)(
        lambda logits: tuple(logits[i, c] for i, c in enumerate(targets)),
        images[..., None],
        penultimate_layer="out_relu",
        seek_penultimate_conv_layer=False,
        expand_cam=False,
        normalize_cam=False,
    )
    for cam, theirs, heatmap in zip(ours.cams, np.asarray(raw), ours.maps, strict=True):
        assert theirs.std() > 0.05 * theirs.max(), "a flat map proves nothing"
        assert np.corrcoef(cam.ravel(), theirs.ravel())[0, 1] >= 0.9999
        assert np.allclose(cam, theirs, rtol=1e-3, atol=1e-4 * float(theirs.max()))
        expected = cv2.resize(theirs, heatmap.shape[::-1], interpolation=cv2.INTER_LINEAR)
        assert np.corrcoef(heatmap.ravel(), expected.ravel())[0, 1] >= 0.9999


def test_maps_are_centred_on_their_feature_cells() -> None:
    """A single hot cell of a 5 x 5 grid lands on that cell's centre at 160 px."""
    from brat.inference.explain import upsample

    cam = np.zeros((5, 5), np.float32)
    cam[1, 3] = 1.0
    peak = np.unravel_index(np.argmax(upsample(cam, 160)), (160, 160))
    assert abs(peak[0] - 47.5) <= 1 and abs(peak[1] - 111.5) <= 1


def test_no_target_explains_the_predicted_class(explainer) -> None:
    result = explainer.predict(slices(3), "gradcam")
    assert result.targets.tolist() == result.logits.argmax(axis=1).tolist()


def test_to_image_space_undoes_crop_and_padding() -> None:
    heatmap = np.zeros((10, 10), np.float32)
    heatmap[0, 0] = heatmap[9, 9] = 1.0
    # A square box that reaches 5 px past the top and left edges of a 30 x 40 image.
    placed = to_image_space(heatmap, (-5, 25, -5, 25), (30, 40))
    assert placed.shape == (30, 40)
    assert placed[:, 25:].max() == 0.0 and placed[25:, :].max() == 0.0
    assert np.unravel_index(placed.argmax(), placed.shape) in {(22, 22), (23, 23), (24, 24)}


def test_rendering_an_overlay_panel_and_png() -> None:
    pixels = make_slice(0, size=96) / 255.0
    heatmap = np.zeros((96, 96), np.float32)
    heatmap[40:60, 50:70] = 1.0
    region = hottest_region(heatmap)
    assert region[50, 60] and not region[10, 10]
    coloured = overlay(pixels, heatmap, opacity=0.5)
    assert coloured.shape == (96, 96, 3) and coloured.dtype == np.uint8
    assert np.array_equal(
        overlay(pixels, heatmap, opacity=0.0, outline=False)[..., 0],
        np.round(pixels * 255).astype(np.uint8),
    )
    panel = side_by_side(pixels, coloured)
    assert panel.shape == (96, 200, 3)
    png = Image.open(io.BytesIO(png_bytes(panel, "glioma_tumor 0.91")))
    assert png.format == "PNG" and png.width == 200 and png.height > 96
    with pytest.raises(ValueError, match="opacity"):
        overlay(pixels, heatmap, opacity=1.5)


def test_the_compiled_layercam_equals_tf_keras_vis(explainer) -> None:
    """LayerCAM runs as one compiled function; on its 20 x 20 grid it equals tf-keras-vis'."""
    from tf_keras_vis.layercam import Layercam

    from brat.inference.explain import LAYERCAM_LAYER

    images = slices(3)
    ours = explainer.predict(images, "layercam", np.array([0, 1, 3]))
    raw = Layercam(explainer.classifier.model, clone=False)(
        lambda logits: (logits[0, 0], logits[1, 1], logits[2, 3]),
        images[..., None],
        penultimate_layer=LAYERCAM_LAYER,
        seek_penultimate_conv_layer=False,
        expand_cam=False,
        normalize_cam=False,
    )
    for cam, theirs in zip(ours.cams, np.asarray(raw), strict=True):
        assert cam.shape == (SIZE // 8, SIZE // 8)
        assert theirs.std() > 0.05 * theirs.max(), "a flat map proves nothing"
        assert np.corrcoef(cam.ravel(), theirs.ravel())[0, 1] >= 0.9999


def test_gated_layercam_is_layercam_times_gradcam_of_the_scan_and_its_mirror(explainer) -> None:
    from brat.inference.explain import _normalise, upsample

    images = slices(3)
    gated = explainer.predict(images, "gated-layercam", np.array([0, -1, 3]))
    # The mirror image explains the class explained on the scan, even where that was predicted.
    targets = gated.targets
    assert targets[0] == 0 and targets[2] == 3
    fine, coarse = (explainer.predict(images, m, targets).cams for m in ("layercam", "gradcam"))
    mirrored = images[:, :, ::-1]
    fine_m, coarse_m = (
        explainer.predict(mirrored, m, targets).cams for m in ("layercam", "gradcam")
    )
    for f, fm, c, cm, g in zip(fine, fine_m, coarse, coarse_m, gated.cams, strict=True):
        assert g.shape == f.shape == (SIZE // 8, SIZE // 8) and c.shape == (SIZE // 32, SIZE // 32)
        f, c = f + fm[:, ::-1], c + cm[:, ::-1]
        assert not np.allclose(fm[:, ::-1], fm), "a symmetric map proves nothing"
        assert np.allclose(g, _normalise(f) * _normalise(upsample(c, SIZE // 8)), atol=1e-5)
        # The gate keeps LayerCAM's detail only where Grad-CAM puts the class's evidence.
        assert np.all(g <= _normalise(f) + 1e-6)


def test_the_forward_only_cam_equals_the_gradient_version(explainer) -> None:
    """Under global average pooling and one dense layer, Grad-CAM on the last feature map is the
    class-weighted sum of the maps: the fast path skips the backward pass."""
    assert explainer._dense is not None  # the shipped model takes the forward-only path
    images, targets = slices(4), np.array([0, 1, 2, -1])
    fast = explainer.predict(images, "gradcam", targets)
    taped = [t.numpy() for t in explainer._gradcam_graph(images[..., None], targets)]
    assert fast.targets.tolist() == taped[1].tolist()
    assert np.allclose(fast.cams, taped[2], rtol=1e-4, atol=1e-6 * float(taped[2].max()))


def test_onnx_runtime_gives_the_tensorflow_outputs(explainer, monkeypatch) -> None:
    """The served forward pass (ONNX Runtime) against the same heads in TensorFlow."""
    assert explainer.runtime == "onnxruntime"
    monkeypatch.setenv("BRAT_RUNTIME", "tensorflow")
    reference = Explainer(explainer.classifier)
    assert reference.runtime == "tensorflow"
    images, targets = slices(4), np.array([0, 1, 2, -1])
    for method in ("gradcam", "gradcam++"):
        fast, slow = (e.predict(images, method, targets) for e in (explainer, reference))
        assert fast.targets.tolist() == slow.targets.tolist()
        assert np.allclose(fast.logits, slow.logits, atol=1e-4)
        assert np.allclose(fast.features, slow.features, atol=1e-4)
        assert np.allclose(fast.cams, slow.cams, atol=1e-4 * float(slow.cams.max()))
        assert np.abs(fast.maps - slow.maps).max() < 1e-3
    # The app's default map: both of its gradients' graphs under ONNX Runtime.
    fast, slow = (e.predict(images, SHOWN_METHOD, targets) for e in (explainer, reference))
    assert explainer._fast_layercam is not None and reference._fast_layercam is None
    assert fast.targets.tolist() == slow.targets.tolist()
    assert np.abs(fast.maps - slow.maps).max() < 2e-3


def test_to_image_space_samples_only_the_image_part_of_the_box() -> None:
    """Same as resizing the map to the whole box and cropping it, without building the box: a
    64 x 65,344 px image (found by the fuzz test) once made a 65,344-px square, 17 GB."""
    import tracemalloc

    heatmap = cv2.resize(np.random.default_rng(0).random((5, 5)).astype(np.float32), (160, 160))
    box, shape = (-30, 450, 0, 480), (420, 480)
    whole = cv2.resize(heatmap, (480, 480), interpolation=cv2.INTER_LINEAR)[30:450]
    assert np.allclose(to_image_space(heatmap, box, shape), np.clip(whole, 0, 1), atol=1e-5)

    tracemalloc.start()
    tall = to_image_space(heatmap, (0, 65_344, -32_640, 32_704), (65_344, 64))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert tall.shape == (65_344, 64) and tall.max() > 0
    assert peak < 100 * 1024 * 1024


def test_overlapping_calls_get_the_outputs_of_one_call(explainer) -> None:
    """A lone call runs on every core, overlapping ones on one thread each: same outputs."""
    from concurrent.futures import ThreadPoolExecutor

    heads = explainer._fast
    images = [slices(3)[i : i + 1, ..., None] for i in range(3)] * 4
    alone = [heads(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(heads, images))
    for first, second in zip(alone, together, strict=True):
        for a, b in zip(first, second, strict=True):
            assert np.allclose(a, b, atol=1e-5 * max(1.0, float(np.abs(a).max())))


def test_layercam_written_out_equals_automatic_differentiation(explainer) -> None:
    """`brat.inference.layercam` spells out LayerCAM's gradient; TensorFlow's GradientTape gives
    the same maps, in TensorFlow to float rounding and under ONNX Runtime to within 1e-3 once
    normalised: it fuses and reorders the forward arithmetic, and an activation that lands on the
    other side of a ReLU6 bound by a rounding error opens or closes a path for the gradient (the
    pointing game on the test split is unchanged: docs/performance.md)."""
    import keras
    import tensorflow as tf

    from brat.inference.explain import LAYERCAM_LAYER, _normalise

    model = explainer.classifier.model
    fine = keras.Model(model.inputs[0], [model.output, model.get_layer(LAYERCAM_LAYER).output])
    images = slices(4)[..., None]
    targets = np.array([0, 1, 2, 3], np.int32)
    with tf.GradientTape() as tape:
        logits, features = fine(images, training=False)
        score = tf.gather(logits, targets, axis=1, batch_dims=1)
    gradients = tape.gradient(score, features)
    expected = tf.nn.relu(tf.reduce_sum(features * tf.nn.relu(gradients), axis=-1)).numpy()

    in_tensorflow = Explainer(explainer.classifier, runtime="tensorflow")
    assert in_tensorflow.runtime == "tensorflow" and explainer.runtime == "onnxruntime"
    written_out = in_tensorflow.predict(images[..., 0], "layercam", targets).cams
    np.testing.assert_allclose(written_out, expected, atol=1e-5 * expected.max())
    onnx = explainer.predict(images[..., 0], "layercam", targets).cams
    for ours, theirs in zip(onnx, expected, strict=True):
        assert np.abs(_normalise(ours) - _normalise(theirs)).max() <= 1e-3


def test_a_deferred_conversion_switches_to_onnx_runtime_in_the_background(
    explainer, tmp_path, monkeypatch
) -> None:
    """The app's first start: nothing cached, calls run on TensorFlow while a thread converts
    and warms both graphs, then they switch over."""
    import threading

    monkeypatch.setenv("BRAT_CACHE_DIR", str(tmp_path))  # an empty cache
    deferred = Explainer(explainer.classifier, defer_conversion=True)
    assert deferred.runtime == "tensorflow" and deferred._fast_layercam is None
    deferred.convert_in_background()
    (thread,) = [t for t in threading.enumerate() if t.name == "onnx-conversion"]
    thread.join(timeout=300)
    assert deferred.runtime == "onnxruntime" and deferred._fast_layercam is not None
    images = slices(2)
    ours, theirs = (e.predict(images, SHOWN_METHOD) for e in (deferred, explainer))
    assert np.abs(ours.maps - theirs.maps).max() < 2e-3
