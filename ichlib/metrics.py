"""Scores computed from saved predictions, on top of scikit-learn (more arrives with the ensembles chapter)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .rsna import LABELS

RSNA_WEIGHTS = np.array([2.0, 1, 1, 1, 1, 1])


def per_label_auc(y_true: np.ndarray, y_prob: np.ndarray) -> pd.Series:
    """ROC AUC of each label; NaN, shown as "undefined", where a split holds only one class of that label."""
    values = {}
    for j, label in enumerate(LABELS):
        classes = np.unique(y_true[:, j])
        values[label] = roc_auc_score(y_true[:, j], y_prob[:, j]) if len(classes) == 2 else np.nan
    return pd.Series(values, name="AUC")


def weighted_log_loss(y_true: np.ndarray, y_prob: np.ndarray, weights=RSNA_WEIGHTS, eps: float = 1e-7) -> float:
    """The RSNA competition metric: per-label binary log loss, averaged with weights (any = 2), over images."""
    p = np.clip(np.asarray(y_prob, float), eps, 1 - eps)
    y = np.asarray(y_true, float)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float((bce * weights).sum(axis=1).mean() / np.sum(weights))
