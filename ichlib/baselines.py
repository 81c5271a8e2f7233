"""Trivial predictors, fit on the training split and saved like a run's, so every table can show them beside the
models: what a classifier scores that sees only **where a slice sits in its series** (the level-only baseline).

On a head CT the level is no evidence of blood, yet it predicts it: bleeds are rare at the vertex and in the
skull base and common in the middle of the brain. A network can learn that from the slice's anatomy (the shape
of the skull, the ventricles) without learning what blood looks like: a *shortcut*. The level-only baseline says
how much of a model's AUC the level alone would give, and ``ichlib.metrics.matched_aucs`` scores each model with
the level held fixed. Neither needs masks, so both run on real data as on the phantom.

    ichlib.level.slice_levels   each slice's relative position, series length and stratum (a tenth of its series)
    level_only(src, index, ...) the baseline's folder (fit once, then kept): predictions_val / predictions_test
    pixels(src, index, ...)     the pixel baselines: density counts (``ichlib.density``), without and with the level

The pixel baselines answer the other question a model must beat: what a six-number summary of the slice's
density knows. Both kinds are read without masks, so both run on real data.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import auc_or_nan
from .labels import LABELS
from .level import BINS, slice_levels
from .runs import load_predictions, write_predictions

LEVEL_FEATURES = {"level": ["level"], "level and series length": ["level", "slices"]}
LEVEL_ONLY = "level only"  # the baseline's name in every table


class Constant:
    """The training split's rate of a label that has one class only there: nothing to learn, nothing to fail."""

    def __init__(self, rate: float):
        self.rate = float(rate)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(len(x), 1 - self.rate), np.full(len(x), self.rate)])


