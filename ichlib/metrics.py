"""Scores computed from saved predictions, on top of scikit-learn (written by hand only where it has nothing).

- per-label and averaged (micro / macro) accuracy, F1, recall, precision and ROC AUC, at given thresholds;
- thresholds chosen per label on the validation split (maximum F1), to be applied unchanged to the test split;
- the RSNA competition's weighted log loss (any = 2);
- bootstrap confidence intervals that resample patients, not slices (slices of one head are not independent).

A label with a single class in a split has no AUC (and a label never predicted positive has no precision): the
tables show NaN there, which the chapters print as "undefined"; nothing raises.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_recall_curve, precision_score, recall_score, roc_auc_score

from .rsna import LABELS

RSNA_WEIGHTS = np.array([2.0, 1, 1, 1, 1, 1])


def per_label_auc(y_true: np.ndarray, y_prob: np.ndarray) -> pd.Series:
    """ROC AUC of each label; NaN where a split holds only one class of that label."""
    values = {}
    for j, label in enumerate(LABELS):
        values[label] = roc_auc_score(y_true[:, j], y_prob[:, j]) if len(np.unique(y_true[:, j])) == 2 else np.nan
    return pd.Series(values, name="AUC")


def weighted_log_loss(y_true: np.ndarray, y_prob: np.ndarray, weights=RSNA_WEIGHTS, eps: float = 1e-7) -> float:
    """The RSNA competition metric: per-label binary log loss, averaged with weights (any = 2), over images."""
    p = np.clip(np.asarray(y_prob, float), eps, 1 - eps)
    y = np.asarray(y_true, float)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float((bce * weights).sum(axis=1).mean() / np.sum(weights))


def choose_thresholds(y_true_val: np.ndarray, y_prob_val: np.ndarray) -> np.ndarray:
    """Per label, the probability threshold with the highest F1 on the validation split (0.5 where undefined).

    Takes the validation arrays only: the test split cannot leak into the choice.
    """
    thresholds = np.full(len(LABELS), 0.5)
    for j in range(len(LABELS)):
        if len(np.unique(y_true_val[:, j])) < 2:
            continue
        precision, recall, cut = precision_recall_curve(y_true_val[:, j], y_prob_val[:, j])
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)[:-1]
        thresholds[j] = cut[int(np.argmax(f1))]
    return thresholds


def scores(y_true: np.ndarray, y_prob: np.ndarray, thresholds=0.5) -> pd.DataFrame:
    """Accuracy, F1, recall, precision and AUC per label, then micro and macro averages over the six labels.

    ``micro`` pools every (image, label) decision, so it is dominated by the many negatives, as the paper's single
    summary numbers are; ``macro`` averages the labels' own scores, giving the rare subtypes equal say.
    """
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(y_prob) >= np.broadcast_to(thresholds, (len(LABELS),))).astype(int)
    rows = {}
    for j, label in enumerate(LABELS):
        t, p = y_true[:, j], y_pred[:, j]
        rows[label] = {"accuracy": accuracy_score(t, p),
                       "F1": f1_score(t, p, zero_division=np.nan),
                       "recall": recall_score(t, p, zero_division=np.nan),
                       "precision": precision_score(t, p, zero_division=np.nan),
                       "AUC": roc_auc_score(t, y_prob[:, j]) if len(np.unique(t)) == 2 else np.nan}
    table = pd.DataFrame(rows).T
    flat_t, flat_p = y_true.ravel(), y_pred.ravel()
    table.loc["micro"] = {"accuracy": accuracy_score(flat_t, flat_p),
                          "F1": f1_score(flat_t, flat_p, zero_division=np.nan),
                          "recall": recall_score(flat_t, flat_p, zero_division=np.nan),
                          "precision": precision_score(flat_t, flat_p, zero_division=np.nan),
                          "AUC": roc_auc_score(flat_t, np.asarray(y_prob).ravel()) if len(np.unique(flat_t)) == 2 else np.nan}
    table.loc["macro"] = table.loc[list(LABELS)].mean(skipna=True)
    return table


def bootstrap_ci(y_true: np.ndarray, y_prob: np.ndarray, patients, metric, n: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """A percentile confidence interval for ``metric(y_true, y_prob)`` by resampling whole patients.

    Args:
        y_true, y_prob: arrays with one row per image.
        patients: the patient of each row.
        metric: a function of (y_true, y_prob) returning a number (NaN draws, e.g. one class only, are dropped).
        n: bootstrap draws; seed: their generator's seed; level: the interval's coverage.
    """
    patients = np.asarray(patients)
    ids, inverse = np.unique(patients, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = np.concatenate([rows_of[k] for k in rng.integers(0, len(ids), len(ids))])
        value = metric(y_true[pick], y_prob[pick])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return (np.nan, np.nan)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
