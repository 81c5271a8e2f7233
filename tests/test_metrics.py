"""ichlib.metrics: against scikit-learn and by hand; undefined where a split has one class."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ichlib.metrics import per_label_auc, weighted_log_loss


def test_per_label_auc_matches_sklearn_and_marks_undefined():
    rng = np.random.default_rng(0)
    y = (rng.random((50, 6)) > 0.6).astype(int)
    y[:, 1] = 0  # epidural absent from this split
    p = rng.random((50, 6))
    auc = per_label_auc(y, p)
    assert auc["any"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    assert np.isnan(auc["epidural"])


def test_weighted_log_loss_by_hand():
    y = np.array([[1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]])
    p = np.array([[0.8, 0.1, 0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])
    first = (2 * -np.log(0.8) + 4 * -np.log(0.9) + -np.log(0.7)) / 7
    second = (2 * -np.log(0.9) + 5 * -np.log(0.9)) / 7
    assert weighted_log_loss(y, p) == pytest.approx((first + second) / 2)
    assert np.isfinite(weighted_log_loss(y, 1 - y))  # certain and wrong: clipped, not infinite
