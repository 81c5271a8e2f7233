"""What a network sees in each step: the order of an epoch's images (half positive, negatives matched to the
positives' levels where asked) and the batches read from the cache.

``epoch_order`` is plain NumPy (``ichlib.levelprior`` counts what it showed); ``batches_class`` returns the Keras
``PyDataset`` that serves it, built on first use so that importing this module needs no backend.
"""

from __future__ import annotations

import numpy as np

from .labels import ANY

INFERENCE_BATCH = 64  # images per predict call: no gradients are kept, so a larger batch costs little memory


def epoch_order(rows: np.ndarray, positive: np.ndarray, positive_fraction: float,
                rng: np.random.Generator, size: int | None = None, strata: np.ndarray | None = None) -> np.ndarray:
    """One training epoch's rows, shuffled: ``size`` of them (default: as many as ``rows``).

    With ``positive_fraction`` > 0, that share is drawn from the positive rows (cycling through them,
    reshuffled, as often as needed) and the rest from the negative rows, without repeats while they last, so a
    rare label is seen often enough in a short run.

    With ``strata`` (one level stratum per row, ``ichlib.level.slice_levels``), the negatives are drawn with the
    positives' distribution over the strata: as many negatives from each tenth of the series as that tenth's
    share of the positives asks for. The level then no longer tells a positive from a negative in training, so
    a model can only lower its loss by looking at the slice. A stratum with positives and no negative gives its
    share to the negatives at large. (Without ``positive_fraction``, positives keep their natural share.)
    """
    rows = np.asarray(rows)
    size = len(rows) if not size else int(size)

    def draw(pool: np.ndarray, n: int) -> np.ndarray:
        if n <= 0:
            return pool[:0]
        cycles = -(-n // len(pool))
        return np.concatenate([rng.permutation(pool) for _ in range(cycles)])[:n]

    pos, neg = rows[positive], rows[~positive]
    if len(pos) == 0 or len(neg) == 0 or (positive_fraction <= 0 and strata is None):
        return draw(rows, size)
    share = positive_fraction if positive_fraction > 0 else len(pos) / len(rows)
    n_pos = min(max(1, int(round(share * size))), size - 1)
    if strata is None:
        negatives = draw(neg, size - n_pos)
    else:
        negatives = level_matched(neg, np.asarray(strata)[~positive], np.asarray(strata)[positive], size - n_pos,
                                  draw)
    return rng.permutation(np.concatenate([draw(pos, n_pos), negatives]))


def level_matched(neg: np.ndarray, neg_strata: np.ndarray, pos_strata: np.ndarray, n: int, draw) -> np.ndarray:
    """``n`` negative rows drawn so their strata follow the positives' (largest remainders round the counts)."""
    kinds, counts = np.unique(pos_strata, return_counts=True)
    want = counts / counts.sum() * n
    take = np.floor(want).astype(int)
    take[np.argsort(take - want)[:n - take.sum()]] += 1  # the largest remainders get the rounding
    parts, left = [], 0
    for kind, k in zip(kinds, take):
        pool = neg[neg_strata == kind]
        if len(pool):
            parts.append(draw(pool, k))
        else:
            left += k
    parts.append(draw(neg, left))
    return np.concatenate(parts)


def flip_pairs(images: np.ndarray, masks: np.ndarray | None, rng: np.random.Generator) -> tuple:
    """Each image (and its mask target, when given) flipped left-right and, independently, upside down, each
    with probability one half: the optimised variant's flips, drawn on the batch so a mask follows its image."""
    images = images.copy()
    masks = None if masks is None else masks.copy()
    for k, (lr, ud) in enumerate(rng.random((len(images), 2)) < 0.5):
        for flip, axis in ((lr, 1), (ud, 0)):
            if flip:
                images[k] = np.flip(images[k], axis)
                if masks is not None:
                    masks[k] = np.flip(masks[k], axis)
    return images, masks


def batches_class():
    import keras

    class CacheBatches(keras.utils.PyDataset):
        """Batches of cached images and labels (with ``masks``, per cache row, each batch's targets are
        (labels, mask grid): ``ichlib.masktargets``); reshuffled each epoch from the seed; read ahead by a thread."""

        def __init__(self, images, labels, rows, batch_size, shuffle, seed, positive_fraction=0.0, epoch_size=0,
                     strata=None, masks=None, flips=False, **kwargs):
            super().__init__(**kwargs)
            self.masks, self.flips = masks, flips
            self.strata = None if strata is None else np.asarray(strata)[np.asarray(rows)]  # per cache row given
            self.images, self.labels, self.rows = images, labels, np.asarray(rows)
            self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
            self.positive_fraction = positive_fraction
            self.epoch_size = (epoch_size or len(self.rows)) if shuffle else len(self.rows)
            self._order = self._make_order()

        def _make_order(self):
            if not self.shuffle:
                return self.rows
            return epoch_order(self.rows, self.labels[self.rows, ANY] > 0, self.positive_fraction,
                               np.random.default_rng([self.seed, self.epoch]), self.epoch_size, self.strata)

        def __len__(self):
            return int(np.ceil(self.epoch_size / self.batch_size))

        def __getitem__(self, i):
            rows = np.sort(self._order[i * self.batch_size:(i + 1) * self.batch_size])  # sorted: memmap reads in order
            x, y = self.images[rows].astype(np.float32), self.labels[rows].astype(np.float32)
            m = None if self.masks is None else np.asarray(self.masks[rows], np.float32)
            if self.flips:
                x, m = flip_pairs(x, m, np.random.default_rng([self.seed, self.epoch, i, 17]))
            return (x, y) if m is None else (x, (y, m))

        def on_epoch_end(self):
            self.epoch += 1
            self._order = self._make_order()

    return CacheBatches


