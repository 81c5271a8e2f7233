"""ichlib.tables: the paper's Tables 6-8 and its claims, from fake saved predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import tables
from ichlib.paper import TABLE6_WINDOWED, TABLE8_ALL
from ichlib.labels import LABELS
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


def test_claims_compare_the_papers_findings_with_ours(runs):
    val, test = tables.load(runs, "val"), tables.load(runs, "test")
    table = tables.claims(runs, val, test)
    assert len(table) == 4 and table["holds here"].map(type).eq(bool).all()
    row = table.loc["three-window input beats adjacent slices (mean AUC of the single models)"]
    assert row["paper"] == "0.828 vs 0.806"  # 4.969 / 6 and 4.835 / 6, the quoted Tables 6 and 7
    assert table.loc[table.index.str.startswith("the optimised"), "paper"].iloc[0] == "in 2 of 6 pairs"
    single = tables.claims(runs.iloc[:1], val.pick(val.names[:1]), test.pick(test.names[:1]))
    assert single.empty  # one model: nothing to compare


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


def test_ensembles_of_gives_the_papers_six_ensembles(runs):
    val, test = tables.load(runs, "val"), tables.load(runs, "test")
    found = tables.ensembles_of(tables.group_runs(runs, "three_window"), val, test)
    assert set(found) == {f"{m} of {v}" for m in ("average", "vote", "weighted") for v in ("baseline", "optimised")}
    members = list(runs.index[(runs["preprocessing"] == "three_window") & (runs["variant"] == "baseline")])
    np.testing.assert_allclose(found["average of baseline"], test.pick(members).probs.mean(axis=0))




def test_where_the_seconds_went_and_the_learning_rate_against_the_machines_matmul():
    runs = pd.DataFrame({"arch": ["resnet50", "densenet121"], "images learnt": [1200, 2400],
                         "learning s": [60.0, 40.0], "validation passes s": [20.0, 20.0],
                         "curve checks s": [5.0, 5.0], "test prediction s": [15.0, 15.0]}, index=["a", "b"])
    spent = tables.seconds_spent(runs, {"baselines": 20.0})
    assert spent.loc["runs: learning", "seconds"] == 100 and spent.loc["baselines", "seconds"] == 20
    assert spent["share"].sum() == pytest.approx(1.0) and spent.loc["runs: learning", "share"] == pytest.approx(0.5)
    rates = tables.learning_rates(runs, {"resnet50": 1e9, "densenet121": 2e9}, gflops=100.0)
    assert rates.loc["a", "images/s"] == 20 and rates.loc["a", "peak fraction"] == pytest.approx(0.2)
    assert rates.loc["b", "peak fraction"] == pytest.approx(1.2) and rates.loc["a", "learning share"] == 0.6
