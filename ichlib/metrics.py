"""Scores computed from saved predictions, on top of scikit-learn (written by hand only where it has nothing).

- per-label and averaged (micro / macro) accuracy, F1, recall, precision and ROC AUC, at given thresholds;
- thresholds chosen per label on the validation split (maximum F1), to be applied unchanged to the test split;
- the RSNA competition's weighted log loss (any = 2);
- bootstrap confidence intervals that resample patients, not slices (slices of one head are not independent);
- the level-matched AUC: each positive compared only with the negatives of its own stratum (the slice's level
  in its series, ``ichlib.level.slice_levels``), so a score that knows only the level gets exactly 0.5.

A label with a single class in a split has no AUC (and a label never predicted positive has no precision): the
tables show NaN there, which the chapters print as "undefined"; nothing raises.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, f1_score, multilabel_confusion_matrix, precision_recall_curve,
                             precision_score, recall_score, roc_auc_score, roc_curve)

from .labels import ANY, LABELS, SUBTYPES

RSNA_WEIGHTS = np.array([2.0, 1, 1, 1, 1, 1])


def auc_or_nan(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """ROC AUC of one label; NaN where only one class is present (the AUC is undefined there)."""
    return float(roc_auc_score(y_true, y_prob)) if len(np.unique(y_true)) == 2 else np.nan


def per_label_auc(y_true: np.ndarray, y_prob: np.ndarray) -> pd.Series:
    """ROC AUC of each label; NaN where a split holds only one class of that label."""
    return pd.Series({label: auc_or_nan(y_true[:, j], y_prob[:, j]) for j, label in enumerate(LABELS)}, name="AUC")


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


def flags(y_prob: np.ndarray, thresholds=0.5, hierarchy: bool = True) -> np.ndarray:
    """The decisions (bool, images x 6) at per-label thresholds.

    With ``hierarchy`` (the app's and the read-out's rule) a subtype is flagged only where `any` is flagged too:
    `any` is the union of the subtypes, and thresholds chosen per label would otherwise say "subarachnoid, but no
    bleed" (a low subtype threshold beside a high `any` one). The `any` decision and every score are untouched,
    so the rule costs no `any` AUC; it can only remove subtype flags. Without it each label is decided alone, as
    the paper's tables were.
    """
    y_prob = np.asarray(y_prob)
    decided = y_prob >= np.broadcast_to(thresholds, (len(LABELS),))
    if hierarchy:
        columns = [LABELS.index(s) for s in SUBTYPES]
        decided[:, columns] &= decided[:, [ANY]]
    return decided


def scores(y_true: np.ndarray, y_prob: np.ndarray, thresholds=0.5, hierarchy: bool = False) -> pd.DataFrame:
    """Accuracy, F1, recall, precision and AUC per label, then micro and macro averages over the six labels.

    ``micro`` pools every (image, label) decision, so it is dominated by the many negatives, as the paper's single
    summary numbers are; ``macro`` averages the labels' own scores, giving the rare subtypes equal say. The
    decisions are :func:`flags` (``hierarchy``: subtypes gated by `any`).
    """
    y_true = np.asarray(y_true).astype(int)
    y_pred = flags(y_prob, thresholds, hierarchy).astype(int)
    rows = {}
    for j, label in enumerate(LABELS):
        t, p = y_true[:, j], y_pred[:, j]
        rows[label] = {"accuracy": accuracy_score(t, p),
                       "F1": f1_score(t, p, zero_division=np.nan),
                       "recall": recall_score(t, p, zero_division=np.nan),
                       "precision": precision_score(t, p, zero_division=np.nan),
                       "AUC": auc_or_nan(t, y_prob[:, j])}
    table = pd.DataFrame(rows).T
    flat_t, flat_p = y_true.ravel(), y_pred.ravel()
    table.loc["micro"] = {"accuracy": accuracy_score(flat_t, flat_p),
                          "F1": f1_score(flat_t, flat_p, zero_division=np.nan),
                          "recall": recall_score(flat_t, flat_p, zero_division=np.nan),
                          "precision": precision_score(flat_t, flat_p, zero_division=np.nan),
                          "AUC": auc_or_nan(flat_t, np.asarray(y_prob).ravel())}
    table.loc["macro"] = table.loc[list(LABELS)].mean(skipna=True)
    return table


def evaluate(y_val: np.ndarray, p_val: np.ndarray, y_test: np.ndarray, p_test: np.ndarray) -> dict:
    """Thresholds chosen on validation (max F1 per label), then the test split scored at them and at 0.5.

    Returns ``{"thresholds": Series, "at validation thresholds": table, "at 0.5": table}``; the tables are
    :func:`scores` output. The test arrays are used for scoring only.
    """
    thresholds = choose_thresholds(y_val, p_val)
    return {"thresholds": pd.Series(thresholds, index=list(LABELS), name="threshold"),
            "at validation thresholds": scores(y_test, p_test, thresholds),
            "at 0.5": scores(y_test, p_test, 0.5)}


def roc_curves(y_true: np.ndarray, y_prob: np.ndarray, labels=LABELS) -> dict[str, tuple]:
    """``{label: (false positive rates, true positive rates, AUC)}`` for the labels with both classes."""
    curves = {}
    for j, label in enumerate(LABELS):
        if label in labels and len(np.unique(y_true[:, j])) == 2:
            fpr, tpr, _ = roc_curve(y_true[:, j], y_prob[:, j])
            curves[label] = (fpr, tpr, roc_auc_score(y_true[:, j], y_prob[:, j]))
    return curves


def micro_roc(y_true: np.ndarray, y_prob: np.ndarray) -> tuple | None:
    """(false positive rates, true positive rates, AUC) over every (image, label) pair pooled: the curve whose
    area is the ``micro`` AUC of :func:`scores`. None where the split has one class only."""
    t, p = np.asarray(y_true).ravel(), np.asarray(y_prob).ravel()
    if len(np.unique(t)) < 2:
        return None
    fpr, tpr, _ = roc_curve(t, p)
    return fpr, tpr, roc_auc_score(t, p)


def confusion(y_true: np.ndarray, y_prob: np.ndarray, thresholds=0.5) -> pd.DataFrame:
    """True / false positives and negatives per label at the thresholds."""
    y_pred = (np.asarray(y_prob) >= np.broadcast_to(thresholds, (len(LABELS),))).astype(int)
    cm = multilabel_confusion_matrix(np.asarray(y_true).astype(int), y_pred)
    return pd.DataFrame({"TN": cm[:, 0, 0], "FP": cm[:, 0, 1], "FN": cm[:, 1, 0], "TP": cm[:, 1, 1]},
                        index=list(LABELS))


def bootstrap_ci(y_true: np.ndarray, y_prob: np.ndarray, patients, metric, n: int = 1000, seed: int = 0,
                 level: float = 0.95):
    """A percentile confidence interval for ``metric(y_true, y_prob)`` by resampling whole patients.

    Args:
        y_true, y_prob: arrays with one row per image.
        patients: the patient of each row.
        metric: a function of (y_true, y_prob) returning a number, or an array of numbers (one interval each);
            NaN draws (e.g. one class only) are dropped. ``auc_or_nan`` on 1-D arrays takes a vectorised path
            (:func:`bootstrap_aucs`, the same draws; ``benchmarks/bench_bootstrap.py`` prints the ratio).
        n: bootstrap draws; seed: their generator's seed; level: the interval's coverage.

    Returns:
        ``(low, high)``: floats for a number, arrays for an array (NaN where no draw was defined).
    """
    if metric is auc_or_nan and np.ndim(y_true) == 1:
        return percentiles(bootstrap_aucs(y_true, y_prob, patients, n, seed), level)
    values = np.array([np.asarray(metric(y_true[pick], y_prob[pick]), float)
                       for pick in patient_draws(patients, n, seed)])
    return percentiles(values, level)


def patient_weights(patients, n: int, seed: int) -> np.ndarray:
    """The draws of :func:`patient_draws` as weights (n, rows): how many times each row's patient was drawn."""
    ids, inverse = np.unique(np.asarray(patients), return_inverse=True)
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids)) for _ in range(n)])
    return counts[:, inverse].astype(np.float64)


