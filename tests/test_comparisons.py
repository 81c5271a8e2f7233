"""ichlib.comparisons: patient-bootstrap intervals, paired comparisons and the headline, on known predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import comparisons, tables
from ichlib.runs import write_predictions


def split_of(prefix, studies, rng):
    """Hand-made predictions of one split: ``studies`` maps study -> (patient, slices)."""
    ids, index_rows = [], []
    for study, (patient, n) in studies.items():
        for k in range(n):
            ids.append(f"ID_{prefix}{study}{k}")
            index_rows.append({"ID": ids[-1], "patient": patient, "study": study})
    truth = (rng.random((len(ids), 6)) > 0.5).astype(int)
    probs = np.clip(0.6 * truth + 0.4 * rng.random(truth.shape), 0, 1)
    return tables.Predictions(["m"], pd.Index(ids), truth, probs[None]), pd.DataFrame(index_rows).set_index("ID")



def test_headline_gives_intervals_per_label_and_for_the_log_loss():
    rng = np.random.default_rng(1)
    y = (rng.random((120, 6)) > 0.7).astype(int)
    y[:, 1] = 0  # no epidural in this split
    p = np.clip(y * 0.5 + rng.random((120, 6)) * 0.5, 0, 1)
    patients = np.repeat(np.arange(12), 10)
    out = comparisons.headline(y, p, 0.5, patients, n_boot=200)
    table = out["labels"]
    assert (table["AUC 95% low"].drop("epidural") <= table["AUC"].drop("epidural")).all()
    assert (table["AUC"].drop("epidural") <= table["AUC 95% high"].drop("epidural")).all()
    assert np.isnan(table.at["epidural", "AUC 95% low"]) and table.at["epidural", "positives"] == 0
    value, low, high = out["RSNA log loss"]
    assert low <= value <= high


def test_validated_headline_chooses_thresholds_on_validation_at_each_level():
    from ichlib import ensemble
    from ichlib.metrics import choose_thresholds

    rng = np.random.default_rng(3)
    val, index_val = split_of("v", {"v1": ("P1", 4), "v2": ("P2", 4), "v3": ("P3", 3)}, rng)
    test, index_test = split_of("t", {"t1": ("P4", 3), "t2": ("P4", 2), "t3": ("P5", 4)}, rng)
    index = pd.concat([index_val, index_test])
    slices = comparisons.validated_headline(val, test, val.probs[0], test.probs[0], index, "slice", n_boot=50)
    assert (slices["units"], slices["patients"]) == (9, 2)
    np.testing.assert_allclose(slices["thresholds"], choose_thresholds(val.truth, val.probs[0]))
    studies = comparisons.validated_headline(val, test, val.probs[0], test.probs[0], index, "study", n_boot=50)
    assert (studies["units"], studies["patients"]) == (3, 2)
    _, y_val, p_val = ensemble.study_level(val.ids, val.truth, val.probs[0], index["study"])
    np.testing.assert_allclose(studies["thresholds"], choose_thresholds(y_val, p_val))
    # the test split never moves a threshold
    flipped = tables.Predictions(test.names, test.ids, 1 - test.truth, test.probs)
    again = comparisons.validated_headline(val, flipped, val.probs[0], test.probs[0], index, "slice", n_boot=50)
    np.testing.assert_allclose(again["thresholds"], slices["thresholds"])
    with pytest.raises(ValueError, match="'series'"):
        comparisons.validated_headline(val, test, val.probs[0], test.probs[0], index, "series")


def test_paired_auc_reads_each_pair_and_variant_pairs_match_the_runs():
    rng = np.random.default_rng(0)
    truth = np.zeros((400, 6))
    truth[:, 0] = rng.integers(0, 2, 400)
    good = np.tile(truth[:, :1] * 0.5 + rng.uniform(0, 0.6, (400, 1)), 6)
    noise = rng.uniform(0, 1, (400, 6))
    patients = np.repeat(np.arange(80), 5)
    table = comparisons.paired_auc(truth, {"good": good, "noise": noise}, [("good", "noise"), ("noise", "good")],
                              patients, n=200)
    assert table["A is"].tolist() == ["better", "worse"]
    assert table.at[0, "A - B"] == pytest.approx(-table.at[1, "A - B"])
    runs = pd.DataFrame({"arch": ["r", "r", "d"], "preprocessing": ["t", "t", "t"],
                         "variant": ["baseline", "optimised", "baseline"]}, index=["r-b", "r-o", "d-b"])
    assert comparisons.variant_pairs(runs) == [("r-o", "r-b")]


def test_auc_intervals_bracket_each_runs_auc(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"ID_{i:09x}" for i in range(300)]
    truth = np.zeros((300, 6), int)
    truth[:, 0] = rng.integers(0, 2, 300)
    probs = np.clip(truth * 0.4 + rng.uniform(0, 0.6, (300, 6)), 0, 1)
    folder = tmp_path / "run"
    write_predictions(folder, "test", ids, truth, probs)
    index = pd.DataFrame({"patient": [f"p{i // 5}" for i in range(300)]}, index=pd.Index(ids, name="ID"))
    table = comparisons.auc_intervals(pd.DataFrame({"folder": [str(folder)]}, index=["m"]), index, n=200)
    row = table.loc["m"]
    assert row["95 % CI low"] < row["test AUC any"] < row["95 % CI high"] and row["patients"] == 60


def test_comparison_pairs_put_the_ensemble_first_then_the_two_best_runs_then_the_variants_each_once():
    runs = pd.DataFrame({"arch": ["r", "r", "d"], "preprocessing": ["t", "t", "t"],
                         "variant": ["baseline", "optimised", "baseline"], "val AUC any": [0.8, 0.9, np.nan]},
                        index=["r-b", "r-o", "d-b"])
    test = tables.Predictions(list(runs.index), pd.Index(["a", "b"]), np.zeros((2, 6)), np.random.rand(3, 2, 6))
    ensemble_probs = np.full((2, 6), 0.5)
    candidates, pairs = comparisons.comparison_pairs(runs, test, ensemble_probs, "r-o")
    assert pairs == [("best ensemble", "r-o"), ("r-o", "r-b")]  # the two best are one backbone's variants: once
    runs.loc["r-b", "val AUC any"] = 0.95  # the baseline ranked first: the same pair the other way round, once
    assert comparisons.comparison_pairs(runs, test, ensemble_probs, "r-b")[1] == [("best ensemble", "r-b"),
                                                                            ("r-b", "r-o")]
    assert set(candidates) == {"r-b", "r-o", "d-b", "best ensemble"}
    np.testing.assert_array_equal(candidates["d-b"], test.probs[2])


def test_verdict_text_reads_as_a_sentence():
    row = {"A is": "better", "A - B": 0.0184, "95 % CI of A - B": "+0.009 to +0.028"}
    assert comparisons.verdict_text(row) == "better: +0.018 (95 % CI +0.009 to +0.028)"
    straddles = comparisons.verdict_text({**row, "A is": "cannot tell", "A - B": 0.009})
    assert straddles.startswith("no better and no worse (the interval straddles zero): +0.009")
    assert comparisons.verdict_text({**row, "A is": "undefined"}).startswith("undefined")


def test_verdict_counts_name_the_two_reasons_apart():
    from ichlib.seeds import SEED_FLIPPABLE

    frame = pd.DataFrame({"A is": ["better", "cannot tell", "better", SEED_FLIPPABLE]})
    assert comparisons.verdict_counts(frame) == ("2 better, 1 cannot tell (the interval straddles zero), "
                                                 "1 cannot tell (within the seed spread)")
    assert comparisons.verdict_counts(frame.iloc[:0]) == "no pairs"


def test_paired_auc_on_the_level_matched_auc_and_against_the_seed_spread():
    rng = np.random.default_rng(3)
    strata = rng.integers(0, 10, 1000)
    truth = np.zeros((1000, 6))
    truth[:, 0] = rng.random(1000) < np.where((strata > 2) & (strata < 8), 0.4, 0.05)
    level = np.tile((-np.abs(strata - 5) + rng.normal(0, 0.01, 1000))[:, None], 6)  # knows the level only
    sees = np.tile((truth[:, 0] * 1.2 + rng.normal(0, 1, 1000))[:, None], 6)
    patients = np.arange(1000) // 5
    plain = comparisons.paired_auc(truth, {"sees": sees, "level": level}, [("sees", "level")], patients, n=200)
    matched = comparisons.paired_auc(truth, {"sees": sees, "level": level}, [("sees", "level")], patients, n=200,
                                strata=strata)
    assert matched.attrs["score"] == "level-matched AUC" and plain.attrs["score"] == "AUC"
    assert matched.at[0, "AUC any B"] == pytest.approx(0.5, abs=0.05)
    assert matched.at[0, "A - B"] > plain.at[0, "A - B"]  # the level's credit is gone
    assert matched.at[0, "A is"] == "better"
    wide = comparisons.paired_auc(truth, {"sees": sees, "level": level}, [("sees", "level")], patients, n=200,
                             strata=strata, spread=1.0)
    assert wide.at[0, "A is"] == comparisons.SEED_FLIPPABLE
    assert comparisons.verdict_text(wide.iloc[0]).startswith("no better and no worse than retraining")


def test_any_auc_table_gives_plain_and_matched_intervals_per_candidate():
    rng = np.random.default_rng(4)
    ids = pd.Index([f"ID_{i}" for i in range(300)], name="ID")
    truth = np.zeros((300, 6))
    truth[:, 0] = rng.integers(0, 2, 300)
    index = pd.DataFrame({"patient": [f"p{i // 3}" for i in range(300)]}, index=ids)
    strata = pd.Series(np.arange(300) % 10, index=ids)
    test = tables.Predictions(["a"], ids, truth, np.zeros((1, 300, 6)))
    good = np.tile((truth[:, 0] + rng.normal(0, 0.8, 300))[:, None], 6)
    table = comparisons.any_auc_table({"good": good, "constant": np.full((300, 6), 0.3)}, test, index, 200, 0, strata)
    assert list(table.columns) == ["test AUC any", "95 % CI low", "95 % CI high", "level-matched AUC",
                                   "matched low", "matched high"]
    row = table.loc["good"]
    assert row["95 % CI low"] < row["test AUC any"] < row["95 % CI high"]
    assert row["matched low"] < row["level-matched AUC"] < row["matched high"]
    assert table.loc["constant", "test AUC any"] == 0.5 and table.loc["constant", "level-matched AUC"] == 0.5


def test_gain_over_is_not_met_within_the_seed_spread():
    rng = np.random.default_rng(5)
    truth = np.zeros((600, 6))
    truth[:, 0] = rng.integers(0, 2, 600)
    a = np.tile((truth[:, 0] * 2 + rng.normal(0, 1, 600))[:, None], 6)
    b = np.tile((truth[:, 0] * 0.5 + rng.normal(0, 1, 600))[:, None], 6)
    patients = np.arange(600) // 6
    assert comparisons.gain_over(truth, a, b, patients, 0.02, n=200)["met"]
    assert not comparisons.gain_over(truth, a, b, patients, 0.02, n=200, spread=0.5)["met"]
