"""ichlib.split: no patient in two splits, every subtype in every split, the same split from the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib.labels import LABELS, SUBTYPES
from ichlib.split import SPLITS, split_by_patient


def fake_data(n_patients=400, seed=0):
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for p in range(n_patients):
        n = int(rng.integers(20, 40))
        subtype = rng.choice([None, *SUBTYPES], p=[0.6, 0.02, 0.1, 0.08, 0.1, 0.1])
        for k in range(n):
            image = f"ID_{p:04x}{k:05x}"
            rows.append({"ID": image, "patient": f"ID_p{p}"})
            positive = subtype is not None and 5 <= k < 9
            labels.append({"ID": image, **{s: int(positive and s == subtype) for s in SUBTYPES}, "any": int(positive)})
    index = pd.DataFrame(rows).set_index("ID")
    return index, pd.DataFrame(labels).set_index("ID")[list(LABELS)]


def test_no_patient_in_two_splits_and_proportions_hold():
    index, labels = fake_data()
    split = split_by_patient(index, seed=0, labels=labels)
    assert set(split) == set(SPLITS) and split.index.equals(index.index)
    assert (split.groupby(index["patient"]).nunique() == 1).all()
    shares = split.value_counts(normalize=True)
    for name, fraction in zip(SPLITS, (0.81, 0.09, 0.10)):
        assert shares[name] == pytest.approx(fraction, abs=0.02)


def test_every_split_has_every_subtype():
    index, labels = fake_data(n_patients=120, seed=1)
    split = split_by_patient(index, seed=3, labels=labels)
    patients = labels[list(SUBTYPES)].groupby(index["patient"]).max().sum()
    allowed = [s for s in SUBTYPES if patients[s] >= 3]  # "where the cohort allows": three patients or more
    assert len(allowed) == 4 and patients["epidural"] < 3
    for name in SPLITS:
        present = labels[split == name][allowed].sum()
        assert (present > 0).all(), f"{name} lacks {list(present[present == 0].index)}"


def test_same_seed_same_split_other_seed_other_split():
    index, labels = fake_data(n_patients=100)
    a = split_by_patient(index, seed=7, labels=labels)
    assert a.equals(split_by_patient(index, seed=7, labels=labels))
    assert not a.equals(split_by_patient(index, seed=8, labels=labels))
    assert split_by_patient(index, seed=7).groupby(index["patient"]).nunique().max() == 1  # without labels too


def test_a_tiny_cohort_still_fills_every_split():
    index, labels = fake_data(n_patients=4, seed=2)
    split = split_by_patient(index, seed=0, labels=labels)
    assert set(split) == set(SPLITS)


def test_bad_fractions():
    index, _ = fake_data(n_patients=5)
    with pytest.raises(ValueError, match="fractions"):
        split_by_patient(index, seed=0, fractions=(0.5, 0.5, 0.5))


# ------------------------------------------------------------------------------------------------ fitting
def test_a_small_download_still_puts_a_bleed_in_validation_and_test():
    """Twelve patients, four with a bleed, each of another subtype (too rare to deal out alone): every split
    gets a patient with a bleed, so the test split has AUCs to report."""
    rows, labels = [], []
    for p in range(12):
        subtype = SUBTYPES[p] if p < 4 else None
        for k in range(30):
            image = f"ID_{p:04x}{k:05x}"
            rows.append({"ID": image, "patient": f"ID_p{p}"})
            positive = subtype is not None and 10 <= k < 14
            labels.append({"ID": image, **{s: int(positive and s == subtype) for s in SUBTYPES}, "any": int(positive)})
    index, labels = pd.DataFrame(rows).set_index("ID"), pd.DataFrame(labels).set_index("ID")[list(LABELS)]
    for seed in range(5):
        split = split_by_patient(index, seed=seed, labels=labels)
        for name in SPLITS:
            assert labels.loc[split == name, "any"].sum() > 0, f"seed {seed}: no bleed in {name}"
        assert (split.groupby(index["patient"]).nunique() == 1).all()