def weighted_aucs(y_true: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of one score under each row of ``weights`` (draws, rows) at once; ties count a half, as in
    scikit-learn; NaN where a draw holds one class only."""
    y = np.asarray(y_true).astype(bool)
    order = np.argsort(np.asarray(score), kind="stable")
    sorted_score, y, w = np.asarray(score)[order], y[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])  # groups of tied scores
    pos = np.add.reduceat(w * y, starts, axis=1)
    neg = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def bootstrap_aucs(y_true: np.ndarray, score: np.ndarray, patients, n: int = 1000, seed: int = 0) -> np.ndarray:
    """The AUC of every patient-bootstrap draw (the draws of :func:`patient_draws`), vectorised."""
    return weighted_aucs(y_true, score, patient_weights(patients, n, seed))


def patient_draws(patients, n: int, seed: int):
    """``n`` bootstrap samples of row indices: each draws as many patients as there are, with replacement, and
    takes all of each drawn patient's rows."""
    ids, inverse = np.unique(np.asarray(patients), return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(ids))]
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield np.concatenate([rows_of[k] for k in rng.integers(0, len(ids), len(ids))])


def percentiles(values: np.ndarray, level: float):
    """The (low, high) percentile interval of bootstrap draws (NaN draws dropped), per column for a 2-D array."""
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: undefined, reported as NaN
        low, high = np.nanpercentile(values, tail, axis=0), np.nanpercentile(values, 100 - tail, axis=0)
    if values.ndim == 1:
        return float(low), float(high)
    return low, high


