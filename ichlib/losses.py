"""Losses and the competition metric, in keras.ops so they run on any Keras backend.

- ``WeightedBCE``: binary cross-entropy per label, averaged with weights. Equal weights give the baseline's plain
  binary cross-entropy; the paper's optimised variant weights ``any`` 5 and each subtype 1.
- ``RSNALogLoss``: the RSNA 2019 competition metric, the same weighted average with ``any`` = 2, probabilities
  clipped away from 0 and 1.
"""

from __future__ import annotations

import keras
from keras import ops

from .metrics import RSNA_WEIGHTS as METRIC_WEIGHTS
from .labels import LABELS

BASELINE_WEIGHTS = (1.0,) * len(LABELS)
OPTIMISED_WEIGHTS = (5.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # any = 5
RSNA_WEIGHTS = tuple(float(w) for w in METRIC_WEIGHTS)  # any = 2, as in ichlib.metrics
EPS = 1e-7


def weighted_bce(y_true, y_prob, weights=BASELINE_WEIGHTS, eps: float = EPS):
    """Per-sample weighted mean over the labels of the binary cross-entropy (a tensor of shape (batch,))."""
    y_true = ops.cast(y_true, "float32")
    p = ops.clip(ops.cast(y_prob, "float32"), eps, 1 - eps)
    bce = -(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
    w = ops.convert_to_tensor(weights, dtype="float32")
    return ops.sum(bce * w, axis=-1) / ops.sum(w)


@keras.saving.register_keras_serializable(package="ichlib")
class WeightedBCE(keras.losses.Loss):
    """Binary cross-entropy over the six labels, weighted per label (see module doc)."""

    def __init__(self, weights=BASELINE_WEIGHTS, name: str = "weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        if len(weights) != len(LABELS):
            raise ValueError(f"one weight per label ({len(LABELS)}) is needed, got {len(weights)}")
        self.weights = tuple(float(w) for w in weights)

    def call(self, y_true, y_pred):
        return weighted_bce(y_true, y_pred, self.weights)

    def get_config(self):
        return {**super().get_config(), "weights": list(self.weights)}


@keras.saving.register_keras_serializable(package="ichlib")
class RSNALogLoss(keras.metrics.MeanMetricWrapper):
    """The RSNA competition's weighted multi-label log loss (any = 2), as a Keras metric."""

    def __init__(self, name: str = "rsna_log_loss", **kwargs):
        kwargs.pop("fn", None)
        super().__init__(fn=_rsna, name=name, **kwargs)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def _rsna(y_true, y_pred):
    return weighted_bce(y_true, y_pred, RSNA_WEIGHTS)
