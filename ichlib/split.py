"""The split by patient: every image to "train", "val" or "test", so that no patient is in two splits.

The paper split its 200,000 images 81 / 9 / 10 by image, so slices of one patient (near copies of each other)
could sit in both training and test. Here the split is by patient, as the top RSNA solutions did; it needs no
deep-learning backend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import SUBTYPES

SPLITS = ("train", "val", "test")
PAPER_FRACTIONS = (0.81, 0.09, 0.10)


def split_fractions(test_fraction: float = PAPER_FRACTIONS[2]) -> tuple[float, float, float]:
    """(train, validation, test) shares with the paper's 9 % validation and the given test share."""
    return (round(1 - PAPER_FRACTIONS[1] - test_fraction, 6), PAPER_FRACTIONS[1], test_fraction)


def split_by_patient(index: pd.DataFrame, seed: int, labels: pd.DataFrame | None = None,
                     fractions: tuple[float, float, float] = PAPER_FRACTIONS) -> pd.Series:
    """Assign every image to "train", "val" or "test" so that no patient is in two splits.

    Patients with a subtype are dealt out first, rarest subtype first: while a split has none of that subtype's
    patients it gets the next one (so every split has every subtype once there are three such patients), then
    each goes where it is furthest below its share. The other patients then fill the splits towards their
    shares of images. With three patients or more, no split is left empty.

    Args:
        index: indexed by image ID, with a ``patient`` column (``ichlib.rsna.index_dicoms``).
        seed: the only source of randomness: the same seed gives the same split.
        labels: ``ichlib.rsna.read_labels`` output, for stratifying by subtype; without it, patients are dealt
            by image counts alone.
        fractions: shares of images for train, val, test.

    Returns:
        Series indexed like ``index``, values in :data:`SPLITS`.
    """
    if len(fractions) != 3 or not np.isclose(sum(fractions), 1) or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive shares summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    patients = index.groupby("patient", sort=True).size()
    patients = patients.iloc[rng.permutation(len(patients))]
    target = np.asarray(fractions) * patients.sum()
    images = np.zeros(3)
    split_of: dict[str, int] = {}

    def assign(patient: str, split: int) -> None:
        split_of[patient] = split
        images[split] += patients[patient]

    if labels is not None:
        known = labels.loc[labels.index.intersection(index.index)]
        positive = known[list(SUBTYPES)].groupby(index.loc[known.index, "patient"]).max()
        for subtype in sorted(SUBTYPES, key=lambda s: positive[s].sum()):
            cases = [p for p in patients.index if p in positive.index and positive.at[p, subtype]]
            share = np.asarray(fractions) * len(cases)
            count = np.array([sum(split_of.get(p) == k for p in cases) for k in range(3)], float)
            for patient in cases:
                if patient in split_of:
                    continue
                empty = [k for k in (2, 1, 0) if count[k] == 0]  # the small splits first
                k = empty[0] if empty and len(cases) >= 3 else int(np.argmax(share - count))
                assign(patient, k)
                count[k] += 1
    if labels is not None:  # every split gets a patient with a bleed once there are three (a small download)
        _bleed_in_every_split(patients, positive, split_of, images, assign)
    for patient in patients.index:
        if patient not in split_of:
            assign(patient, int(np.argmax(target - images)))
    while len(patients) >= 3 and (images == 0).any():  # a tiny cohort: no split may stay empty
        members = [[p for p, k in split_of.items() if k == s] for s in range(3)]
        donor = int(np.argmax([len(m) for m in members]))
        moved = min(members[donor], key=lambda p: (patients[p], p))
        images[donor] -= patients[moved]
        assign(moved, int(np.flatnonzero(images == 0)[0]))
    return index["patient"].map(lambda p: SPLITS[split_of[p]]).rename("split")


def _bleed_in_every_split(patients: pd.Series, positive: pd.DataFrame, split_of: dict, images: np.ndarray,
                          assign) -> None:
    """Move a patient with a bleed into validation, then test, where either has none and there are three such
    patients or more: the one with the fewest images from the split that holds the most of them."""
    sick = [p for p in patients.index if p in positive.index and positive.loc[p].any()]
    for k in (2, 1):
        holders = [[p for p in sick if split_of.get(p) == s] for s in range(3)]
        if len(sick) >= 3 and not holders[k]:
            donor = int(np.argmax([len(h) for h in holders]))
            moved = min(holders[donor], key=lambda p: (patients[p], p))
            images[donor] -= patients[moved]
            assign(moved, k)


