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
