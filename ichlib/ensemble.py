"""Combining models as the paper did (average, vote, weighted), searching every subset, and reading out studies.

``probs`` is always an array (models x images x 6 labels) of probabilities, in ``ichlib.labels.LABELS`` order.

- ``average``: the mean probability (the paper's Eq. 1).
- ``vote``: each model votes per label (probability >= its threshold); the ensemble says positive when at least
  half of the models do. With an even number of models a tie is called positive: in triage a missed bleed costs
  more than a second look. ``vote_share`` is the share of positive votes, a coarse score that an ROC curve can use.
- ``weighted``: the mean weighted by each model's accuracy (the paper's Eq. 3). The paper took the accuracies on
  its test split, which lets the test labels choose the ensemble; here they come from the validation split
  unless asked otherwise.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .metrics import RSNA_WEIGHTS
from .labels import ANY, LABELS

METHODS = ("average", "vote", "weighted")


def _check(probs) -> np.ndarray:
    probs = np.asarray(probs, float)
    if probs.ndim != 3 or probs.shape[2] != len(LABELS) or probs.shape[0] == 0:
        raise ValueError(f"probs must be (models, images, {len(LABELS)}), got shape {probs.shape}")
    return probs


def _cut(threshold, shape) -> np.ndarray:
    """A threshold (number, per label, or per model and label) broadcast to (models, images, 6)."""
    threshold = np.asarray(threshold, float)
    if threshold.ndim == 2:
        threshold = threshold[:, None, :]
    return np.broadcast_to(threshold, shape)


def average(probs) -> np.ndarray:
    """Mean probability over the models: (images, 6)."""
    return _check(probs).mean(axis=0)


def vote_share(probs, threshold=0.5) -> np.ndarray:
    """Share of models voting positive per image and label; ``threshold`` is a number, one per label, or one
    per model and label (models x 6)."""
    probs = _check(probs)
    return (probs >= _cut(threshold, probs.shape)).mean(axis=0)


def vote(probs, threshold=0.5) -> np.ndarray:
    """Majority vote per image and label, 0 or 1; a tie (an even number of models, split) is positive."""
    return (vote_share(probs, threshold) >= 0.5).astype(float)


def weighted(probs, weights) -> np.ndarray:
    """Probabilities averaged with one non-negative weight per model (normalised here)."""
    probs = _check(probs)
    weights = np.asarray(weights, float)
    if weights.shape != (probs.shape[0],) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"need one non-negative weight per model ({probs.shape[0]}), not all zero; got {weights}")
    return np.tensordot(weights / weights.sum(), probs, axes=1)


def accuracies(y_true, probs, threshold=0.5) -> np.ndarray:
    """Each model's accuracy over every (image, label) decision: the paper's weights."""
    probs = _check(probs)
    return ((probs >= threshold) == (np.asarray(y_true)[None] > 0)).mean(axis=(1, 2))


def combine(method: str, probs, weights=None, threshold=0.5) -> np.ndarray:
    """One of :data:`METHODS` by name; ``vote`` returns the vote share (a score; >= 0.5 is the decision)."""
    if method == "average":
        return average(probs)
    if method == "vote":
        return vote_share(probs, threshold)
    if method == "weighted":
        if weights is None:
            raise ValueError("the weighted ensemble needs weights (e.g. ensemble.accuracies on validation)")
        return weighted(probs, weights)
    raise ValueError(f"unknown ensemble method {method!r}; expected one of {METHODS}")


# ------------------------------------------------------------------------------------------- subset search
def _auc_rows(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (subsets x images) against one label ``y``, by ranks (ties averaged)."""
    pos = y > 0
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return np.full(len(scores), np.nan)
    ranks = rankdata(scores, axis=1)
    return (ranks[:, pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


SEARCH_METRICS = {
    "AUC any": "higher",
    "mean AUC": "higher",  # over the labels with both classes in the split
    "RSNA log loss": "lower",
}


def _score_subsets(y: np.ndarray, ens: np.ndarray, metric: str) -> np.ndarray:
    """``ens`` is (subsets, images, 6)."""
    if metric == "AUC any":
        return _auc_rows(y[:, ANY], ens[:, :, ANY])
    if metric == "mean AUC":
        per_label = np.stack([_auc_rows(y[:, j], ens[:, :, j]) for j in range(len(LABELS))], axis=1)
        return np.nanmean(per_label, axis=1) if np.isfinite(per_label).any() else per_label[:, ANY]
    if metric == "RSNA log loss":
        p = np.clip(ens, 1e-7, 1 - 1e-7)
        bce = -(y[None] * np.log(p) + (1 - y[None]) * np.log(1 - p))
        return (bce * RSNA_WEIGHTS).sum(axis=2).mean(axis=1) / RSNA_WEIGHTS.sum()
    raise ValueError(f"unknown search metric {metric!r}; expected one of {', '.join(SEARCH_METRICS)}")


def subsets(n_models: int) -> np.ndarray:
    """Every non-empty subset of ``n_models`` as a boolean mask (2^n - 1 rows), smallest subsets first."""
    masks = np.array(list(itertools.product([False, True], repeat=n_models)))[1:]
    return masks[np.argsort(masks.sum(axis=1), kind="stable")]


def search(probs, y_true, names, method: str = "average", metric: str = "AUC any", weights=None,
           threshold=0.5, chunk: int = 512) -> pd.DataFrame:
    """Score the ensemble of every subset of the models on one split, best first.

    Vectorised: each chunk of subsets is one matrix product (masks x models) @ (models x images*6), then the
    metric for all rows at once. 4,095 subsets of twelve models on a few hundred images take about a second.

    Args:
        probs: (models, images, 6) on the split used for choosing (validation).
        y_true: (images, 6).
        names: one name per model.
        method: ``average``, ``vote`` or ``weighted`` (with ``weights``, one per model).
        metric: a key of :data:`SEARCH_METRICS`.

    Returns:
        One row per subset: ``models`` (names joined by " + "), ``size``, the metric; sorted best first (ties:
        fewer models first), with the subset masks in ``.attrs["masks"]`` in the same order.
    """
    probs, y = _check(probs), np.asarray(y_true, float)
    if len(names) != probs.shape[0]:
        raise ValueError(f"{len(names)} names for {probs.shape[0]} models")
    if metric not in SEARCH_METRICS:
        raise ValueError(f"unknown search metric {metric!r}; expected one of {', '.join(SEARCH_METRICS)}")
    masks = subsets(probs.shape[0])
    if method == "average":
        mix = masks.astype(float)
    elif method == "weighted":
        if weights is None:
            raise ValueError("the weighted search needs weights")
        mix = masks * np.asarray(weights, float)[None]
    elif method == "vote":
        probs = (probs >= _cut(threshold, probs.shape)).astype(float)
        mix = masks.astype(float)
    else:
        raise ValueError(f"unknown ensemble method {method!r}; expected one of {METHODS}")
    mix = mix / mix.sum(axis=1, keepdims=True)
    flat = probs.reshape(probs.shape[0], -1)
    values = np.empty(len(masks))
    for start in range(0, len(masks), chunk):
        ens = (mix[start:start + chunk] @ flat).reshape(-1, *probs.shape[1:])
        values[start:start + chunk] = _score_subsets(y, ens, metric)
    key = values * (-1 if SEARCH_METRICS[metric] == "higher" else 1)
    key[np.isnan(key)] = np.inf  # undefined scores last
    order = np.lexsort((masks.sum(axis=1), key))
    table = pd.DataFrame({"models": [" + ".join(n for n, m in zip(names, row) if m) for row in masks[order]],
                          "size": masks[order].sum(axis=1), metric: values[order]})
    table.attrs["masks"] = masks[order]
    return table


# ------------------------------------------------------------------------------------------ study level
def study_level(ids, y_true, y_prob, study_of) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """A study is positive for a label if any of its slices is: the max over its slices, of truth and scores.

    Args:
        ids: image IDs of the rows; y_true, y_prob: (images, 6); study_of: a mapping (Series) image ID -> study.
    """
    study = pd.Series(ids).map(study_of)
    if study.isna().any():
        missing = list(pd.Series(ids)[study.isna()][:3])
        raise KeyError(f"no study known for image(s) {missing}")
    frame_t = pd.DataFrame(np.asarray(y_true), columns=LABELS).groupby(study.to_numpy()).max()
    frame_p = pd.DataFrame(np.asarray(y_prob), columns=LABELS).groupby(study.to_numpy()).max()
    return frame_t.index, frame_t.to_numpy(), frame_p.loc[frame_t.index].to_numpy()


def study_thresholds(ids, y_true, y_prob, study_of) -> np.ndarray:
    """Per label, the threshold for a *study's* decision, chosen on the given (validation) studies: each study
    read out as :func:`study_level` does (its highest slice), then ``ichlib.metrics.choose_thresholds``. The
    highest of many slices is higher than a typical slice, so a threshold chosen on single slices flags most
    normal studies; the results chapter and the app both decide studies with this one."""
    from .metrics import choose_thresholds

    _, truth, probs = study_level(ids, y_true, y_prob, study_of)
    return choose_thresholds(truth, probs)
