"""ichlib.ensemble: the three ensembles by hand (vote ties included), the subset search, the study read-out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import ensemble


def stack(*rows):
    """Models x 1 image x 6 labels from one row of six probabilities per model."""
    return np.array([[r] for r in rows], float)


def test_average_is_the_mean_probability():
    probs = stack([0.2] * 6, [0.4] * 6, [0.9] * 6)
    np.testing.assert_allclose(ensemble.average(probs), [[0.5] * 6])


def test_vote_is_the_majority_and_ties_are_positive():
    three = stack([0.6, 0.1, 0.6, 0.1, 0.9, 0.2], [0.6, 0.6, 0.1, 0.1, 0.1, 0.2], [0.1, 0.6, 0.1, 0.1, 0.1, 0.2])
    np.testing.assert_array_equal(ensemble.vote(three), [[1, 1, 0, 0, 0, 0]])
    four = stack([0.9] * 6, [0.8] * 6, [0.1] * 6, [0.2] * 6)  # two for, two against
    np.testing.assert_array_equal(ensemble.vote(four), [[1] * 6])
    np.testing.assert_allclose(ensemble.vote_share(four), [[0.5] * 6])
    per_model = np.array([[0.95] * 6, [0.5] * 6, [0.5] * 6, [0.5] * 6])  # model 0 needs 0.95: votes no
    np.testing.assert_allclose(ensemble.vote_share(four, per_model), [[0.25] * 6])


def test_weighted_uses_normalised_weights_and_refuses_bad_ones():
    probs = stack([0.0] * 6, [1.0] * 6)
    np.testing.assert_allclose(ensemble.weighted(probs, [1, 3]), [[0.75] * 6])
    np.testing.assert_allclose(ensemble.weighted(probs, [2, 6]), [[0.75] * 6])
    for bad in ([1], [0, 0], [-1, 2]):
        with pytest.raises(ValueError, match="weight per model"):
            ensemble.weighted(probs, bad)
    with pytest.raises(ValueError, match="models, images, 6"):
        ensemble.average(np.zeros((2, 3)))


def test_accuracies_pool_every_decision():
    y = np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    probs = np.array([np.where(y, 0.9, 0.1), np.full((2, 6), 0.9)])
    np.testing.assert_allclose(ensemble.accuracies(y, probs), [1.0, 1 / 12])


def test_the_search_finds_a_planted_best_subset():
    rng = np.random.default_rng(0)
    n_models, n_images = 12, 300
    y = (rng.random((n_images, 6)) > 0.7).astype(float)
    probs = rng.random((n_models, n_images, 6))  # ten useless models
    signal = y + rng.normal(0, 0.8, (2, n_images, 6))  # two weak but independent ones
    probs[[3, 8]] = 1 / (1 + np.exp(-signal))
    names = [f"m{k}" for k in range(n_models)]
    table = ensemble.search(probs, y, names, "average", "AUC any")
    assert len(table) == 2 ** 12 - 1
    assert table.iloc[0]["models"] == "m3 + m8" and table.iloc[0]["size"] == 2
    mask = table.attrs["masks"][0]
    assert mask.sum() == 2 and mask[3] and mask[8]
    from sklearn.metrics import roc_auc_score

    assert table.iloc[0]["AUC any"] == pytest.approx(roc_auc_score(y[:, 0], probs[[3, 8]].mean(axis=0)[:, 0]))
    loss = ensemble.search(probs, y, names, "weighted", "RSNA log loss", weights=np.ones(n_models))
    assert loss["RSNA log loss"].is_monotonic_increasing
    votes = ensemble.search(probs, y, names, "vote", "mean AUC")
    assert votes["mean AUC"].iloc[0] >= votes["mean AUC"].iloc[-1]


def test_search_refuses_unknown_methods_and_metrics():
    probs = np.zeros((2, 4, 6))
    with pytest.raises(ValueError, match="method 'median'"):
        ensemble.search(probs, np.zeros((4, 6)), ["a", "b"], "median")
    with pytest.raises(ValueError, match="metric 'F2'"):
        ensemble.search(probs, np.zeros((4, 6)), ["a", "b"], metric="F2")


def test_study_level_takes_the_max_over_slices():
    ids = ["i1", "i2", "i3", "i4"]
    y = np.zeros((4, 6))
    y[1, [0, 5]] = 1
    p = np.array([[0.1] * 6, [0.7] * 6, [0.2] * 6, [0.3] * 6])
    study_of = pd.Series({"i1": "s1", "i2": "s1", "i3": "s2", "i4": "s2"})
    studies, truth, prob = ensemble.study_level(ids, y, p, study_of)
    assert list(studies) == ["s1", "s2"]
    np.testing.assert_array_equal(truth[:, 0], [1, 0])
    np.testing.assert_allclose(prob[:, 0], [0.7, 0.3])
    with pytest.raises(KeyError, match="i9"):
        ensemble.study_level(["i9"], y[:1], p[:1], study_of)


def test_combine_by_name():
    probs = stack([0.2] * 6, [0.8] * 6)
    np.testing.assert_allclose(ensemble.combine("average", probs), [[0.5] * 6])
    np.testing.assert_allclose(ensemble.combine("vote", probs), [[0.5] * 6])  # the vote share
    np.testing.assert_allclose(ensemble.combine("weighted", probs, weights=[3, 1]), [[0.35] * 6])
    with pytest.raises(ValueError, match="needs weights"):
        ensemble.combine("weighted", probs)
    with pytest.raises(ValueError, match="'max'"):
        ensemble.combine("max", probs)


def test_study_thresholds_keep_normal_studies_normal_where_slice_thresholds_do_not():
    """Known answer: 30 slices a study, negatives' slices around 0.25 and a positive study's bleed slices around
    0.5. The highest of 30 negative slices sits near 0.45, above the threshold chosen on single slices, so that
    rule flags most normal studies; the threshold chosen on the validation studies flags few, on new studies too."""
    from ichlib.ensemble import study_level, study_thresholds
    from ichlib.metrics import choose_thresholds

    def split(seed):
        rng = np.random.default_rng(seed)
        ids, study, truth, probs = [], {}, [], []
        for s in range(80):
            sick = s % 2 == 0
            for k in range(30):
                bleed = sick and 5 <= k < 25
                image = f"ID_{seed}_{s}_{k}"
                ids.append(image)
                study[image] = f"S{seed}_{s}"
                truth.append([int(bleed)] * 6)
                probs.append(np.clip(rng.normal(0.5 if bleed else 0.25, 0.1, 6), 0, 1))
        return ids, np.array(truth), np.array(probs), pd.Series(study)

    val, test = split(0), split(1)
    per_slice = choose_thresholds(val[1], val[2])
    per_study = study_thresholds(*val)
    _, y_test, p_test = study_level(*test)
    normal = y_test[:, 0] == 0
    assert (p_test[normal, 0] >= per_slice[0]).mean() > 0.5  # the slice rule flags most normal studies
    assert (p_test[normal, 0] >= per_study[0]).mean() < 0.2
    assert (p_test[~normal, 0] >= per_study[0]).mean() > 0.8  # and still finds the sick ones
