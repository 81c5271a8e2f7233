"""ichlib.error_analysis: the AUC with small bleeds or edge negatives left out, and the bleeds too small to see."""

from __future__ import annotations

import numpy as np
import pytest

from ichlib import error_analysis


def test_auc_by_bleed_size_drops_the_small_bleeds_only():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.1, 0.5, 0.2])  # the big bleed is found, the tiny one missed
    big = np.zeros((64, 64), bool)
    big[:32, :32] = True  # 1024 px at 64 -> 256 px at 32
    tiny = np.zeros((64, 64), bool)
    tiny[0, 0] = True  # 1 px at 64 -> 0.25 px at 32
    table = error_analysis.auc_by_bleed_size(["a", "b", "c", "d"], y, p, {"a": {"subdural": big}, "b": {"epidural": tiny}},
                                     image_size=32, floors=(0, 1))
    assert table.loc[0, "positive slices kept"] == 2 and table.loc[0, "AUC any"] == pytest.approx(0.5)
    assert table.loc[1, "positive slices kept"] == 1 and table.loc[1, "AUC any"] == pytest.approx(1.0)


def test_auc_by_distance_to_bleed_drops_the_edge_negatives_only():
    # study a: a bleed on slice 2; its neighbours (1, 3) score high, as partial volume would make them
    study = ["a"] * 5 + ["b"] * 3
    position = [0, 1, 2, 3, 4, 0, 1, 2]
    y = np.array([0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.1, 0.8, 0.7, 0.9, 0.2, 0.3, 0.1, 0.2])
    table = error_analysis.auc_by_distance_to_bleed(y, p, study, position, gaps=(0, 1, 2))
    assert table["negative slices kept"].tolist() == [7, 5, 3]
    assert table["AUC any"].iloc[0] == pytest.approx(5 / 7)  # beaten by its two neighbours only
    assert table["AUC any"].iloc[1] == pytest.approx(1.0)
    assert table["AUC any"].iloc[2] == pytest.approx(1.0)


def test_auc_by_distance_to_bleed_without_negatives_left_is_undefined():
    table = error_analysis.auc_by_distance_to_bleed([1, 0], [0.2, 0.9], ["a", "a"], [0, 1], gaps=(0, 1))
    assert table["AUC any"].iloc[0] == 0.0 and np.isnan(table["AUC any"].iloc[1])


def test_small_bleed_share_counts_bleeds_under_the_floor_with_and_without_the_crop():
    big, small = np.zeros((512, 512), bool), np.zeros((512, 512), bool)
    big[100:200, 100:200] = True          # 10,000 px at 512: 156 px at 64
    small[300:310, 300:315] = True        # 150 px at 512: 2.3 px at 64; 9.4 px in a 256 px head box
    masks = {"a": {"subdural": big}, "b": {"subarachnoid": small}, "c": {}}
    boxes = {"a": (0, 512, 0, 512), "b": (128, 384, 128, 384)}
    table = error_analysis.small_bleed_share(masks, boxes, 64)
    assert table.at["whole slice", "positive slices"] == 2
    assert table.at["whole slice", "share under 4 px"] == 0.5
    assert table.at["cut to the head", "share under 4 px"] == 0.0
    assert table.at["cut to the head", "median bleed (px at input)"] == pytest.approx((156.25 + 9.375) / 2)


