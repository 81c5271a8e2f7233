"""ichlib.pointers: the density pointer finds the brightest place off the bone, the random pointer stays in the
head, and a mask head is scored on its cells."""

from __future__ import annotations

import numpy as np

from ichlib.localisation import pointing_game
from ichlib.pointers import density_maps, head_region, random_maps


def head_with_bone_and_blob(size=48):
    """A disc of brain (value 90) inside a ring of bone (255), with a brighter blob (200) and one noisy pixel."""
    r, c = np.mgrid[:size, :size]
    d = np.hypot(r - size / 2, c - size / 2)
    image = np.zeros((size, size), np.uint8)
    image[d < 20] = 255
    image[d < 17] = 90
    image[20:24, 12:16] = 200
    image[30, 30] = 250  # one pixel, brighter than the blob: the 3 x 3 mean must not follow it
    blob = np.zeros((size, size), bool)
    blob[20:24, 12:16] = True
    return image, blob


def test_the_density_pointer_finds_the_blob_not_the_bone_nor_one_noisy_pixel():
    image, blob = head_with_bone_and_blob()
    heat = density_maps(image[None])[0]
    assert heat.max() == 1.0 and pointing_game(heat, blob, tolerance=0)
    assert heat[image == 255].max() == 0  # the skull never wins


def test_the_random_pointer_lands_inside_the_head_once_per_slice_and_repeats_from_its_seed():
    image, _ = head_with_bone_and_blob()
    maps = random_maps(np.stack([image] * 20), seed=3)
    assert (maps.reshape(20, -1).sum(axis=1) == 1).all()
    assert head_region(image)[maps.max(axis=0) > 0].all()
    assert np.array_equal(maps, random_maps(np.stack([image] * 20), seed=3))
    assert not np.array_equal(maps, random_maps(np.stack([image] * 20), seed=4))


def test_a_blank_slice_gives_blank_pointers():
    blank = np.zeros((1, 16, 16), np.uint8)
    assert not density_maps(blank).any() and not random_maps(blank).any()


def test_mask_scores_read_the_cells_and_the_largest_one(monkeypatch):
    from types import SimpleNamespace

    import pandas as pd

    from ichlib import pointers

    truth = np.zeros((4, 2, 2, 1), np.uint8)
    truth[0, 0, 0] = truth[1, 1, 1] = 1
    logits = np.full((4, 2, 2), -3.0, np.float32)
    logits[0, 0, 0], logits[1, 1, 1], logits[2, 0, 1] = 2.0, 1.0, -1.0  # one false alarm below zero
    monkeypatch.setattr(pointers, "mask_logits", lambda model, images: logits)
    labels = np.zeros((4, 6), np.int8)
    labels[:2, 0] = 1
    cache = SimpleNamespace(images=np.zeros((4, 8, 8, 3), np.uint8), ids=list("abcd"), labels=labels)
    scores = pointers.mask_scores(None, cache, np.arange(4), truth, pd.Series(0, index=list("abcd")))
    assert scores == {"val cell AUC": 1.0, "val Dice": 1.0, "val mask matched AUC any": 1.0}
