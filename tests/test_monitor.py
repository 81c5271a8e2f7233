"""ichlib.monitor: the curve's validation sample, the loss in NumPy, the curve files as read back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib.metrics import weighted_log_loss
from ichlib.monitor import CURVE_IMAGES, curve_sample, read_curve


def test_curve_sample_is_half_positive_fixed_and_sorted():
    positive = np.zeros(1000, bool)
    positive[::7] = True  # 143 positives
    rows = curve_sample(positive, seed=3)
    assert len(rows) == CURVE_IMAGES == len(set(rows)) and np.all(np.diff(rows) > 0)
    assert positive[rows].sum() == CURVE_IMAGES // 2
    np.testing.assert_array_equal(rows, curve_sample(positive, seed=3))
    assert not np.array_equal(rows, curve_sample(positive, seed=4))


def test_curve_sample_takes_every_positive_when_few_and_fills_with_negatives():
    positive = np.zeros(500, bool)
    positive[[3, 40, 41]] = True
    rows = curve_sample(positive, n=100)
    assert set(np.flatnonzero(positive)) <= set(rows) and len(rows) == 100
    few_negatives = ~np.zeros(50, bool)
    few_negatives[:5] = False
    rows = curve_sample(few_negatives, n=20)
    assert len(rows) == 20 and (~few_negatives[rows]).sum() <= 10
    assert len(curve_sample(np.array([True, False, True]), n=256)) == 3  # a split smaller than the sample


def test_the_monitors_numpy_loss_matches_the_keras_training_loss():
    from ichlib.losses import WeightedBCE

    rng = np.random.default_rng(0)
    truth = (rng.random((40, 6)) < 0.3).astype(np.float32)
    probs = rng.random((40, 6)).astype(np.float32)
    weights = (5.0, 1, 1, 1, 1, 1)
    keras_loss = float(np.asarray(WeightedBCE(weights)(truth, probs)))
    assert weighted_log_loss(truth, probs, weights) == pytest.approx(keras_loss, rel=1e-5)
    hand = -(truth * np.log(probs) + (1 - truth) * np.log(1 - probs)) @ np.array(weights) / 10
    assert weighted_log_loss(truth, probs, weights) == pytest.approx(hand.mean(), rel=1e-5)


def test_read_curve_keeps_the_last_row_of_a_step_recorded_twice(tmp_path):
    pd.DataFrame({"step": [1, 2, 3, 2, 3, 4], "epoch": 1, "loss": [0.9, 0.8, 0.7, 0.5, 0.4, 0.3]}).to_csv(
        tmp_path / "steps.csv", index=False)
    pd.DataFrame({"step": [2, 4], "epoch": 1, "val AUC any": [0.6, 0.7],
                  "scored on": ["validation sample", "validation split"]}).to_csv(tmp_path / "curve.csv", index=False)
    steps, curve = read_curve(tmp_path)
    assert steps["step"].tolist() == [1, 2, 3, 4] and steps["loss"].tolist() == [0.9, 0.5, 0.4, 0.3]
    assert curve["val AUC any"].tolist() == [0.6, 0.7]
