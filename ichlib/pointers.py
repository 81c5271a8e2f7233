"""Where in a slice a score points, beside the explanation of a network: the trivial pointers a heatmap's
localisation is read against, and the mask head's own map.

A pointing game of 40 % means little alone: a bleed is bright, so the brightest pixel may find it as often. Each
pointer here gives one heatmap per slice (n, rows, cols) on the network's own input, scored like Grad-CAM's by
``ichlib.localisation``:

- **density**: the slice's brightest place in the brain window inside the head, away from bone (saturated
  pixels and their neighbours are left out, or the skull would win every slice), after a 3 x 3 mean so one
  noisy pixel cannot; its map is that smoothed brightness, zero elsewhere. It reads no label and no model.
- **random**: one pixel drawn uniformly inside the head, from the seed: chance for the pointing game.
- **mask**: a network's own predicted mask (``ichlib.models``, ``mask_head=True``), the sigmoid of its logits
  enlarged to the input; where it was trained on masks, the map it learnt to draw.

``mask_scores`` scores a mask head on the cells it predicts (cell AUC, Dice) and its largest cell as the slice's
score (level-matched, as the book reads every score).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation, binary_fill_holes, uniform_filter

SATURATED = 255  # the cache's top value: bone in the brain window
DENSITY, RANDOM = "density pointer", "random pointer"  # how a page names the two trivial pointers


def head_region(channel: np.ndarray) -> np.ndarray:
    """The head in one brain-window image (uint8): every pixel brighter than air, holes filled."""
    return binary_fill_holes(np.asarray(channel) > 0)


def density_maps(channels: np.ndarray) -> np.ndarray:
    """The density pointer of each brain-window image (n, rows, cols): see the module doc."""
    out = np.zeros(np.shape(channels), np.float32)
    for k, channel in enumerate(np.asarray(channels)):
        bone = binary_dilation(channel >= SATURATED, iterations=1)
        allowed = head_region(channel) & ~bone
        smooth = uniform_filter(channel.astype(np.float32), size=3)
        out[k] = np.where(allowed, smooth, 0.0)
        out[k] /= max(float(out[k].max()), 1e-12)
    return out


def random_maps(channels: np.ndarray, seed: int = 0) -> np.ndarray:
    """The random pointer of each image (n, rows, cols): a 1 at one pixel drawn inside the head, 0 elsewhere."""
    rng = np.random.default_rng([seed, 11])
    out = np.zeros(np.shape(channels), np.float32)
    for k, channel in enumerate(np.asarray(channels)):
        inside = np.flatnonzero(head_region(channel).ravel())
        if len(inside):
            out[k].flat[rng.choice(inside)] = 1.0
    return out


def mask_logits(model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The mask head's logits of each image, (n, cells, cells)."""
    from .models import mask_model

    x = np.asarray(images, np.float32)
    return np.asarray(mask_model(model).predict(x, batch_size=batch_size, verbose=0), np.float32)[..., 0]


def mask_maps(model, images: np.ndarray) -> np.ndarray:
    """The mask pointer of each image: the predicted mask's probabilities enlarged (bilinear) to the input."""
    from PIL import Image

    probs = 1 / (1 + np.exp(-mask_logits(model, images)))
    size = np.shape(images)[1:3]
    return np.stack([np.asarray(Image.fromarray(p).resize(size[::-1], Image.Resampling.BILINEAR))
                     for p in probs]).astype(np.float32) if len(probs) else np.zeros((0, *size), np.float32)


def mask_scores(model, cache, rows: np.ndarray, targets: np.ndarray, strata=None) -> dict:
    """A mask head's validation scores on cache ``rows`` against the true grid ``targets`` (per cache row):
    ``val cell AUC`` (every cell of every slice as a pixel classifier), ``val Dice`` (cells at p >= 0.5 against
    the true cells, over all slices) and, with ``strata`` (per image ID), ``val mask matched AUC any`` (the
    largest cell as the slice's score, each positive against the negatives of its own tenth)."""
    from sklearn.metrics import roc_auc_score

    from .labels import ANY
    from .metrics import matched_auc

    logits = mask_logits(model, cache.images[rows])
    truth = np.asarray(targets[rows])[..., 0] > 0
    predicted = logits >= 0
    overlap = float((predicted & truth).sum())
    dice = 2 * overlap / max(float(predicted.sum() + truth.sum()), 1.0)
    cells = roc_auc_score(truth.ravel(), logits.ravel()) if 0 < truth.mean() < 1 else np.nan
    scores = {"val cell AUC": round(float(cells), 4), "val Dice": round(dice, 4)}
    if strata is not None:
        ids = [cache.ids[i] for i in rows]
        top = logits.reshape(len(rows), -1).max(axis=1)
        scores["val mask matched AUC any"] = round(matched_auc(cache.labels[rows, ANY], top,
                                                               strata.reindex(ids).to_numpy()), 4)
    return scores
