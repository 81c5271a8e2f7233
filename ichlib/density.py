"""Counting bright pixels: each slice's share of tissue in the density bands of fresh blood, the features of the
pixel baseline (``ichlib.baselines.pixels``).

Fresh blood is 50-90 HU, brain 20-45, bone 700 and more. A few counts per slice (how much of the head lies just
below the brain window's top at 80 HU, how much above it without being bone) already separate many slices with
blood from those without: a model that cannot beat such counts has not shown that it learned more than density.
On real CT much that is not blood is as dense as blood (calcified pineal gland, choroid plexus and falx, venous
sinuses, partial volume at the skull, beam hardening at the skull base), so these counts are a weaker detector
there than on a clean phantom.

Counts are read at full resolution and given per 128 x 128 pixels of the slice, so matrices of any size compare.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .parallel import process_pool
from .preprocess import TISSUE_HU
from .rsna import DicomError, read_hu

BANDS = {"50-60 HU": (50, 60), "60-70 HU": (60, 70), "70-80 HU": (70, 80), "80-100 HU": (80, 100),
         "100-300 HU": (100, 300)}  # the brain window (40/80) saturates at 80; bone starts near 300
HEAD = "tissue px"
COLUMNS = (*BANDS, HEAD)
PER = 128  # counts per PER x PER pixels of the slice


def slice_features(hu: np.ndarray) -> dict[str, float]:
    """Pixels of each band of :data:`BANDS`, and of tissue (above ``TISSUE_HU``), per 128 x 128 of the slice."""
    hu = np.asarray(hu, np.float32)
    scale = PER * PER / hu.size
    row = {name: float(np.count_nonzero((hu >= low) & (hu < high))) * scale for name, (low, high) in BANDS.items()}
    row[HEAD] = float(np.count_nonzero(hu > TISSUE_HU)) * scale
    return row


def _features_of(path: str) -> tuple[dict | None, str | None]:
    try:
        return slice_features(read_hu(path)), None
    except DicomError as exc:
        return None, str(exc)


def index_features(index: pd.DataFrame, workers: int | None = None) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """:func:`slice_features` of every image of an index (``path`` per image ID), in parallel.

    Returns ``(features, failures)``: one row per image ID, NaN where the file could not be read (the boosted
    tree of the baseline takes NaN as "missing"), and ``(path, reason)`` for each such file; one bad file never
    stops the scan.
    """
    paths = index["path"].astype(str).tolist()
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(paths) < 64:
        results = [_features_of(p) for p in paths]
    else:
        with process_pool(workers) as pool:
            results = list(pool.map(_features_of, paths, chunksize=max(16, len(paths) // (workers * 16))))
    rows = [row if row is not None else dict.fromkeys(COLUMNS, np.nan) for row, _ in results]
    failures = [(p, error) for p, (_, error) in zip(paths, results) if error is not None]
    return pd.DataFrame(rows, index=index.index, columns=list(COLUMNS)), failures


# ---------------------------------------------------------------------------------- where the bright pixels lie
BRIGHT = (50, 100)  # HU: fresh blood and what looks like it in the brain window
BONE_HU = 300.0
DENSE = (100, 300)  # HU: calcifications (pineal, choroid plexus, falx plaques) once partial volume averages them
NEAR = 1 / 128  # of the image's side (about 2 mm of a 25 cm field): a bright pixel this close to bone or to a
# dense spot is counted as that structure's partial-volume rim
PLACES = ("next to bone", "next to a dense spot", "on the midline", "elsewhere")


def bright_places(hu: np.ndarray) -> dict[str, float]:
    """Where a slice's blood-bright pixels (``BRIGHT``, 50-100 HU) lie, as counts per place of ``PLACES``: within
    ``NEAR`` of bone (partial volume at the skull and its base), within it of a dense spot (``DENSE``, the
    calcified mimics), on the head's midline (falx, sagittal sinus; the middle tenth of the head's width), or
    elsewhere (the brain itself: blood, noise, beam hardening). Each pixel counts once, in that order. The places
    are read from the densities alone, so they mean the same on the phantom and on real CT."""
    from scipy import ndimage

    hu = np.asarray(hu, np.float32)
    bright = (hu >= BRIGHT[0]) & (hu < BRIGHT[1])
    reach = max(1, int(round(NEAR * max(hu.shape))))
    near_bone = ndimage.binary_dilation(hu >= BONE_HU, iterations=reach)
    near_dense = ndimage.binary_dilation((hu >= DENSE[0]) & (hu < DENSE[1]) & ~near_bone, iterations=reach)
    midline = np.zeros_like(bright)
    head = np.flatnonzero((hu > TISSUE_HU).any(axis=0))
    if head.size:
        centre, half = (head[0] + head[-1]) / 2, max(1.0, (head[-1] - head[0]) / 20)
        midline[:, int(np.floor(centre - half)):int(np.ceil(centre + half)) + 1] = True
    counts, left = {}, bright.copy()
    for name, where in zip(PLACES, (near_bone, near_dense, midline, np.ones_like(bright))):
        counts[name] = float(np.count_nonzero(left & where))
        left &= ~where
    return counts


def place_shares(index: pd.DataFrame, ids, y_any, score, n: int = 50) -> pd.DataFrame:
    """Where the bright pixels of a scorer's ``n`` highest-scored slices without blood lie, beside those of its
    ``n`` highest-scored slices with blood: per group the share of bright pixels in each place of ``PLACES`` and
    the bright pixels per slice (per 128 x 128). A false positive whose bright pixels hug the skull or a
    calcification was fooled by a mimic; one whose lie elsewhere, by something in the brain. Unreadable slices
    are passed over."""
    frame = pd.DataFrame({"y": np.asarray(y_any), "score": np.asarray(score, float)}, index=pd.Index(list(ids)))
    rows = {}
    for group, truth in (("false positives (highest-scored, no blood)", 0), ("true positives (highest-scored, "
                                                                             "blood)", 1)):
        chosen = frame[frame["y"] == truth].sort_values("score", ascending=False, kind="stable")
        totals, slices = dict.fromkeys(PLACES, 0.0), 0
        for image_id in chosen.index:
            try:
                hu = read_hu(index.at[image_id, "path"])
            except (OSError, DicomError):
                continue
            scale = PER * PER / hu.size
            for name, count in bright_places(hu).items():
                totals[name] += count * scale
            slices += 1
            if slices == n:
                break
        total = sum(totals.values())
        rows[group] = {**{name: totals[name] / total if total else np.nan for name in PLACES},
                       "bright px per slice": total / slices if slices else np.nan, "slices": slices}
    return pd.DataFrame(rows).T
