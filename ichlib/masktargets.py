"""The phantom's bleed masks as a dense target: for every row of a cache, which cells of the mask head's grid
hold blood.

A network with a mask head (``ichlib.models``, ``mask_head=True``) predicts one logit per cell of its stride-8
map (10 x 10 at 80 px). Its target is the union of the slice's true masks in the frame the network saw (cut to
the same head box as the image, :func:`frame_masks`), max-pooled to that grid: a cell is positive where
any of its area bleeds (:func:`mask_to`). Negative slices have no mask and an all-zero target. Real data has no masks: asking for
its targets is a :class:`MasksUnavailable` that names the source.

    <cache folder>/mask_grid_<cells>.npy    (n, cells, cells, 1) uint8, row i for the cache's slice ids[i]

Written once (atomically) beside the cache it belongs to and then read back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .labels import ANY

GRID_FILE = "mask_grid_{cells}.npy"


class MasksUnavailable(ValueError):
    """A run asked for mask supervision on data without masks (real RSNA data has none)."""


def mask_to(mask: np.ndarray, size: int) -> np.ndarray:
    """A full-resolution bool mask at ``size`` x ``size``: a pixel is in where any part of its area is."""
    from PIL import Image

    coverage = Image.fromarray(mask.astype(np.float32)).resize((size, size), Image.Resampling.BOX)
    return np.asarray(coverage) > 0


def frame_masks(src, ids, cache=None) -> dict[str, dict[str, np.ndarray]]:
    """The true masks of each slice (``{subtype: bool array}``); empty for real data, which has none.

    With a ``cache`` whose slices were cut to the head's box, each mask is cut to the same box: the frame the
    network saw, so that sizes at the input and heatmap scores line up with the image.
    """
    from .phantom.cohort import read_mask
    from .preprocess import crop_to

    if not getattr(src, "phantom", False):
        return {}
    masks = {i: read_mask(src.folder, i) for i in ids}
    if cache is None or cache.boxes is None:
        return masks
    boxes = {i: tuple(int(v) for v in cache.boxes[cache.row(i)]) for i in ids}
    return {i: {k: crop_to(m, boxes[i], fill=False) for k, m in parts.items()} for i, parts in masks.items()}


def grid_targets(src, cache, cells: int) -> np.ndarray:
    """(n, cells, cells, 1) uint8 targets of a cache's rows (see the module doc); kept beside the cache.

    Raises:
        MasksUnavailable: the source is not the phantom, or the cache has no folder or labels to read them by.
    """
    if not getattr(src, "phantom", False):
        raise MasksUnavailable(f"{getattr(src, 'key', src)}: this data has no bleed masks (real data has none); "
                               "train with mask_weight 0, or start from the phantom's 'masks' backbone")
    if cache.folder is None or cache.labels is None:
        raise MasksUnavailable("mask targets need a cache on disk with labels (ichlib.store.cache)")
    path = Path(cache.folder) / GRID_FILE.format(cells=cells)
    if path.exists():
        return np.load(path, mmap_mode="r")
    targets = np.zeros((len(cache.ids), cells, cells, 1), np.uint8)
    positive = np.flatnonzero(cache.labels[:, ANY] > 0)
    missing = 0
    for start in range(0, len(positive), 256):  # a chunk at a time: the masks of a whole cohort need not fit
        ids = [cache.ids[i] for i in positive[start:start + 256]]
        for row, image_id in zip(positive[start:start + 256], ids):
            parts = frame_masks(src, [image_id], cache).get(image_id, {})
            if not parts:
                missing += 1
                continue
            targets[row, :, :, 0] = mask_to(np.logical_or.reduce(list(parts.values())), cells)
    if missing:  # a positive slice without its mask file teaches "no blood": say how many
        logging.getLogger(__name__).warning("%s: %d of %d positive slices have no mask file; their targets are empty",
                                            src.key, missing, len(positive))
    tmp = path.with_name(path.name + ".part.npy")
    np.save(tmp, targets)
    os.replace(tmp, path)
    return targets

