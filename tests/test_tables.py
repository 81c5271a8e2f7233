"""ichlib.tables: the paper's Tables 6-8 and the headline, from fake saved predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import tables
from ichlib.paper import TABLE6_WINDOWED, TABLE8_ALL
from ichlib.rsna import LABELS
from ichlib.runs import write_predictions

ARCHS = ("efficientnetb2", "resnet50", "densenet121")


def write_run(folder, ids, truth, probs, split):
    write_predictions(folder, split, ids, truth, probs)


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    truth = {s: (rng.random((n, 6)) > 0.7).astype(int) for s, n in (("val", 80), ("test", 90))}
    rows = []
    for k, (pre, arch, variant) in enumerate((p, a, v) for p in ("three_window", "adjacent") for a in ARCHS
                                             for v in ("baseline", "optimised")):
        name = f"{arch}-{pre}-{variant}"
        noise = 0.3 + 0.1 * k
        for split, y in truth.items():
            ids = [f"ID_{split}{i:04d}" for i in range(len(y))]
            probs = 1 / (1 + np.exp(-((2 * y - 1) + rng.normal(0, noise * 3, y.shape))))
            write_run(tmp_path / name, ids, y, probs, split)
        rows.append({"run": name, "arch": arch, "preprocessing": pre, "variant": variant,
                     "folder": str(tmp_path / name)})
    return pd.DataFrame(rows).set_index("run")


def test_table6_has_the_papers_rows_and_quotes_beside_ours(runs):
    val, test = tables.load(runs, "val"), tables.load(runs, "test")
    table = tables.paper_table(runs, val, test, "three_window")
    assert list(table.index) == list(TABLE6_WINDOWED)
    assert table.at["resnet50-baseline", "paper AUC"] == TABLE6_WINDOWED["resnet50-baseline"][4]
    assert table[list(tables.OURS[:5])].notna().all().all()
    assert np.isnan(table.at["vote of baseline", "RSNA log loss"])  # a vote share is no probability
    assert all("three_window" in name for name in table.attrs["best combination"])
    assert ((table["accuracy"] > 0) & (table["accuracy"] <= 1)).all()


def test_table8_pools_both_preprocessings_and_has_no_single_rows(runs):
    val, test = tables.load(runs, "val"), tables.load(runs, "test")
    table = tables.paper_table(runs, val, test, "all", search_metric="mean AUC")
    assert list(table.index) == list(TABLE8_ALL)


def test_weights_from_test_is_the_papers_leak_and_changes_the_weights(runs):
    val, test = tables.load(runs, "val"), tables.load(runs, "test")
    np.testing.assert_allclose(tables.weights(val, test), tables.weights(val, test, "validation"))
    assert not np.allclose(tables.weights(val, test, "test"), tables.weights(val, test))
    with pytest.raises(ValueError, match="weights_from"):
        tables.weights(val, test, "train")


def test_load_refuses_runs_that_predicted_other_images(runs, tmp_path):
    odd = runs.iloc[:2].copy()
    y = np.zeros((3, 6))
    write_run(tmp_path / "odd", ["x1", "x2", "x3"], y, y, "val")
    odd.iloc[1, odd.columns.get_loc("folder")] = str(tmp_path / "odd")
    with pytest.raises(ValueError, match="other val images"):
        tables.load(odd, "val")


def test_headline_gives_intervals_per_label_and_for_the_log_loss():
    rng = np.random.default_rng(1)
    y = (rng.random((120, 6)) > 0.7).astype(int)
    y[:, 1] = 0  # no epidural in this split
    p = np.clip(y * 0.5 + rng.random((120, 6)) * 0.5, 0, 1)
    patients = np.repeat(np.arange(12), 10)
    out = tables.headline(y, p, 0.5, patients, n_boot=200)
    table = out["labels"]
    assert (table["AUC 95% low"].drop("epidural") <= table["AUC"].drop("epidural")).all()
    assert (table["AUC"].drop("epidural") <= table["AUC 95% high"].drop("epidural")).all()
    assert np.isnan(table.at["epidural", "AUC 95% low"]) and table.at["epidural", "positives"] == 0
    value, low, high = out["RSNA log loss"]
    assert low <= value <= high


def test_claims_compare_the_papers_findings_with_ours(runs):
    val, test = tables.load(runs, "val"), tables.load(runs, "test")
    table = tables.claims(runs, val, test)
    assert len(table) == 4 and table["holds here"].map(type).eq(bool).all()
    row = table.loc["three-window input beats adjacent slices (mean AUC of the single models)"]
    assert row["paper"] == "0.828 vs 0.806"  # 4.969 / 6 and 4.835 / 6, the quoted Tables 6 and 7
    assert table.loc[table.index.str.startswith("the optimised"), "paper"].iloc[0] == "in 2 of 6 pairs"
    single = tables.claims(runs.iloc[:1], val.pick(val.names[:1]), test.pick(test.names[:1]))
    assert single.empty  # one model: nothing to compare


def test_auc_by_bleed_size_drops_the_small_bleeds_only():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.1, 0.5, 0.2])  # the big bleed is found, the tiny one missed
    big = np.zeros((64, 64), bool)
    big[:32, :32] = True  # 1024 px at 64 -> 256 px at 32
    tiny = np.zeros((64, 64), bool)
    tiny[0, 0] = True  # 1 px at 64 -> 0.25 px at 32
    table = tables.auc_by_bleed_size(["a", "b", "c", "d"], y, p, {"a": {"subdural": big}, "b": {"epidural": tiny}},
                                     image_size=32, floors=(0, 1))
    assert table.loc[0, "positive slices kept"] == 2 and table.loc[0, "AUC any"] == pytest.approx(0.5)
    assert table.loc[1, "positive slices kept"] == 1 and table.loc[1, "AUC any"] == pytest.approx(1.0)


def test_auc_by_distance_to_bleed_drops_the_edge_negatives_only():
    # study a: a bleed on slice 2; its neighbours (1, 3) score high, as partial volume would make them
    study = ["a"] * 5 + ["b"] * 3
    position = [0, 1, 2, 3, 4, 0, 1, 2]
    y = np.array([0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.1, 0.8, 0.7, 0.9, 0.2, 0.3, 0.1, 0.2])
    table = tables.auc_by_distance_to_bleed(y, p, study, position, gaps=(0, 1, 2))
    assert table["negative slices kept"].tolist() == [7, 5, 3]
    assert table["AUC any"].iloc[0] == pytest.approx(5 / 7)  # beaten by its two neighbours only
    assert table["AUC any"].iloc[1] == pytest.approx(1.0)
    assert table["AUC any"].iloc[2] == pytest.approx(1.0)


def test_auc_by_distance_to_bleed_without_negatives_left_is_undefined():
    table = tables.auc_by_distance_to_bleed([1, 0], [0.2, 0.9], ["a", "a"], [0, 1], gaps=(0, 1))
    assert table["AUC any"].iloc[0] == 0.0 and np.isnan(table["AUC any"].iloc[1])


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


def test_validated_headline_chooses_thresholds_on_validation_at_each_level():
    from ichlib import ensemble
    from ichlib.metrics import choose_thresholds

    rng = np.random.default_rng(3)
    val, index_val = split_of("v", {"v1": ("P1", 4), "v2": ("P2", 4), "v3": ("P3", 3)}, rng)
    test, index_test = split_of("t", {"t1": ("P4", 3), "t2": ("P4", 2), "t3": ("P5", 4)}, rng)
    index = pd.concat([index_val, index_test])
    slices = tables.validated_headline(val, test, val.probs[0], test.probs[0], index, "slice", n_boot=50)
    assert (slices["units"], slices["patients"]) == (9, 2)
    np.testing.assert_allclose(slices["thresholds"], choose_thresholds(val.truth, val.probs[0]))
    studies = tables.validated_headline(val, test, val.probs[0], test.probs[0], index, "study", n_boot=50)
    assert (studies["units"], studies["patients"]) == (3, 2)
    _, y_val, p_val = ensemble.study_level(val.ids, val.truth, val.probs[0], index["study"])
    np.testing.assert_allclose(studies["thresholds"], choose_thresholds(y_val, p_val))
    # the test split never moves a threshold
    flipped = tables.Predictions(test.names, test.ids, 1 - test.truth, test.probs)
    again = tables.validated_headline(val, flipped, val.probs[0], test.probs[0], index, "slice", n_boot=50)
    np.testing.assert_allclose(again["thresholds"], slices["thresholds"])
    with pytest.raises(ValueError, match="'series'"):
        tables.validated_headline(val, test, val.probs[0], test.probs[0], index, "series")


def test_small_bleed_share_counts_bleeds_under_the_floor_with_and_without_the_crop():
    big, small = np.zeros((512, 512), bool), np.zeros((512, 512), bool)
    big[100:200, 100:200] = True          # 10,000 px at 512: 156 px at 64
    small[300:310, 300:315] = True        # 150 px at 512: 2.3 px at 64; 9.4 px in a 256 px head box
    masks = {"a": {"subdural": big}, "b": {"subarachnoid": small}, "c": {}}
    boxes = {"a": (0, 512, 0, 512), "b": (128, 384, 128, 384)}
    table = tables.small_bleed_share(masks, boxes, 64)
    assert table.at["whole slice", "positive slices"] == 2
    assert table.at["whole slice", "share under 4 px"] == 0.5
    assert table.at["cut to the head", "share under 4 px"] == 0.0
    assert table.at["cut to the head", "median bleed (px at input)"] == pytest.approx((156.25 + 9.375) / 2)


def test_paired_auc_reads_each_pair_and_variant_pairs_match_the_runs():
    rng = np.random.default_rng(0)
    truth = np.zeros((400, 6))
    truth[:, 0] = rng.integers(0, 2, 400)
    good = np.tile(truth[:, :1] * 0.5 + rng.uniform(0, 0.6, (400, 1)), 6)
    noise = rng.uniform(0, 1, (400, 6))
    patients = np.repeat(np.arange(80), 5)
    table = tables.paired_auc(truth, {"good": good, "noise": noise}, [("good", "noise"), ("noise", "good")],
                              patients, n=200)
    assert table["A is"].tolist() == ["better", "worse"]
    assert table.at[0, "A - B"] == pytest.approx(-table.at[1, "A - B"])
    runs = pd.DataFrame({"arch": ["r", "r", "d"], "preprocessing": ["t", "t", "t"],
                         "variant": ["baseline", "optimised", "baseline"]}, index=["r-b", "r-o", "d-b"])
    assert tables.variant_pairs(runs) == [("r-o", "r-b")]


def test_auc_intervals_bracket_each_runs_auc(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"ID_{i:09x}" for i in range(300)]
    truth = np.zeros((300, 6), int)
    truth[:, 0] = rng.integers(0, 2, 300)
    probs = np.clip(truth * 0.4 + rng.uniform(0, 0.6, (300, 6)), 0, 1)
    folder = tmp_path / "run"
    write_predictions(folder, "test", ids, truth, probs)
    index = pd.DataFrame({"patient": [f"p{i // 5}" for i in range(300)]}, index=pd.Index(ids, name="ID"))
    table = tables.auc_intervals(pd.DataFrame({"folder": [str(folder)]}, index=["m"]), index, n=200)
    row = table.loc["m"]
    assert row["95 % CI low"] < row["test AUC any"] < row["95 % CI high"] and row["patients"] == 60


def test_comparison_pairs_put_the_ensemble_first_then_the_two_best_runs_then_the_variants_each_once():
    runs = pd.DataFrame({"arch": ["r", "r", "d"], "preprocessing": ["t", "t", "t"],
                         "variant": ["baseline", "optimised", "baseline"], "val AUC any": [0.8, 0.9, np.nan]},
                        index=["r-b", "r-o", "d-b"])
    test = tables.Predictions(list(runs.index), pd.Index(["a", "b"]), np.zeros((2, 6)), np.random.rand(3, 2, 6))
    ensemble_probs = np.full((2, 6), 0.5)
    candidates, pairs = tables.comparison_pairs(runs, test, ensemble_probs, "r-o")
    assert pairs == [("best ensemble", "r-o"), ("r-o", "r-b")]  # the two best are one backbone's variants: once
    runs.loc["r-b", "val AUC any"] = 0.95  # the baseline ranked first: the same pair the other way round, once
    assert tables.comparison_pairs(runs, test, ensemble_probs, "r-b")[1] == [("best ensemble", "r-b"),
                                                                            ("r-b", "r-o")]
    assert set(candidates) == {"r-b", "r-o", "d-b", "best ensemble"}
    np.testing.assert_array_equal(candidates["d-b"], test.probs[2])


def test_timing_table_quotes_the_paper_beside_ours():
    runs = pd.DataFrame({"arch": ["resnet50"], "preprocessing": ["adjacent"], "variant": ["optimised"],
                         "train s": [12.0], "test s/image": [0.01]}, index=["resnet50-adjacent-optimised"])
    row = tables.timing_table(runs).iloc[0]
    assert row["paper train s"] == 49983 and row["paper test ms/image"] == pytest.approx(21.0)
    assert row["train s"] == 12.0 and row["test ms/image"] == pytest.approx(10.0)
    assert "arch" not in row.index  # the run's name says it


def test_split_table_counts_patients_images_and_positives_per_split():
    index = pd.DataFrame({"patient": ["a", "a", "b", "c"]}, index=pd.Index(["i1", "i2", "i3", "i4"], name="ID"))
    labels = pd.DataFrame(0, index=index.index, columns=list(LABELS))
    labels.loc["i2", ["any", "subdural"]] = 1
    split = pd.Series(["train", "train", "val", "test"], index=index.index)
    table = tables.split_table(split, index, labels)
    assert table.loc["train", "patients"] == 1 and table.loc["train", "images"] == 2
    assert table.loc["train", "subdural"] == 1 and table.loc["val", "any"] == 0


def test_best_run_is_the_highest_defined_value():
    runs = pd.DataFrame({"val AUC any": [0.7, np.nan, 0.9]}, index=["a", "b", "c"])
    assert tables.best_run(runs) == "c"
    assert tables.best_run(runs.iloc[[1]]) is None


def test_verdict_text_reads_as_a_sentence():
    row = {"A is": "better", "A - B": 0.0184, "95 % CI of A - B": "+0.009 to +0.028"}
    assert tables.verdict_text(row) == "better: +0.018 (95 % CI +0.009 to +0.028)"
    straddles = tables.verdict_text({**row, "A is": "cannot tell", "A - B": 0.009})
    assert straddles.startswith("no better and no worse (the interval straddles zero): +0.009")
    assert tables.verdict_text({**row, "A is": "undefined"}).startswith("undefined")


def test_paired_auc_on_the_level_matched_auc_and_against_the_seed_spread():
    rng = np.random.default_rng(3)
    strata = rng.integers(0, 10, 1000)
    truth = np.zeros((1000, 6))
    truth[:, 0] = rng.random(1000) < np.where((strata > 2) & (strata < 8), 0.4, 0.05)
    level = np.tile((-np.abs(strata - 5) + rng.normal(0, 0.01, 1000))[:, None], 6)  # knows the level only
    sees = np.tile((truth[:, 0] * 1.2 + rng.normal(0, 1, 1000))[:, None], 6)
    patients = np.arange(1000) // 5
    plain = tables.paired_auc(truth, {"sees": sees, "level": level}, [("sees", "level")], patients, n=200)
    matched = tables.paired_auc(truth, {"sees": sees, "level": level}, [("sees", "level")], patients, n=200,
                                strata=strata)
    assert "level-matched AUC any B" in matched.columns and "AUC any B" in plain.columns
    assert matched.at[0, "level-matched AUC any B"] == pytest.approx(0.5, abs=0.05)
    assert matched.at[0, "A - B"] > plain.at[0, "A - B"]  # the level's credit is gone
    assert matched.at[0, "A is"] == "better"
    wide = tables.paired_auc(truth, {"sees": sees, "level": level}, [("sees", "level")], patients, n=200,
                             strata=strata, spread=1.0)
    assert wide.at[0, "A is"] == tables.SEED_FLIPPABLE
    assert tables.verdict_text(wide.iloc[0]).startswith("no better and no worse than retraining")


def test_any_auc_table_gives_plain_and_matched_intervals_per_candidate():
    rng = np.random.default_rng(4)
    ids = pd.Index([f"ID_{i}" for i in range(300)], name="ID")
    truth = np.zeros((300, 6))
    truth[:, 0] = rng.integers(0, 2, 300)
    index = pd.DataFrame({"patient": [f"p{i // 3}" for i in range(300)]}, index=ids)
    strata = pd.Series(np.arange(300) % 10, index=ids)
    test = tables.Predictions(["a"], ids, truth, np.zeros((1, 300, 6)))
    good = np.tile((truth[:, 0] + rng.normal(0, 0.8, 300))[:, None], 6)
    table = tables.any_auc_table({"good": good, "constant": np.full((300, 6), 0.3)}, test, index, 200, 0, strata)
    assert list(table.columns) == ["test AUC any", "95 % CI low", "95 % CI high", "level-matched AUC",
                                   "matched low", "matched high"]
    row = table.loc["good"]
    assert row["95 % CI low"] < row["test AUC any"] < row["95 % CI high"]
    assert row["matched low"] < row["level-matched AUC"] < row["matched high"]
    assert table.loc["constant", "test AUC any"] == 0.5 and table.loc["constant", "level-matched AUC"] == 0.5


def test_ensembles_of_gives_the_papers_six_ensembles(runs):
    val, test = tables.load(runs, "val"), tables.load(runs, "test")
    found = tables.ensembles_of(tables.group_runs(runs, "three_window"), val, test)
    assert set(found) == {f"{m} of {v}" for m in ("average", "vote", "weighted") for v in ("baseline", "optimised")}
    members = list(runs.index[(runs["preprocessing"] == "three_window") & (runs["variant"] == "baseline")])
    np.testing.assert_allclose(found["average of baseline"], test.pick(members).probs.mean(axis=0))


def test_gain_over_is_not_met_within_the_seed_spread():
    rng = np.random.default_rng(5)
    truth = np.zeros((600, 6))
    truth[:, 0] = rng.integers(0, 2, 600)
    a = np.tile((truth[:, 0] * 2 + rng.normal(0, 1, 600))[:, None], 6)
    b = np.tile((truth[:, 0] * 0.5 + rng.normal(0, 1, 600))[:, None], 6)
    patients = np.arange(600) // 6
    assert tables.gain_over(truth, a, b, patients, 0.02, n=200)["met"]
    assert not tables.gain_over(truth, a, b, patients, 0.02, n=200, spread=0.5)["met"]
