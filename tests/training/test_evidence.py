"""The evidence loss: the per-cell logits it trains, and its value on known maps."""

from __future__ import annotations

import numpy as np

from brat.training.evidence import ClassEvidence, evidence_loss


def test_the_image_logits_are_the_mean_of_the_cell_logits() -> None:
    """What the loss relies on: under average pooling, cells and image share one dense layer."""
    features = np.random.default_rng(0).random((2, 5, 5, 8)).astype(np.float32)
    layer = ClassEvidence(4)
    logits, cells = layer([features.mean(axis=(1, 2)), features])
    assert cells.shape == (2, 5, 5, 4)
    assert np.allclose(np.asarray(cells).mean(axis=(1, 2)), np.asarray(logits), atol=1e-5)


def test_the_loss_is_the_cross_entropy_over_cells_of_the_true_class() -> None:
    share = np.zeros((1, 5, 5, 4), np.float32)
    share[0, 1, 3, 2] = 0.75  # the tumour, in the true class's channel (class 2)
    share[0, 1, 4, 2] = 0.25
    on_tumour = np.zeros((1, 5, 5, 4), np.float32)
    on_tumour[0, 1, 3, 2] = 4.0
    elsewhere = np.zeros((1, 5, 5, 4), np.float32)
    elsewhere[0, 4, 0, 2] = 4.0
    elsewhere[0, 1, 3, 1] = 9.0  # another class's evidence on the tumour does not count

    def expected(cells):
        log_softmax = cells[0, ..., 2] - np.log(np.exp(cells[0, ..., 2]).sum())
        return -(share[0, ..., 2] * log_softmax).sum()

    low, high = (float(np.asarray(evidence_loss(share, c))[0]) for c in (on_tumour, elsewhere))
    assert np.isclose(low, expected(on_tumour), rtol=1e-5)
    assert np.isclose(high, expected(elsewhere), rtol=1e-5)
    assert low < high
    assert float(np.asarray(evidence_loss(np.zeros_like(share), elsewhere))[0]) == 0.0