def fit_tree(x: np.ndarray, y: np.ndarray, seed: int):
    """A small boosted tree of one label (a constant where the training split has one class only)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(np.unique(y)) < 2:
        return Constant(np.mean(y) if len(y) else 0.0)
    # no early stopping: it would hold out a random tenth of the training split (a second source of randomness)
    tree = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed)
    return tree.fit(x, y)


def probabilities(models: list, x: np.ndarray) -> np.ndarray:
    """(images, 6) probabilities of the six per-label models."""
    return np.stack([m.predict_proba(x)[:, 1] for m in models], axis=1)


def fit_on_split(features: pd.DataFrame, truth: pd.DataFrame, split: pd.Series, candidates: dict[str, list],
                 seed: int = 0) -> dict:
    """Fit one model per label on the training rows for each candidate feature set; keep the set with the best
    mean validation AUC over the labels (the test rows are only predicted).

    Args:
        features: per image ID, the columns the candidates name.
        truth: per image ID, the six labels (0/1).
        split: per image ID, "train" / "val" / "test" (``ichlib.split.split_by_patient``).
        candidates: name -> feature columns.

    Returns:
        ``{"chosen": name, "validation": {name: mean val AUC}, "val": (ids, probs), "test": (ids, probs)}``.
    """
    rows = {name: split.index[split == name] for name in ("train", "val", "test")}
    y = {name: truth.loc[ids, list(LABELS)].to_numpy().astype(int) for name, ids in rows.items()}
    fitted, score = {}, {}
    for name, columns in candidates.items():
        x = {part: features.loc[ids, columns].to_numpy(float) for part, ids in rows.items()}
        models = [fit_tree(x["train"], y["train"][:, j], seed) for j in range(len(LABELS))]
        p_val = probabilities(models, x["val"])
        aucs = [auc_or_nan(y["val"][:, j], p_val[:, j]) for j in range(len(LABELS))]
        score[name] = float(np.nanmean(aucs)) if np.isfinite(aucs).any() else np.nan
        fitted[name] = {"val": p_val, "test": probabilities(models, x["test"])}
    defined = {k: v for k, v in score.items() if np.isfinite(v)}
    chosen = max(defined, key=defined.get) if defined else next(iter(candidates))
    return {"chosen": chosen, "validation": score,
            **{part: (rows[part], fitted[chosen][part]) for part in ("val", "test")}}


def baseline_dir(src, name: str, settings: dict) -> Path:
    """``<data>/baselines/<source>/<name>-<hash of its settings>``."""
    from .store import data_root

    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return data_root() / "baselines" / src.key / f"{name.replace(' ', '-')}-{digest}"


def save(folder: Path, result: dict, truth: pd.DataFrame, settings: dict) -> Path:
    """Predictions as a run writes them (``ichlib.runs``), then ``baseline.json`` last: the folder is complete."""
    for part in ("val", "test"):
        ids, probs = result[part]
        write_predictions(folder, part, ids, truth.loc[ids, list(LABELS)].to_numpy(), probs)
    summary = {"settings": settings, "chosen": result["chosen"], "validation": result["validation"]}
    tmp = folder / "baseline.json.part"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, folder / "baseline.json")
    return folder


def summary(folder: str | os.PathLike) -> dict:
    """What a saved baseline chose and how each candidate scored on validation."""
    return json.loads((Path(folder) / "baseline.json").read_text())


def level_only(src, index: pd.DataFrame, labels: pd.DataFrame, split: pd.Series, seed: int = 0) -> Path:
    """The level-only baseline of a source and split: fit on the training slices (position in the series, and
    the series' length where that helps on validation), kept under ``data/baselines/`` and returned as the
    folder of its saved predictions (``ichlib.runs.load_predictions`` reads them)."""
    return fitted(src, LEVEL_ONLY, lambda: slice_levels(index.loc[split.index]), LEVEL_FEATURES, labels, split, seed)


def fitted(src, name: str, features, candidates: dict[str, list], labels: pd.DataFrame, split: pd.Series,
           seed: int = 0) -> Path:
    """A baseline's folder, fit by :func:`fit_on_split` and saved the first time it is asked for, then kept.
    ``features`` is a function giving the feature table (called only when the baseline must be fit); the
    folder is keyed by the name, the candidates, the seed and the split."""
    settings = {"baseline": name, "candidates": candidates, "seed": seed, "split": hashlib.sha1(
        pd.util.hash_pandas_object(split.sort_index()).values.tobytes()).hexdigest()[:12]}
    folder = baseline_dir(src, name, settings)
    if (folder / "baseline.json").exists():
        return folder
    truth = labels.reindex(split.index).fillna(0)
    return save(folder, fit_on_split(features(), truth, split, candidates, seed), truth, settings)


PIXELS_ONLY, PIXELS_AND_LEVEL = "pixels only", "pixels and level"


def pixel_features(src, index: pd.DataFrame, workers: int | None = None) -> pd.DataFrame:
    """Every slice's density counts (``ichlib.density``) with its level, computed once per source and kept as
    ``data/baselines/<source>/pixel-features-<hash of the bands>.csv``."""
    from .density import BANDS, index_features

    digest = hashlib.sha1(json.dumps(BANDS, sort_keys=True).encode()).hexdigest()[:8]
    path = baseline_dir(src, "pixel-features", {}).parent / f"pixel-features-{digest}.csv"
    if path.exists():
        table = pd.read_csv(path, index_col="ID")
    else:
        table, _ = index_features(index, workers)  # unreadable slices stay NaN: the tree reads them as missing
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        table.rename_axis("ID").to_csv(tmp)
        os.replace(tmp, path)
    return table.reindex(index.index).join(slice_levels(index))


def pixels(src, index: pd.DataFrame, labels: pd.DataFrame, split: pd.Series, seed: int = 0,
           workers: int | None = None) -> dict[str, Path]:
    """The pixel baselines, fit on the training slices: a small boosted tree per label on the density counts
    alone, and on the counts with the slice's level. ``{name: folder}``, each saved like a run's."""
    from .density import COLUMNS

    @functools.cache
    def features():  # the slices are read only if a baseline must be fit, and then once for both
        return pixel_features(src, index, workers).loc[split.index]

    counts = list(COLUMNS)
    return {PIXELS_ONLY: fitted(src, PIXELS_ONLY, features, {PIXELS_ONLY: counts}, labels, split, seed),
            PIXELS_AND_LEVEL: fitted(src, PIXELS_AND_LEVEL, features, {PIXELS_AND_LEVEL: counts + ["level"]},
                                     labels, split, seed)}


def aligned(folder: str | os.PathLike, split: str, ids) -> np.ndarray:
    """A saved baseline's (images, 6) probabilities on ``split``, in the order of ``ids`` (a run's images)."""
    saved_ids, _, probs = load_predictions(folder, split)
    frame = pd.DataFrame(probs, index=saved_ids).reindex(list(ids))
    if frame.isna().any().any():
        raise ValueError(f"{folder}: the baseline has no {split} prediction for some of the images asked for")
    return frame.to_numpy()


def level_rates(index: pd.DataFrame, labels: pd.DataFrame, ids, bins: int = BINS) -> pd.DataFrame:
    """Share of slices positive for each label in each stratum (a tenth of the series by default) among ``ids``
    (the training split, say): rows strata 0 (lowest) to ``bins`` - 1, columns the six labels and "slices".
    Where these shares differ, the level alone predicts the label."""
    ids = list(ids)
    strata = slice_levels(index.loc[ids], bins)["stratum"]
    truth = labels.reindex(ids).fillna(0)[list(LABELS)]
    table = truth.groupby(strata.to_numpy()).mean()
    table["slices"] = strata.value_counts().sort_index().to_numpy()
    return table.rename_axis("stratum")


def label_aucs(candidates: dict[str, np.ndarray], truth: np.ndarray) -> pd.DataFrame:
    """Per-label AUC (columns the six labels) of each candidate (rows) on the same images."""
    from .metrics import per_label_auc

    return pd.DataFrame({name: per_label_auc(truth, probs) for name, probs in candidates.items()}).T


def at_or_below(aucs: pd.DataFrame, baseline: pd.Series) -> pd.Series:
    """Per label, how many candidates (rows of :func:`label_aucs`) score no higher than the baseline (undefined
    AUCs are not counted)."""
    return (aucs <= baseline).sum()


def all_baselines(src, index: pd.DataFrame, labels: pd.DataFrame, split: pd.Series, ids, seed: int = 0,
                  part: str = "test", workers: int | None = None) -> dict[str, np.ndarray]:
    """Every baseline's (images, 6) probabilities on ``part`` in the order of ``ids`` (the runs' images):
    level only, pixels only, pixels and level; each fit once and kept. What the chapters put beside the models."""
    folders = {LEVEL_ONLY: level_only(src, index, labels, split, seed),
               **pixels(src, index, labels, split, seed, workers)}
    return {name: aligned(folder, part, ids) for name, folder in folders.items()}
