"""Is a heatmap explaining the model? The model-randomisation check of Adebayo et al. (2018, "Sanity checks for
saliency maps"), and the localisation split by whether the model was right for the right reason.

**Cascading randomisation.** The trained model's layers are re-initialised from the top (the output layer first,
then ever deeper blocks) and the heatmaps of the same slices are computed at each step. A map that explains the
model must change as the weights it depends on are destroyed: its Spearman rank correlation with the trained
model's map should fall towards zero. A map that stays the same (high correlation with every layer random) shows
the input's edges and contrast, not what the model learned, whatever it seems to point at.

**Right for the right reason.** On slices with a bleed, the model's decision (at its validation threshold) and
its heatmap's peak (the pointing game) split the slices four ways: found and pointing at the bleed, found while
hot elsewhere, missed while hot on the bleed, missed and elsewhere. Only the first is the paper's story.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

CASCADE = (0.0, 0.02, 0.1, 0.25, 0.5, 1.0)  # shares of the weighted layers re-initialised, from the top
# A map whose rank correlation with the trained model's stays at or above this (in absolute value: a map that
# turns upside down is as tied to the input as one that stays) once the top half of the layers, or every layer,
# is re-initialised shows the input more than the model. Ours, not a published cut: Adebayo et al. read the fall
# by eye.
PASSES_BELOW = 0.5
HALF = 0.5


def weighted_layers(model) -> list[int]:
    """Positions (in ``model.layers``) of the layers that hold weights, bottom to top."""
    return [k for k, layer in enumerate(model.layers) if layer.weights]


def randomised(trained, fresh, share: float):
    """``fresh`` (a new, untrained model of the same architecture, built the same way) with the trained weights
    copied into every weighted layer except the top ``share`` of them, which keep their new random values; at
    least the output layer is random for any share above 0. Returns ``fresh``, changed in place."""
    if len(trained.layers) != len(fresh.layers):
        raise ValueError("the trained and the fresh model differ in their layers: build both with ichlib.runs.model_for")
    layers = weighted_layers(trained)
    random_top = int(np.ceil(share * len(layers))) if share > 0 else 0
    for k in layers[:len(layers) - random_top]:
        fresh.layers[k].set_weights(trained.layers[k].get_weights())
    return fresh


def deepest_random(model, share: float) -> str:
    """The name of the deepest layer re-initialised at ``share`` ("none" at 0)."""
    layers = weighted_layers(model)
    random_top = int(np.ceil(share * len(layers))) if share > 0 else 0
    return model.layers[layers[len(layers) - random_top]].name if random_top else "none"


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two heatmaps' pixels (NaN where either is constant, e.g. blank)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    return float(spearmanr(a, b).statistic)


def cascade(spec, trained, images: np.ndarray, label="any", shares=CASCADE, seed: int = 0) -> pd.DataFrame:
    """Grad-CAM of ``images`` from the trained model and from copies re-initialised from the top, one row per
    share: the share and count of weighted layers re-initialised, the deepest of them, and the mean, 10th and
    90th percentile of each slice's rank correlation with the trained model's map. Each copy's random weights
    come from ``seed`` (``ichlib.devices.set_determinism``).

    Args:
        spec: the run's ``RunSpec`` (``ichlib.runs.model_for`` rebuilds its architecture).
        trained: its trained model.
        images: (n, rows, cols, channels) as the model takes them.
    """
    from .gradcam import default_layer, gradcam
    from .runs import model_for
    from .devices import set_determinism

    layer = default_layer(trained)
    reference = gradcam(trained, images, label, layer)
    n_layers = len(weighted_layers(trained))
    rows = []
    for share in shares:
        set_determinism(seed)
        model = randomised(trained, model_for(spec), share) if share > 0 else trained
        maps = reference if share == 0 else gradcam(model, images, label, layer)
        r = np.array([rank_correlation(a, b) for a, b in zip(reference, maps)])
        rows.append({"share re-initialised": share, "layers re-initialised": int(np.ceil(share * n_layers)),
                     "deepest re-initialised": deepest_random(trained, share),
                     "rank correlation": float(np.nanmean(r)) if np.isfinite(r).any() else np.nan,
                     "10th percentile": float(np.nanpercentile(r, 10)) if np.isfinite(r).any() else np.nan,
                     "90th percentile": float(np.nanpercentile(r, 90)) if np.isfinite(r).any() else np.nan})
    return pd.DataFrame(rows).set_index("share re-initialised")


def passes(table: pd.DataFrame, below: float = PASSES_BELOW) -> bool:
    """Whether a :func:`cascade` passes: the mean rank correlation's absolute value is under ``below`` from the
    first step that re-initialises at least half of the layers on (NaN steps are not counted as passing)."""
    late = table.loc[table.index >= HALF, "rank correlation"]
    return bool(len(late)) and bool((late.abs() < below).all())


REASONS = ("found, hot on the bleed", "found, hot elsewhere", "missed, hot on the bleed", "missed, hot elsewhere")


def reasons(found: pd.Series, pointing: pd.Series) -> pd.Series:
    """Each positive slice's case of :data:`REASONS`: ``found`` (bool, the model flagged `any` at its validation
    threshold) and ``pointing`` (bool, the heatmap's peak on the bleed), both indexed by image ID."""
    pointing = pointing.reindex(found.index).fillna(False).astype(bool)
    found = found.astype(bool)
    case = np.select([found & pointing, found & ~pointing, ~found & pointing], REASONS[:3], REASONS[3])
    return pd.Series(case, index=found.index, name="case")


def reason_table(cases: pd.Series, rows: pd.DataFrame) -> pd.DataFrame:
    """Slices, their share, and the mean energy inside the bleed and chance energy per case of :data:`REASONS`
    (``rows``: ``ichlib.localisation.score_slices`` rows of one model, subtype "any")."""
    scored = rows.set_index("ID").join(cases, how="inner")
    grouped = scored.groupby("case")
    table = pd.DataFrame({"slices": grouped.size(), "energy inside": grouped["energy inside"].mean(),
                          "chance energy": grouped["mask share"].mean()}).reindex(list(REASONS))
    table["slices"] = table["slices"].fillna(0).astype(int)
    table.insert(1, "share", table["slices"] / max(int(table["slices"].sum()), 1))
    return table


def unrelated_floor(maps: np.ndarray, seed: int = 0) -> float:
    """The mean absolute rank correlation between the maps of two *different* slices (each map against one other,
    paired at random from ``seed``): what a cascade's correlations are read against (Arun et al., 2021). Maps of
    unrelated slices share the head's outline and the network's habits; a randomised model's maps that correlate
    with the trained model's no more than this have lost what the model learned. NaN with fewer than two maps."""
    maps = np.asarray(maps)
    if len(maps) < 2:
        return np.nan
    order = np.random.default_rng([seed, 13]).permutation(len(maps))
    pairs = zip(order, np.roll(order, 1))
    r = np.array([rank_correlation(maps[a], maps[b]) for a, b in pairs])
    return float(np.nanmean(np.abs(r))) if np.isfinite(r).any() else np.nan
