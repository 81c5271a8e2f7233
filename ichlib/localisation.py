"""How well a heatmap finds the bleed, scored against the phantom's true masks.

Three scores per (heatmap, mask) pair, each common in the saliency literature:

- **pointing game**: the heatmap's maximum falls inside the mask, dilated by a tolerance of a few pixels
  (a heatmap from a 2x2 or 4x4 feature map cannot point more finely);
- **energy inside**: the share of the heatmap's total inside the (undilated) mask;
- **heatmap AUC**: the ROC AUC of the heatmap's values as a pixel classifier of the mask.

A blank heatmap points nowhere (a miss), has no energy share and no AUC (NaN, reported as undefined).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import binary_dilation
from sklearn.metrics import roc_auc_score

from .masktargets import mask_to  # noqa: F401  (a mask at a heatmap's size: the chapters call it from here)


def pointing_game(heatmap: np.ndarray, mask: np.ndarray, tolerance: int = 1) -> bool:
    """True when the heatmap's maximum lies in the mask dilated by ``tolerance`` pixels (False if blank)."""
    if not mask.any() or heatmap.max() <= 0:
        return False
    grown = binary_dilation(mask, iterations=tolerance) if tolerance > 0 else mask
    return bool(grown.flat[int(np.argmax(heatmap))])


def energy_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Share of the heatmap's sum inside the mask (NaN for a blank heatmap)."""
    total = float(heatmap.sum())
    return float(heatmap[mask].sum() / total) if total > 0 else np.nan


def heatmap_auc(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """ROC AUC of heatmap values against mask membership (NaN if the mask is empty or everything, or the
    heatmap is blank)."""
    if mask.all() or not mask.any() or heatmap.max() <= 0:
        return np.nan
    return float(roc_auc_score(mask.ravel(), heatmap.ravel()))


def score(heatmap: np.ndarray, mask: np.ndarray, tolerance: int = 1) -> dict:
    """The three scores of one heatmap; ``mask`` is resized to the heatmap when their sizes differ."""
    if mask.shape != heatmap.shape:
        mask = mask_to(mask, heatmap.shape[0])
    return {"pointing game": pointing_game(heatmap, mask, tolerance), "energy inside": energy_inside(heatmap, mask),
            "heatmap AUC": heatmap_auc(heatmap, mask), "mask share": float(mask.mean())}


SIZE_BANDS = (0, 4, 16, 64)  # bleed area at the network's input, px: below 4 a bleed is under 2 x 2 pixels


def input_area(mask: np.ndarray, size: int) -> float:
    """The area (px) a mask covers once its image is resized to ``size`` x ``size``."""
    return float(mask.sum()) * (size / mask.shape[0]) * (size / mask.shape[1])


def size_band(area: float, bands=SIZE_BANDS) -> str:
    """The band of ``bands`` an input area falls in, as a label such as "4-16 px" or ">= 64 px"."""
    k = int(np.searchsorted(bands, area, side="right")) - 1
    return f">= {bands[-1]} px" if k == len(bands) - 1 else f"{bands[max(k, 0)]}-{bands[max(k, 0) + 1]} px"


def band_labels(bands=SIZE_BANDS) -> list[str]:
    """Every label :func:`size_band` can give, smallest first (the column order of a table by band)."""
    return [f"{a}-{b} px" for a, b in zip(bands[:-1], bands[1:])] + [f">= {bands[-1]} px"]


def score_slices(heatmaps: np.ndarray, ids, masks: dict, tolerance: int = 1) -> pd.DataFrame:
    """One row per (slice, subtype): the slice's heatmap scored against that subtype's mask, and one row
    ``subtype="any"`` against the union of its masks. ``masks[id]`` is ``{subtype: bool array}`` in the frame
    the network saw (cut to the head's box where the input was), with the bleed's area at the heatmap's size and
    its band (:data:`SIZE_BANDS`)."""
    rows = []
    for heat, image_id in zip(heatmaps, ids):
        parts = masks.get(image_id, {})
        if not parts:
            continue
        union = np.logical_or.reduce(list(parts.values()))
        for subtype, mask in [("any", union), *parts.items()]:
            area = input_area(mask, heat.shape[0])
            rows.append({"ID": image_id, "subtype": subtype, **score(heat, mask, tolerance),
                         "area (px at input)": area, "size band": size_band(area)})
    return pd.DataFrame(rows, columns=["ID", "subtype", "pointing game", "energy inside", "heatmap AUC",
                                       "mask share", "area (px at input)", "size band"])


def summarise(rows: pd.DataFrame, by=("model", "subtype")) -> pd.DataFrame:
    """Per group: slices scored, pointing-game hit rate, mean energy inside, mean heatmap AUC, and the mask's
    mean share of the image (the energy a uniform heatmap would put inside: the chance level)."""
    grouped = rows.groupby(list(by), sort=False)
    table = pd.DataFrame({
        "slices": grouped.size(),
        "pointing game": grouped["pointing game"].mean(),
        "energy inside": grouped["energy inside"].mean(),
        "chance energy": grouped["mask share"].mean(),
        "heatmap AUC": grouped["heatmap AUC"].mean(),
    })
    return table


def pointing_interval(rows: pd.DataFrame, patient_of, by=("model", "subtype"), n: int = 1000, seed: int = 0,
                      level: float = 0.95) -> pd.DataFrame:
    """The pointing game's patient-bootstrap interval per group of :func:`score_slices` rows (``patient_of``:
    image ID -> patient): "pointing game low" and "high". Slices of one patient are near copies, so the patient,
    not the slice, is what is resampled (``ichlib.metrics.patient_weights``)."""
    from .metrics import patient_weights, percentiles

    out = {}
    for key, group in rows.groupby(list(by), sort=False):
        hits = group["pointing game"].to_numpy(float)
        weights = patient_weights(pd.Series(group["ID"]).map(patient_of).to_numpy(), n, seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = (weights * hits).sum(axis=1) / weights.sum(axis=1)
        out[key] = percentiles(draws, level)
    index = pd.MultiIndex.from_tuples(list(out), names=list(by)) if len(by) > 1 else pd.Index(
        [k[0] if isinstance(k, tuple) else k for k in out], name=by[0])
    return pd.DataFrame(list(out.values()), index=index, columns=["pointing game low", "pointing game high"])


def sample_slices(ids, n: int, seed: int = 0) -> list:
    """At most ``n`` of ``ids`` (all of them for ``n`` = 0 or more than there are), drawn from ``seed`` and kept
    in their order: what a chapter scores when scoring every slice with every model would cost minutes."""
    ids = list(ids)
    if n <= 0 or n >= len(ids):
        return ids
    keep = np.sort(np.random.default_rng([seed, 5]).choice(len(ids), n, replace=False))
    return [ids[k] for k in keep]
