"""ichlib.metrics: against scikit-learn and by hand; undefined where a split has one class."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ichlib.metrics import per_label_auc, weighted_log_loss


def test_per_label_auc_matches_sklearn_and_marks_undefined():
    rng = np.random.default_rng(0)
    y = (rng.random((50, 6)) > 0.6).astype(int)
    y[:, 1] = 0  # epidural absent from this split
    p = rng.random((50, 6))
    auc = per_label_auc(y, p)
    assert auc["any"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    assert np.isnan(auc["epidural"])


def test_weighted_log_loss_by_hand():
    y = np.array([[1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]])
    p = np.array([[0.8, 0.1, 0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])
    first = (2 * -np.log(0.8) + 4 * -np.log(0.9) + -np.log(0.7)) / 7
    second = (2 * -np.log(0.9) + 5 * -np.log(0.9)) / 7
    assert weighted_log_loss(y, p) == pytest.approx((first + second) / 2)
    assert np.isfinite(weighted_log_loss(y, 1 - y))  # certain and wrong: clipped, not infinite


def test_scores_match_sklearn_per_label_and_micro():
    from sklearn.metrics import f1_score

    from ichlib.metrics import scores

    rng = np.random.default_rng(1)
    y = (rng.random((80, 6)) > 0.7).astype(int)
    p = np.clip(y * 0.5 + rng.random((80, 6)) * 0.6, 0, 1)
    table = scores(y, p, 0.5)
    assert table.at["any", "F1"] == pytest.approx(f1_score(y[:, 0], p[:, 0] >= 0.5))
    assert table.at["micro", "F1"] == pytest.approx(f1_score(y.ravel(), p.ravel() >= 0.5))
    assert table.at["macro", "recall"] == pytest.approx(table.loc[list(table.index[:6]), "recall"].mean())


def test_undefined_is_nan_not_a_crash():
    from ichlib.metrics import scores

    y = np.zeros((10, 6), int)
    y[:3, 0] = 1
    p = np.full((10, 6), 0.1)
    table = scores(y, p)
    assert np.isnan(table.at["epidural", "AUC"]) and np.isnan(table.at["any", "precision"])


def test_thresholds_come_from_validation_only():
    from ichlib.metrics import choose_thresholds

    y_val = np.zeros((6, 6), int)
    y_val[:3, 0] = 1
    p_val = np.tile(np.array([[0.9], [0.8], [0.35], [0.3], [0.2], [0.1]]), (1, 6))
    cut = choose_thresholds(y_val, p_val)
    assert cut[0] == pytest.approx(0.35)  # the lowest cut that keeps every positive and no negative
    assert (cut[1:] == 0.5).all()  # labels with one class in validation keep 0.5


def test_bootstrap_resamples_patients_not_slices():
    from ichlib.metrics import bootstrap_ci

    # patient A: 98 images all predicted right; patient B: 2 images, both wrong
    y = np.array([[1]] * 49 + [[0]] * 49 + [[1], [0]])
    p = np.array([[0.9]] * 49 + [[0.1]] * 49 + [[0.1], [0.9]])
    patients = ["A"] * 98 + ["B"] * 2
    accuracy = lambda t, q: float(((q >= 0.5) == t).mean())  # noqa: E731
    low, high = bootstrap_ci(y, p, patients, accuracy, n=400, seed=0)
    # Two patients drawn with replacement: AA (accuracy 1.0), AB (0.98) or BB (0.0), each BB a quarter of the
    # time: the interval is as wide as two patients make it. Resampling slices would pretend to 100 witnesses.
    assert low == pytest.approx(0.0) and high == pytest.approx(1.0)
    by_slice = bootstrap_ci(y, p, np.arange(100), accuracy, n=400, seed=0)
    assert by_slice[0] > 0.9 and by_slice[1] <= 1.0


def test_evaluate_picks_thresholds_on_validation_whatever_the_test_split_says():
    from ichlib.metrics import evaluate

    rng = np.random.default_rng(2)
    y_val = (rng.random((60, 6)) > 0.6).astype(int)
    p_val = np.clip(y_val * 0.4 + rng.random((60, 6)) * 0.6, 0, 1)
    y_test = (rng.random((40, 6)) > 0.6).astype(int)
    first = evaluate(y_val, p_val, y_test, rng.random((40, 6)))
    second = evaluate(y_val, p_val, 1 - y_test, rng.random((40, 6)))
    assert first["thresholds"].equals(second["thresholds"])
    assert not first["at 0.5"].equals(second["at 0.5"])


def test_confusion_counts_and_roc_curves():
    from sklearn.metrics import roc_auc_score

    from ichlib.metrics import confusion, roc_curves

    y = np.zeros((6, 6), int)
    y[:2, 0] = 1
    p = np.tile(np.array([[0.9], [0.4], [0.6], [0.1], [0.2], [0.3]]), (1, 6))
    table = confusion(y, p, 0.5)
    assert table.loc["any"].to_dict() == {"TN": 3, "FP": 1, "FN": 1, "TP": 1}
    assert table.loc["epidural"].to_dict() == {"TN": 4, "FP": 2, "FN": 0, "TP": 0}
    curves = roc_curves(y, p)
    assert list(curves) == ["any"] and curves["any"][2] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))


def test_paired_bootstrap_matches_a_hand_computation():
    """Three patients, four draws: the interval is the percentiles of the per-draw differences on shared draws."""
    from ichlib.metrics import paired_bootstrap

    y = np.array([1, 0, 1, 0, 1, 0])
    a = np.array([0.9, 0.1, 0.8, 0.3, 0.6, 0.4])  # ranks every positive above every negative
    b = np.array([0.6, 0.5, 0.4, 0.7, 0.9, 0.2])
    patients = np.array(["p", "p", "q", "q", "r", "r"])
    auc = lambda t, s: roc_auc_score(t, s)  # noqa: E731
    result = paired_bootstrap(y, a, b, patients, auc, n=4, seed=5, level=0.5)
    rng = np.random.default_rng(5)
    rows = {0: [0, 1], 1: [2, 3], 2: [4, 5]}  # np.unique order: p, q, r
    diffs = []
    for _ in range(4):
        pick = [r for k in rng.integers(0, 3, 3) for r in rows[k]]
        diffs.append(auc(y[pick], a[pick]) - auc(y[pick], b[pick]))
    assert result["difference"] == pytest.approx(auc(y, a) - auc(y, b))
    assert (result["low"], result["high"]) == pytest.approx(tuple(np.percentile(diffs, [25, 75])))


def test_paired_bootstrap_verdicts():
    from ichlib.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(60), 10)
    y = rng.integers(0, 2, 600)
    good = y * 0.6 + rng.uniform(0, 0.5, 600)
    noise = rng.uniform(0, 1, 600)
    assert paired_bootstrap(y, good, noise, patients, roc_auc_score, n=200)["verdict"] == "better"
    assert paired_bootstrap(y, noise, good, patients, roc_auc_score, n=200)["verdict"] == "worse"
    same = paired_bootstrap(y, good, good, patients, roc_auc_score, n=50)
    assert same["difference"] == 0 and same["low"] == same["high"] == 0 and same["verdict"] == "cannot tell"


def test_auc_is_undefined_with_one_class():
    from ichlib.metrics import auc_or_nan

    assert np.isnan(auc_or_nan(np.zeros(4), np.arange(4.0)))
    assert auc_or_nan(np.array([0, 0, 1, 1]), np.arange(4.0)) == 1.0


def test_vectorised_bootstrap_aucs_equal_the_loop_over_the_same_draws():
    from sklearn.metrics import roc_auc_score

    from ichlib.metrics import auc_or_nan, bootstrap_aucs, bootstrap_ci, patient_draws

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) * 20) / 20 + 0.3 * y  # many ties
    patients = [f"p{i // 7}" for i in range(300)]
    loop = [roc_auc_score(y[pick], score[pick]) if len(set(y[pick])) == 2 else np.nan
            for pick in patient_draws(patients, 50, 4)]
    np.testing.assert_allclose(bootstrap_aucs(y, score, patients, 50, 4), loop, atol=1e-12)
    single = np.r_[np.ones(7), np.zeros(293)].astype(int)  # one positive patient: some draws miss it
    assert np.isnan(bootstrap_aucs(single, score, patients, 50, 4)).any()
    low, high = bootstrap_ci(y, score, patients, auc_or_nan, 200, 0)
    assert low < auc_or_nan(y, score) < high


# ------------------------------------------------------------------------------------- level-matched AUC
def test_matched_auc_of_a_score_that_knows_only_the_level_is_one_half():
    from ichlib.metrics import matched_auc, matched_aucs

    rng = np.random.default_rng(2)
    strata = rng.integers(0, 10, 500)
    y = rng.random(500) < np.where((strata > 2) & (strata < 8), 0.4, 0.05)  # the level predicts the label
    by_level = -np.abs(strata - 5) * 0.1  # a function of the level alone: highest mid-series
    assert roc_auc_score(y, by_level) > 0.65  # plain AUC rewards it...
    assert matched_auc(y, by_level, strata) == 0.5  # ...the matched AUC, exactly not
    weights = rng.integers(0, 3, (20, 500)).astype(float)  # bootstrap-like draws: still 0.5 in every one
    assert np.allclose(matched_aucs(y, by_level, strata, weights), 0.5)


def test_matched_auc_is_one_for_a_score_that_separates_within_every_level_even_if_not_across():
    from ichlib.metrics import matched_auc

    rng = np.random.default_rng(3)
    strata = np.repeat(np.arange(10), 40)
    y = rng.random(400) < 0.3
    score = np.where(y, 1.0, 0.0) - strata  # right within each level, badly ordered across levels
    assert roc_auc_score(y, score) < 0.8
    assert matched_auc(y, score, strata) == 1.0


def test_matched_auc_by_hand_weights_strata_by_positives_and_drops_one_class_strata():
    from ichlib.metrics import matched_auc

    # stratum 0: positives 0.9, 0.2 against negative 0.5 -> 1/2; stratum 1: positive 0.8 against 0.1, 0.9 -> 1/2
    # stratum 2: a positive without negatives (no pair to rank: dropped); stratum 3: negatives only
    strata = np.array([0, 0, 0, 1, 1, 1, 2, 3, 3])
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0])
    s = np.array([0.9, 0.2, 0.5, 0.8, 0.1, 0.9, 0.0, 0.3, 0.3])
    assert matched_auc(y, s, strata) == pytest.approx((2 * 0.5 + 1 * 0.5) / 3)
    s[1] = 0.6  # stratum 0 now ranks both positives right: (2 * 1 + 1 * 0.5) / 3
    assert matched_auc(y, s, strata) == pytest.approx(2.5 / 3)
    assert np.isnan(matched_auc(y[6:], s[6:], strata[6:]))  # no stratum holds both classes


def test_matched_auc_with_one_stratum_is_the_plain_auc_and_its_interval_resamples_patients():
    from ichlib.metrics import bootstrap_ci, auc_or_nan, matched_auc, matched_ci

    rng = np.random.default_rng(4)
    y = rng.random(300) < 0.3
    s = y + rng.normal(0, 1, 300)
    patients = np.repeat(np.arange(30), 10)
    assert matched_auc(y, s, np.zeros(300)) == pytest.approx(roc_auc_score(y, s))
    assert matched_ci(y, s, np.zeros(300), patients, 200, 0) == pytest.approx(
        bootstrap_ci(y, s, patients, auc_or_nan, 200, 0))


def test_paired_matched_says_better_for_the_model_that_sees_more_than_the_level():
    from ichlib.metrics import paired_matched

    rng = np.random.default_rng(5)
    strata = rng.integers(0, 10, 2000)
    y = rng.random(2000) < np.where((strata > 2) & (strata < 8), 0.4, 0.05)
    level_only = strata + rng.normal(0, 0.01, 2000)
    sees_blood = y * 1.5 + rng.normal(0, 1, 2000)
    r = paired_matched(y, sees_blood, level_only, strata, np.arange(2000) // 10, 300, 0)
    assert r["verdict"] == "better" and r["b"] == pytest.approx(0.5, abs=0.05)
