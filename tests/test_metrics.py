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
