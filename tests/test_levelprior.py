"""ichlib.levelprior: the level put back into a run trained on level-matched negatives, by Bayes' rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import levelprior
from ichlib.labels import LABELS


def cohort(seed=0):
    """2,000 slices in ten strata; `any` (and subdural) positive at 2 / 30 / 40 / 2 % in strata 2 / 4 / 5 / 7."""
    rng = np.random.default_rng(seed)
    strata = np.repeat(np.arange(10), 200)
    rate = np.zeros(10)
    rate[[2, 4, 5, 7]] = [0.02, 0.3, 0.4, 0.02]
    labels = np.zeros((2000, len(LABELS)), np.int8)
    labels[:, 0] = rng.random(2000) < rate[strata]
    labels[:, 5] = labels[:, 0]
    return labels, strata


def test_a_model_that_knows_only_the_sampled_rates_gets_the_true_rates_back():
    """Known answer: a level-matched run that has learnt nothing but the rates its sampler showed it, once
    corrected, predicts each stratum's true rate: the level-only answer, no more and no less."""
    labels, strata = cohort()
    table = levelprior.correction(labels, strata, 0.5, seed=0)
    drawn_rates = levelprior.rates(labels, strata)  # what the sampler's long draw is compared against
    from ichlib.batches import epoch_order

    drawn = epoch_order(np.arange(2000), labels[:, 0] > 0, 0.5, np.random.default_rng(1), 100_000, strata)
    sampled = levelprior.rates(labels[drawn], strata[drawn])
    assert sampled[[4, 5], 0] == pytest.approx([0.5, 0.5], abs=0.02)  # the level says nothing in training
    corrected = levelprior.apply(sampled[strata], strata, table)
    np.testing.assert_allclose(corrected[:, 0], drawn_rates[strata, 0], atol=0.01)
    assert table[0, 0] < -3 and abs(table[4, 0]) < 1.5  # no positive at the bottom: strongly down there


def test_the_correction_keeps_every_ranking_within_a_level():
    from ichlib.metrics import auc_or_nan, matched_auc

    labels, strata = cohort(1)
    rng = np.random.default_rng(2)
    raw = np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.25, labels.shape), 0.01, 0.99)
    table = levelprior.correction(labels, strata, 0.5, seed=0)
    fixed = levelprior.apply(raw, strata, table)
    assert matched_auc(labels[:, 0], fixed[:, 0], strata) == matched_auc(labels[:, 0], raw[:, 0], strata)
    assert auc_or_nan(labels[:, 0], fixed[:, 0]) > auc_or_nan(labels[:, 0], raw[:, 0]) + 0.05  # the level added
    np.testing.assert_array_equal(levelprior.apply(raw, strata, None), raw)
    unknown = levelprior.apply(raw[:3], np.array([-1, -1, 99]), table)  # no level: the raw output
    np.testing.assert_allclose(unknown, raw[:3])


def test_series_strata_count_as_the_baselines_do():
    from ichlib.level import slice_levels

    for n in (1, 7, 40):
        index = pd.DataFrame({"series": ["s"] * n, "rank": np.arange(n)}, index=[f"ID_{i}" for i in range(n)])
        np.testing.assert_array_equal(levelprior.series_strata(n), slice_levels(index)["stratum"].to_numpy())


def test_a_saved_correction_reads_back_and_a_foreign_one_is_refused(tmp_path):
    table = np.arange(60, dtype=float).reshape(10, 6) / 7
    levelprior.write(tmp_path, table)
    np.testing.assert_allclose(levelprior.read(tmp_path), table, atol=1e-6)
    assert levelprior.read(tmp_path / "elsewhere") is None
    (tmp_path / levelprior.FILE).write_text('{"labels": ["any"], "logits": [[0]]}')
    with pytest.raises(ValueError, match="labels"):
        levelprior.read(tmp_path)
    for bad in ('{"labels": ["any", "epi', '', '[1, 2]'):  # cut short, empty, not a mapping: named, not a traceback
        (tmp_path / levelprior.FILE).write_text(bad)
        with pytest.raises(ValueError, match=levelprior.FILE):
            levelprior.read(tmp_path)


@pytest.mark.slow
def test_a_level_matched_run_and_the_app_put_the_level_back_alike(tmp_path, monkeypatch):
    """End to end: a run trained on level-matched negatives saves its correction and predictions with the level
    put back; the app, reading the same slices from their files, gives the same probabilities."""
    from ichlib import plan, runs, store
    from ichlib.app import service, upload

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path))
    src = store.source("", studies=6, seed=1, matrix=64, workers=1, progress=False)
    index, _ = store.index(src, workers=1, progress=False)
    spec = runs.RunSpec("resnet50", image_size=32, epochs=1, batch_size=16, negatives="level_matched",
                        positive_fraction=0.5)
    folder = plan.train_runs(src, [spec], seed=1, workers=1, log=None)["folder"].iloc[0]
    table = levelprior.read(folder)
    assert table is not None and table.shape == (levelprior.BINS, len(LABELS))
    ids, _, saved = runs.load_predictions(folder, "test")
    series = upload.cohort_series(index, index.loc[ids[0], "study"])
    assert len(series.slices) == (index["series"] == index.loc[series.slices["ID"].iloc[0], "series"]).sum()
    report = service.analyse(series, [folder])
    shown = pd.DataFrame(report.probs, index=report.ids)
    common = shown.index.intersection(ids)
    assert len(common) == len(series.slices)
    np.testing.assert_allclose(shown.loc[common].to_numpy(), pd.DataFrame(saved, index=ids).loc[common].to_numpy(),
                               atol=2e-3)