def matched_aucs(y_true: np.ndarray, score: np.ndarray, strata, weights: np.ndarray | None = None) -> np.ndarray:
    """The level-matched AUC under each row of ``weights`` (draws, rows; None: one draw of ones).

    Each positive is compared only with the negatives of its own stratum: per stratum the AUC of its positives
    against its negatives, then the strata averaged with their (weighted) positives as weights. It is the share
    of same-stratum (positive, negative) pairs ranked right, each positive counting once, ties a half. Strata
    without a negative or a positive drop out (no pair to rank); NaN where none is left.
    A score that is a function of the stratum alone ties every pair: exactly 0.5.
    """
    y = np.asarray(y_true).astype(bool)
    score, strata = np.asarray(score, float), np.asarray(strata)
    weights = np.ones((1, len(y))) if weights is None else np.asarray(weights, float)
    total, mass = np.zeros(len(weights)), np.zeros(len(weights))
    for stratum in np.unique(strata):
        rows = strata == stratum
        auc = weighted_aucs(y[rows], score[rows], weights[:, rows])
        positives = (weights[:, rows] * y[rows]).sum(axis=1)
        defined = np.isfinite(auc)
        total += np.where(defined, auc * positives, 0.0)
        mass += np.where(defined, positives, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mass > 0, total / mass, np.nan)


def matched_auc(y_true: np.ndarray, score: np.ndarray, strata) -> float:
    """The level-matched AUC of one label (:func:`matched_aucs` on the data as it is)."""
    return float(matched_aucs(y_true, score, strata)[0])


def matched_ci(y_true: np.ndarray, score: np.ndarray, strata, patients, n: int = 1000, seed: int = 0,
               level: float = 0.95) -> tuple[float, float]:
    """The level-matched AUC's patient-bootstrap interval (the draws of :func:`patient_weights`)."""
    return percentiles(matched_aucs(y_true, score, strata, patient_weights(patients, n, seed)), level)


def paired_bootstrap(y_true: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, patients, metric,
                     n: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """The difference ``metric(a) - metric(b)`` on the same images, with a patient-bootstrap interval.

    Both models are scored on the same resampled patients in every draw, so what the two share (which patients
    are hard) cancels out of the difference: far narrower than comparing two separate intervals.

    Returns:
        ``{"a", "b", "difference", "low", "high", "verdict"}``: the verdict is "better" (a over b) where the
        whole interval lies above zero, "worse" where below, "undefined" where the metric is, else "cannot tell".
    """
    y_true, prob_a, prob_b = (np.asarray(v) for v in (y_true, prob_a, prob_b))
    a, b = float(metric(y_true, prob_a)), float(metric(y_true, prob_b))
    if metric is auc_or_nan and y_true.ndim == 1:  # vectorised, the same draws
        weights = patient_weights(patients, n, seed)
        draws = weighted_aucs(y_true, prob_a, weights) - weighted_aucs(y_true, prob_b, weights)
    else:
        draws = np.array([metric(y_true[pick], prob_a[pick]) - metric(y_true[pick], prob_b[pick])
                          for pick in patient_draws(patients, n, seed)], float)
    return paired_result(a, b, draws, level)


def paired_matched(y_true: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, strata, patients, n: int = 1000,
                   seed: int = 0, level: float = 0.95) -> dict:
    """:func:`paired_bootstrap` on the level-matched AUC (one label, 1-D arrays): the same patients drawn for
    both in every draw."""
    weights = patient_weights(patients, n, seed)
    a, b = matched_auc(y_true, prob_a, strata), matched_auc(y_true, prob_b, strata)
    draws = matched_aucs(y_true, prob_a, strata, weights) - matched_aucs(y_true, prob_b, strata, weights)
    return paired_result(a, b, draws, level)


def paired_result(a: float, b: float, draws: np.ndarray, level: float = 0.95) -> dict:
    """The paired comparison's dictionary from the two scores and the bootstrap draws of their difference."""
    low, high = percentiles(np.asarray(draws, float), level)
    if np.isnan(low) or np.isnan(high):  # the metric is undefined here (e.g. no positive test slice)
        verdict = "undefined"
    else:
        verdict = "better" if low > 0 else "worse" if high < 0 else "cannot tell"
    return {"a": a, "b": b, "difference": a - b, "low": low, "high": high, "verdict": verdict}
