"""A slice's level in its series: where it lies from the lowest slice to the highest, read from the headers alone.

On head CT the level predicts much of the label (the ventricles, the skull base and the vertex look different,
and bleeds are not spread evenly), so a model can score well by learning the level instead of the blood. Every
level-matched score in the book (``ichlib.metrics.matched_auc``) compares slices within one stratum from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10  # strata of the level-matched AUC: tenths of the series


def slice_levels(index: pd.DataFrame, bins: int = BINS) -> pd.DataFrame:
    """Per image: ``level`` (the slice's place in its series, (rank + 0.5) / slices, in (0, 1): 0 the lowest z),
    ``slices`` (the series' length) and ``stratum`` (which of ``bins`` equal parts of the series it falls in).

    ``index``: ``ichlib.rsna.index_dicoms`` output (``series`` and ``rank`` per image ID). Only the headers
    are read: no pixel, no label, no mask.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    slices = index.groupby("series")["rank"].transform("size").astype(int)
    level = (index["rank"].to_numpy() + 0.5) / slices.to_numpy()
    stratum = stratum_of(level, bins)
    return pd.DataFrame({"level": level, "slices": slices.to_numpy(), "stratum": stratum}, index=index.index)


def stratum_of(level: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Which of ``bins`` equal parts of its series a level in (0, 1) falls in (0: the lowest)."""
    return np.minimum((np.asarray(level) * bins).astype(int), bins - 1)
