"""Results with their uncertainty: 95 % patient-bootstrap intervals, paired comparisons of two models on the
same test patients, and the headline table of one model or ensemble on one split.

Every interval resamples **patients**, not slices: the slices of one patient are not independent, and a
slice-level bootstrap would draw intervals too narrow. A comparison of two models resamples the same patients
for both (paired), so what they share cancels and the verdict reads the difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import ensemble
from .labels import ANY, LABELS
from .metrics import (auc_or_nan, bootstrap_ci, choose_thresholds, matched_auc, matched_aucs, paired_bootstrap,
                      patient_weights, percentiles, scores, weighted_aucs, weighted_log_loss)
from .runs import load_predictions
from .seeds import SEED_FLIPPABLE
from .tables import Predictions


def headline(y_true, y_prob, thresholds, patients, n_boot: int = 1000, seed: int = 0) -> dict:
    """The results table of one model or ensemble on one split.

    Returns ``{"labels": table, "RSNA log loss": (value, low, high)}``: per label, the AUC with its 95 %
    patient-bootstrap interval, accuracy / F1 / recall / precision at the given (validation) thresholds and the
    number of positives; and the RSNA weighted log loss with its interval. The decisions are the read-out's:
    a subtype only where `any` is flagged (``ichlib.metrics.flags``), as the app reports them.
    """
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    table = scores(y_true, y_prob, thresholds, hierarchy=True).loc[list(LABELS)]
    weights = patient_weights(patients, n_boot, seed)  # one set of draws for every label, vectorised
    draws = np.stack([weighted_aucs(y_true[:, j], y_prob[:, j], weights) for j in range(len(LABELS))], axis=1)
    low, high = percentiles(draws, 0.95)
    at = table.columns.get_loc("AUC") + 1
    table.insert(at, "AUC 95% low", low)
    table.insert(at + 1, "AUC 95% high", high)
    table["positives"] = y_true.sum(axis=0).astype(int)
    loss_low, loss_high = bootstrap_ci(y_true, y_prob, patients, weighted_log_loss, n_boot, seed)
    return {"labels": table, "RSNA log loss": (weighted_log_loss(y_true, y_prob), loss_low, loss_high)}


def patients_of_studies(index: pd.DataFrame, studies) -> np.ndarray:
    """The patient of each study (the index's ``study`` and ``patient`` columns), in the order given."""
    return index.drop_duplicates("study").set_index("study").loc[list(studies), "patient"].to_numpy()


def validated_headline(val: Predictions, test: Predictions, p_val, p_test, index: pd.DataFrame,
                       level: str = "slice", n_boot: int = 1000, seed: int = 0) -> dict:
    """The :func:`headline` of one model or ensemble at slice or study level, thresholds chosen on validation.

    ``p_val`` / ``p_test``: (images, 6) probabilities aligned with ``val.ids`` / ``test.ids``; ``index``: the
    image index (``patient`` and ``study`` per image ID). At study level both splits are first read out per
    study (:func:`ichlib.ensemble.study_level`) and the thresholds chosen on the validation studies. The
    bootstrap resamples patients either way. Adds the ``"thresholds"`` used, ``"units"`` (test slices or
    studies) and ``"patients"``.
    """
    if level == "slice":
        y_val, y_test, units = val.truth, test.truth, list(test.ids)
        patients = index.loc[list(test.ids), "patient"].to_numpy()
    elif level == "study":
        thresholds = ensemble.study_thresholds(val.ids, val.truth, p_val, index["study"])
        units, y_test, p_test = ensemble.study_level(test.ids, test.truth, p_test, index["study"])
        patients = patients_of_studies(index, units)
    else:
        raise ValueError(f"level must be 'slice' or 'study', got {level!r}")
    if level == "slice":
        thresholds = choose_thresholds(y_val, p_val)
    result = headline(y_test, p_test, thresholds, patients, n_boot, seed)
    return {**result, "thresholds": thresholds, "units": len(units), "patients": len(set(patients))}


def paired_auc(truth: np.ndarray, candidates: dict[str, np.ndarray], pairs, patients, label: str = "any",
               n: int = 1000, seed: int = 0, strata=None, spread: float = np.nan) -> pd.DataFrame:
    """AUC of ``label`` for pairs of candidates on the same test slices, the difference's patient-bootstrap
    interval (``metrics.paired_bootstrap``) and what it says: "better", "worse" or "cannot tell".

    Args:
        truth: (images, 6) test labels.
        candidates: name -> (images, 6) test probabilities (a model's, or an ensemble's).
        pairs: (A, B) names: each row reads "A is better / worse than B, or cannot tell".
        patients: the patient of each test image.
        strata: each test image's level stratum (``ichlib.level.slice_levels``): compare level-matched AUCs
            (``metrics.paired_matched``) instead of plain ones.
        spread: the AUC range that retraining with other seeds gives (``ichlib.seeds``): a verdict by no more
            than that is "cannot tell" (``seeds.with_spread``); NaN: not measured.
    """
    from .metrics import paired_matched
    from .seeds import with_spread

    j = LABELS.index(label)
    rows = []
    for a, b in pairs:
        if strata is None:
            r = paired_bootstrap(truth[:, j], candidates[a][:, j], candidates[b][:, j], patients, auc_or_nan, n, seed)
        else:
            r = paired_matched(truth[:, j], candidates[a][:, j], candidates[b][:, j], np.asarray(strata), patients,
                               n, seed)
        # the same column names with strata: a narrow table (the caption says "level-matched"; attrs["score"] too)
        rows.append({"A": a, "B": b, f"AUC {label} A": r["a"], f"AUC {label} B": r["b"],
                     "A - B": r["difference"], "95 % CI of A - B": "undefined" if r["verdict"] == "undefined"
                     else f"{r['low']:+.3f} to {r['high']:+.3f}", "A is": with_spread(r["verdict"], r["difference"],
                                                                                     spread)})
    frame = pd.DataFrame(rows)
    frame.attrs["score"] = "AUC" if strata is None else "level-matched AUC"
    return frame


def verdict_text(row) -> str:
    """One row of :func:`paired_auc` in words, for a sentence that reads "A is ...":
    ``better: +0.018 (95 % CI +0.009 to +0.028)``; an interval that straddles zero says so, and so does a
    difference within the seed spread."""
    if row["A is"] == "undefined":
        return "undefined (one class only in the test split)"
    verdict = {"cannot tell": "no better and no worse (the interval straddles zero)",
               SEED_FLIPPABLE: "no better and no worse than retraining with another seed moves a model"}.get(
        row["A is"], row["A is"])
    return f"{verdict}: {row['A - B']:+.3f} (95 % CI {row['95 % CI of A - B']})"


def verdict_counts(frame: pd.DataFrame) -> str:
    """The verdicts of :func:`paired_auc` counted in words, most frequent first: ``2 better, 1 cannot tell (the
    interval straddles zero), 1 cannot tell (within the seed spread)``; the two reasons to withhold a verdict
    are named apart so that they do not read as one category twice."""
    named = {"cannot tell": "cannot tell (the interval straddles zero)"}
    counts = frame["A is"].value_counts()
    return ", ".join(f"{n} {named.get(v, v)}" for v, n in counts.items()) if len(counts) else "no pairs"


def any_auc_levels(candidates: dict[str, np.ndarray], test: Predictions, index: pd.DataFrame, n: int = 1000,
                   seed: int = 0, strata: pd.Series | None = None) -> pd.DataFrame:
    """Test `any` AUC of each candidate at slice and study level (a study's score is its highest slice's), each
    with its patient-bootstrap 95 % interval, and the RSNA log loss at slice level: the light headline of a
    comparison (one label, so it costs a fraction of :func:`validated_headline`). With ``strata`` (each image's
    level stratum) the slice rows add the level-matched AUC (``metrics.matched_aucs``)."""
    j = LABELS.index("any")
    patients = index.loc[list(test.ids), "patient"].to_numpy()
    rows = []
    for name, probs in candidates.items():
        units, y_study, p_study = ensemble.study_level(test.ids, test.truth, probs, index["study"])
        study_patients = patients_of_studies(index, units)
        for level, (y, p, who) in {"slice": (test.truth, probs, patients),
                                   "study": (y_study, p_study, study_patients)}.items():
            low, high = bootstrap_ci(y[:, j], p[:, j], who, auc_or_nan, n, seed)
            rows.append({"model": name, "level": level, "any AUC": auc_or_nan(y[:, j], p[:, j]), "95 % low": low,
                         "95 % high": high, "units": len(y),
                         "RSNA log loss": weighted_log_loss(test.truth, probs) if level == "slice" else np.nan})
            if strata is not None:
                rows[-1]["level-matched AUC"] = matched_auc(y[:, j], p[:, j], strata.loc[list(test.ids)].to_numpy()) \
                    if level == "slice" else np.nan
    return pd.DataFrame(rows).set_index(["model", "level"])


def gain_over(truth: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, patients, gain: float,
              label: str = "any", n: int = 1000, seed: int = 0, spread: float = np.nan) -> dict:
    """Whether A beats B by at least ``gain`` in ``label`` AUC with the paired interval above zero and, where
    the seed spread is known, by more than it: the ``metrics.paired_bootstrap`` result with ``met`` added."""
    j = LABELS.index(label)
    r = paired_bootstrap(truth[:, j], prob_a[:, j], prob_b[:, j], patients, auc_or_nan, n, seed)
    beyond_seeds = not np.isfinite(spread) or r["difference"] > spread
    return {**r, "met": bool(r["difference"] >= gain and r["low"] > 0 and beyond_seeds)}


def any_auc_table(candidates: dict[str, np.ndarray], test: Predictions, index: pd.DataFrame, n: int = 1000,
                  seed: int = 0, strata: pd.Series | None = None) -> pd.DataFrame:
    """Each candidate's test `any` AUC with its patient-bootstrap interval and, with ``strata``, its
    level-matched AUC with its interval (:func:`auc_with_interval`), one row per candidate."""
    rows = {name: auc_with_interval(test.truth[:, ANY], probs[:, ANY], index.loc[list(test.ids)], n, seed, strata,
                                    "test AUC any") for name, probs in candidates.items()}
    return pd.DataFrame(rows).T.drop(columns="patients")


def comparison_pairs(runs: pd.DataFrame, test: Predictions, ensemble_probs: np.ndarray,
                     single: str) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """What the results chapter compares, as ``paired_auc`` takes it: candidates (every run's test probabilities
    and the best ensemble's) and pairs: the best ensemble against the best single model ``single``, the two best
    runs by validation `any` AUC, and each optimised run against its baseline."""
    candidates = {name: test.probs[test.names.index(name)] for name in runs.index}
    candidates["best ensemble"] = np.asarray(ensemble_probs)
    ranked = list(runs["val AUC any"].dropna().sort_values(ascending=False).index)
    pairs = [("best ensemble", single)] + [tuple(ranked[:2])] * (len(ranked) > 1) + variant_pairs(runs)
    kept = []  # the two best runs may be one backbone's two variants: each pair once, in either order
    for pair in pairs:
        if pair not in kept and pair[::-1] not in kept:
            kept.append(pair)
    return candidates, kept


def variant_pairs(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(optimised, baseline) run names of each backbone and input that has both (``plan.train_runs`` rows)."""
    pairs = []
    for (arch, prep), group in runs.groupby(["arch", "preprocessing"], sort=False):
        by_variant = dict(zip(group["variant"], group.index))
        if {"baseline", "optimised"} <= set(by_variant):
            pairs.append((by_variant["optimised"], by_variant["baseline"]))
    return pairs


def auc_intervals(runs: pd.DataFrame, index: pd.DataFrame, label: str = "any", split: str = "test",
                  n: int = 1000, seed: int = 0, strata: pd.Series | None = None) -> pd.DataFrame:
    """Each run's ``label`` AUC on ``split`` with its patient-bootstrap 95 % interval (``plan.train_runs`` rows;
    ``index`` gives each image's patient); with ``strata`` also its level-matched AUC (:func:`auc_with_interval`)."""
    j = LABELS.index(label)
    rows = {}
    for name, folder in runs["folder"].items():
        ids, truth, probs = load_predictions(folder, split)
        rows[name] = auc_with_interval(truth[:, j], probs[:, j], index.loc[ids], n, seed, strata,
                                       f"{split} AUC {label}")
    return pd.DataFrame(rows).T


def auc_with_interval(y: np.ndarray, p: np.ndarray, index: pd.DataFrame, n: int = 1000, seed: int = 0,
                      strata: pd.Series | None = None, key: str = "AUC") -> dict:
    """One label's AUC (under ``key``) with its patient-bootstrap interval (``index``: the images' rows, for
    their patients) and, with ``strata``, the level-matched AUC and its interval from the same draws."""
    patients = index["patient"].to_numpy()
    weights = patient_weights(patients, n, seed)
    low, high = percentiles(weighted_aucs(y, p, weights), 0.95)
    row = {key: auc_or_nan(y, p), "95 % CI low": low, "95 % CI high": high}
    if strata is not None:
        levels = strata.loc[index.index].to_numpy()
        m_low, m_high = percentiles(matched_aucs(y, p, levels, weights), 0.95)
        row |= {"level-matched AUC": matched_auc(y, p, levels), "matched low": m_low, "matched high": m_high}
    return row | {"patients": index["patient"].nunique()}


