"""ichlib.levers: a lever is a change of a run's settings, checked by name; measured on validation like the
book's runs, with the trivial pointers beside them."""

from __future__ import annotations

import numpy as np
import pytest

from ichlib.levers import base_spec, changes, lever_name, lever_spec
from ichlib.runs import RunSpec


def test_a_lever_is_key_value_changes_read_as_yaml():
    assert changes("") == {}
    assert changes("mask_weight=1 score_from=mask epoch_images=2400") == {"mask_weight": 1, "score_from": "mask",
                                                                          "epoch_images": 2400}
    with pytest.raises(ValueError, match="'mask_wieght=1' is not KEY=VALUE"):
        changes("mask_wieght=1")
    with pytest.raises(ValueError, match="'masks' is not KEY=VALUE"):
        changes("masks")


def test_a_lever_changes_the_book_run_and_is_checked():
    base = base_spec("densenet121-three_window-optimised", {"image_size": 80, "mask_weight": 1.0,
                                                             "score_from": "mask"})
    paper = lever_spec(base, "mask_weight=0 score_from=head")
    assert (paper.mask_weight, paper.score_from, paper.mask_head) == (0, "head", False)
    assert lever_spec(base, "") == base and lever_name("") == "the book's recipe"
    with pytest.raises(ValueError, match="pretrain_images"):
        lever_spec(base, "weights=masks")  # a pretrained start without its images
    with pytest.raises(ValueError, match="architecture-preprocessing-variant"):
        base_spec("densenet121", {})


def test_parameters_refuse_a_bad_lever_or_mask_setting_before_anything_runs():
    from ichlib.parameters import ParameterError, check_value

    check_value("levers", [{}, {"mask_weight": 0}], "-p")
    assert changes({"mask_weight": 0, "score_from": "head"}) == {"mask_weight": 0, "score_from": "head"}
    assert lever_name({"mask_weight": 0, "score_from": "head"}) == "mask_weight=0 score_from=head"
    for name, value in (("levers", [{"mask_wieght": 0}]), ("levers", ["mask_weight=0"]), ("mask_weight", -1.0), ("mask_weight", float("inf")),
                        ("score_from", "pixels"), ("lever_run", "vgg16-three_window-baseline")):
        with pytest.raises(ParameterError, match=f"parameter {name}"):
            check_value(name, value, "-p")


@pytest.mark.slow
def test_levers_are_trained_as_the_book_trains_and_read_beside_the_pointers(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import pandas as pd

    from ichlib import store
    from ichlib.levers import measure_levers
    from tests.test_train import toy_cache

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path))
    cache, index = toy_cache()
    cache.folder = tmp_path / "cache"
    cache.folder.mkdir()
    truth = np.zeros((len(cache.ids), 4, 4, 1), np.uint8)  # the bright squares, as the mask head's grid
    truth[cache.labels[:, 0] > 0, :2, :2] = 1
    np.save(cache.folder / "mask_grid_4.npy", truth)
    src = SimpleNamespace(key="toy", phantom=True, folder=tmp_path / "cohort", labels=lambda: None)
    monkeypatch.setattr(store, "index", lambda src, workers=None, progress=False: (index, []))
    monkeypatch.setattr(store, "run_cache", lambda src, spec, windows=(), workers=None: cache)
    monkeypatch.setattr("ichlib.plan.split_by_patient", lambda *a, **k: pd.Series(
        np.where(np.arange(len(index)) % 5 == 0, "val", np.where(np.arange(len(index)) % 5 == 1, "test", "train")),
        index=index.index))
    monkeypatch.setattr("ichlib.level.slice_levels", lambda table: pd.DataFrame({"stratum": 0}, index=table.index))
    monkeypatch.setattr("ichlib.levers.visible_slices", lambda src, cache, ids, n, seed: (
        [i for i in ids if cache.labels[cache.row(i), 0]][:4],
        {i: cache.images[cache.row(i), :, :, 0] > 200 for i in ids}))
    base = RunSpec("resnet50", image_size=32, epochs=1, batch_size=16, learning_rate=1e-3, mask_weight=1.0,
                   score_from="mask", epoch_images=64)
    strata = pd.Series(0, index=index.index)
    table = measure_levers(src, base, ["", "mask_weight=0 score_from=head"], 0, strata, 4)
    assert list(table.index) == ["the book's recipe", "the book's recipe, any read from the head",
                                 "mask_weight=0 score_from=head", "density pointer (brightest place in the head)",
                                 "random pointer (a pixel inside the head)"]
    assert table.attrs["slices"] == 4
    assert table.loc["the book's recipe", ["val AUC any", "val pointing", "val mask pointing"]].notna().all()
    assert np.isnan(table.loc["mask_weight=0 score_from=head", "val mask pointing"])  # no mask head to point
    assert table.loc["density pointer (brightest place in the head)", "val pointing"] == 1.0  # the squares


def test_no_lever_or_only_mask_levers_on_real_data_give_an_empty_table_not_a_crash():
    from types import SimpleNamespace

    from ichlib.levers import measure_levers

    real = SimpleNamespace(key="rsna", phantom=False)
    base = RunSpec("resnet50", image_size=32)
    assert measure_levers(real, base, [], 0, None).empty
    table = measure_levers(real, base, [{"mask_weight": 1}], 0, None)
    assert list(table.index) == ["mask_weight=1 (skipped: this data has no masks)"] and table.attrs["slices"] == 0
