"""Putting the level back by Bayes' rule: a run trained on level-matched negatives sees the image alone.

A run with ``negatives="level_matched"`` (``ichlib.batches.epoch_order``) is shown, in each tenth of a series, as
many negatives as that tenth holds of the positives, so the slice's level says nothing in training and the
network must find the blood. Its raw output is then the probability under the *sampled* rates: it ranks slices
within a level well (the level-matched AUC) but has forgotten how rare blood is at the vertex. The level is
real knowledge, taken from the headers, so it is added back explicitly, per label and level stratum ``s``:

    logit p(label | image, s) = logit p_sampled(label | image) + logit rate(label | s) - logit sampled(label | s)

where ``rate`` is the label's share among the training slices of stratum ``s`` and ``sampled`` its share among
the slices the sampler draws there (counted from a long draw of the run's own sampler). This is the standard
correction for a known change of class rates (prior shift); within a stratum it adds a constant, so the
level-matched AUC is exactly the network's own, while the plain AUC gains what the level knows. Runs trained
on random negatives need no correction and have none.

    <run>/level_prior.json   the correction (strata x labels, logits), written before the run's predictions
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .labels import ANY, LABELS

from .level import BINS, stratum_of

FILE = "level_prior.json"
DRAWS = 200_000  # slices drawn to count the sampler's rates: their error is under 0.01 per stratum


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def rates(labels: np.ndarray, strata: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(bins, labels) share of each label in each stratum, smoothed towards the overall share by one slice
    (a stratum with few slices, or none, keeps a finite logit)."""
    labels, strata = np.asarray(labels, float), np.asarray(strata)
    overall = labels.mean(axis=0)
    out = np.empty((bins, labels.shape[1]))
    for s in range(bins):
        rows = strata == s
        out[s] = (labels[rows].sum(axis=0) + overall) / (rows.sum() + 1)
    return out


def correction(labels: np.ndarray, strata: np.ndarray, positive_fraction: float, seed: int,
               bins: int = BINS) -> np.ndarray:
    """(bins, labels) logits to add to a level-matched run's raw output: the training slices' rates minus the
    rates its sampler draws (``labels``, ``strata``: the training rows' labels and level strata)."""
    from .batches import epoch_order

    labels, strata = np.asarray(labels), np.asarray(strata)
    rows = np.arange(len(labels))
    drawn = epoch_order(rows, labels[:, ANY] > 0, positive_fraction, np.random.default_rng([seed, 7919]), DRAWS,
                        strata)
    return _logit(rates(labels, strata, bins)) - _logit(rates(labels[drawn], strata[drawn], bins))


def apply(probs: np.ndarray, strata: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """Probabilities with the level put back (``table`` None: unchanged). A stratum outside the table (an
    image without a level, -1) keeps the raw output."""
    probs = np.asarray(probs, float)
    if table is None:
        return probs
    strata = np.asarray(strata, int)
    shift = np.zeros_like(probs)
    known = (strata >= 0) & (strata < len(table))
    shift[known] = np.asarray(table)[strata[known]]
    return 1 / (1 + np.exp(-(_logit(probs) + shift)))


def series_strata(slices: int, bins: int = BINS) -> np.ndarray:
    """Each slice's stratum in a series of ``slices`` slices ordered from the lowest z, as
    ``ichlib.level.slice_levels`` counts it."""
    return stratum_of((np.arange(slices) + 0.5) / max(slices, 1), bins)


def aligned_strata(strata, ids) -> np.ndarray:
    """``strata`` (image ID -> stratum, ``ichlib.level.slice_levels``) in the order of ``ids``; -1 for an image
    without a level (its output is then left as it is)."""
    return strata.reindex(list(ids)).fillna(-1).to_numpy(int)


def write(folder: str | os.PathLike, table: np.ndarray) -> Path:
    path = Path(folder) / FILE
    tmp = path.with_name(FILE + ".part")
    tmp.write_text(json.dumps({"labels": list(LABELS), "logits": np.round(table, 6).tolist()}))
    os.replace(tmp, path)
    return path


def read(folder: str | os.PathLike) -> np.ndarray | None:
    """A run's correction, or None where it has none (trained on random negatives)."""
    path = Path(folder) / FILE
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        raise ValueError(f"{path}: not a readable correction (cut short or edited); retrain the run") from None
    if not isinstance(saved, dict) or saved.get("labels") != list(LABELS):
        raise ValueError(f"{path}: labels {saved.get('labels') if isinstance(saved, dict) else saved!r} are not "
                         f"{list(LABELS)}")
    return np.asarray(saved["logits"], float)
