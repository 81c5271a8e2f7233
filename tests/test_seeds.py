"""ichlib.seeds: reseeded runs, the spread table and verdicts read against it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import seeds
from ichlib.runs import RunSpec, write_predictions


def test_reseeded_changes_only_the_seed():
    spec = RunSpec("resnet50", seed=3, image_size=80)
    more = seeds.reseeded(spec, 2)
    assert [s.seed for s in more] == [4, 5] and all(s.image_size == 80 and s.name == spec.name for s in more)
    assert seeds.reseeded(spec, 0) == []
    with pytest.raises(ValueError, match="extra seeds"):
        seeds.reseeded(spec, -1)


def test_spread_table_gives_each_seed_its_aucs_and_the_range(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"ID_{k}" for k in range(200)]
    truth = np.zeros((200, 6))
    truth[:, 0] = rng.random(200) < 0.3
    strata = pd.Series(np.arange(200) % 10, index=ids)
    folders = {}
    for seed, noise in ((0, 0.5), (1, 1.0), (2, 2.0)):
        probs = np.clip(truth + rng.normal(0, noise, (200, 6)), -5, 5)
        folders[seed] = write_predictions(tmp_path / str(seed), "test", ids, truth, probs).parent
    table = seeds.spread_table(folders, strata)
    assert list(table.index) == ["seed 0", "seed 1", "seed 2", "range", "sd"]
    aucs = table.loc[["seed 0", "seed 1", "seed 2"], "test AUC any"]
    assert aucs.is_monotonic_decreasing  # more noise, lower AUC
    assert table.at["range", "test AUC any"] == pytest.approx(aucs.max() - aucs.min())


def test_a_verdict_within_the_seed_spread_cannot_tell():
    assert seeds.with_spread("better", 0.01, 0.02) == seeds.SEED_FLIPPABLE
    assert seeds.with_spread("worse", -0.02, 0.02) == seeds.SEED_FLIPPABLE
    assert seeds.with_spread("better", 0.03, 0.02) == "better"
    assert seeds.with_spread("cannot tell", 0.0, 0.02) == "cannot tell"
    assert seeds.with_spread("better", 0.01, float("nan")) == "better"


def test_spread_text_is_plain_words_and_says_when_it_cannot_measure(tmp_path):
    table = pd.DataFrame({"test AUC any": [0.9, 0.87, 0.86, 0.04, 0.02],
                          "level-matched AUC": [0.77, 0.70, 0.68, 0.09, 0.05]},
                         index=["seed 0", "seed 1", "seed 2", "range", "sd"])
    assert seeds.spread_text(table) == "0.040 (0.090 level-matched) over 3 seeds"
    table.loc["range"] = np.nan
    assert seeds.spread_text(table).startswith("an amount this test split cannot measure")
