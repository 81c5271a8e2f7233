"""ichlib.baselines: the level-only and pixel baselines against a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ichlib import baselines, level
from ichlib.labels import LABELS


def make_index(lengths: list[int]) -> pd.DataFrame:
    rows = []
    for s, n in enumerate(lengths):
        rows += [{"ID": f"ID_{s}_{r}", "patient": f"P{s}", "study": f"S{s}", "series": f"R{s}", "rank": r}
                 for r in range(n)]
    return pd.DataFrame(rows).set_index("ID")


def known_answer(n_series: int = 300, seed: int = 0):
    """Bleeds only in the middle of a series, more often in long series: the truth a level-only model can learn."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 41, n_series)
    index = make_index(list(lengths))
    lv = level.slice_levels(index)
    p = np.where((lv["level"] > 0.3) & (lv["level"] < 0.7), 0.5, 0.0) * (lv["slices"] > 30)
    truth = pd.DataFrame(0, index=index.index, columns=list(LABELS))
    truth["any"] = (rng.random(len(index)) < p).astype(int)
    truth["subdural"] = truth["any"]
    series = index["series"].str[1:].astype(int)
    split = pd.Series(np.select([series % 10 < 7, series % 10 < 8], ["train", "val"], "test"), index=index.index)
    return index, lv, p, truth, split


def test_the_level_only_baseline_learns_the_known_rate_and_chooses_the_length_where_it_helps():
    index, lv, p, truth, split = known_answer()
    found = baselines.fit_on_split(lv, truth, split, baselines.LEVEL_FEATURES, seed=0)
    assert found["chosen"] == "level and series length"
    ids, probs = found["test"]
    y = truth.loc[ids, "any"]
    oracle = roc_auc_score(y, p.loc[ids] if isinstance(p, pd.Series) else pd.Series(p, index=index.index).loc[ids])
    assert roc_auc_score(y, probs[:, 0]) == pytest.approx(oracle, abs=0.01)
    # where the truth's rate is 0 the baseline says nearly 0, where it is 0.5 it says about 0.5
    rate = pd.Series(p, index=index.index).loc[ids].to_numpy()
    assert probs[rate == 0, 0].mean() < 0.03 and abs(probs[rate == 0.5, 0].mean() - 0.5) < 0.1
    # a label with one class in the training split gets the prior (a constant), not an error
    assert np.ptp(probs[:, LABELS.index("epidural")]) == 0


def test_the_level_only_baseline_is_saved_like_a_run_and_kept(tmp_path, monkeypatch):
    from ichlib.runs import load_predictions
    from ichlib.store import Source

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path))
    index, _, _, truth, split = known_answer(120)
    src = Source(tmp_path / "cohort", "phantom-test", phantom=True)
    folder = baselines.level_only(src, index, truth, split, seed=0)
    ids, saved_truth, probs = load_predictions(folder, "test")
    assert set(ids) == set(split.index[split == "test"]) and probs.shape == (len(ids), 6)
    assert np.array_equal(saved_truth, truth.loc[ids].to_numpy())
    assert baselines.summary(folder)["chosen"] in baselines.LEVEL_FEATURES
    stamp = (folder / "baseline.json").stat().st_mtime_ns
    assert baselines.level_only(src, index, truth, split, seed=0) == folder  # kept, not fit again
    assert (folder / "baseline.json").stat().st_mtime_ns == stamp
    order = list(ids[::-1])
    assert np.array_equal(baselines.aligned(folder, "test", order), probs[::-1])
    with pytest.raises(ValueError, match="no test prediction"):
        baselines.aligned(folder, "test", ["ID_not_there"])


def test_the_pixel_baselines_find_blood_by_its_density_from_the_files(tmp_path, monkeypatch):
    """Series of small slices, half with a 65 HU patch: counting bright pixels separates them; the level cannot."""
    from sklearn.metrics import roc_auc_score

    from ichlib.runs import load_predictions
    from ichlib.store import Source
    from tests.conftest import write_dicom

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path / "data"))
    rng = np.random.default_rng(0)
    index = make_index([8] * 40)
    truth = pd.DataFrame(0, index=index.index, columns=list(LABELS))
    paths = []
    for image_id in index.index:
        stored = (1024 + 30 + rng.normal(0, 3, (32, 32))).astype(np.uint16)
        if rng.random() < 0.4:
            truth.loc[image_id, ["any", "intraparenchymal"]] = 1
            top, left = rng.integers(4, 24, 2)
            stored[top:top + 5, left:left + 5] = 1024 + 65
        paths.append(str(write_dicom(tmp_path / f"{image_id}.dcm", stored, image_id=image_id)))
    index["path"] = paths
    series = index["series"].str[1:].astype(int)
    split = pd.Series(np.select([series < 28, series < 32], ["train", "val"], "test"), index=index.index)
    src = Source(tmp_path / "cohort", "phantom-test", phantom=True)
    folders = baselines.pixels(src, index, truth, split, seed=0, workers=1)
    assert set(folders) == {baselines.PIXELS_ONLY, baselines.PIXELS_AND_LEVEL}
    for folder in folders.values():
        ids, y, probs = load_predictions(folder, "test")
        assert roc_auc_score(y[:, 0], probs[:, 0]) > 0.95
    level = load_predictions(baselines.level_only(src, index, truth, split, seed=0), "test")
    assert roc_auc_score(level[1][:, 0], level[2][:, 0]) < 0.75  # the level knows nothing here
    features = baselines.pixel_features(src, index, workers=1)  # kept: read back, not recomputed
    assert list(features.columns[-3:]) == ["level", "slices", "stratum"] and len(features) == len(index)


def test_a_slice_whose_features_are_missing_is_still_predicted():
    """An unreadable slice has NaN pixel counts: the tree reads them as missing, the slice keeps a prediction."""
    index, lv, _, truth, split = known_answer(60)
    lv = lv.copy()
    hole = split.index[split == "test"][:3]
    lv.loc[hole, "level"] = np.nan
    found = baselines.fit_on_split(lv, truth, split, {"level": ["level"]}, seed=0)
    ids, probs = found["test"]
    assert np.isfinite(probs).all() and set(hole) <= set(ids)
