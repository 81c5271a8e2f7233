"""ichlib.localisation on hand-made heatmaps and masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ichlib import localisation


def square(size=16, rows=slice(4, 8), cols=slice(4, 8)):
    mask = np.zeros((size, size), bool)
    mask[rows, cols] = True
    return mask


def test_pointing_game_with_and_without_tolerance():
    mask = square()
    heat = np.zeros((16, 16))
    heat[5, 5] = 1
    assert localisation.pointing_game(heat, mask)
    heat = np.zeros((16, 16))
    heat[8, 5] = 1  # one pixel below the mask
    assert not localisation.pointing_game(heat, mask, tolerance=0)
    assert localisation.pointing_game(heat, mask, tolerance=1)
    assert not localisation.pointing_game(np.zeros((16, 16)), mask)  # blank: a miss


def test_energy_and_auc_by_hand():
    mask = square()
    heat = np.where(mask, 3.0, 1.0)
    inside, outside = 16 * 3.0, (256 - 16) * 1.0
    assert localisation.energy_inside(heat, mask) == pytest.approx(inside / (inside + outside))
    assert localisation.heatmap_auc(heat, mask) == pytest.approx(1.0)
    assert localisation.heatmap_auc(np.where(mask, 0.0, 1.0), mask) == pytest.approx(0.0)
    assert np.isnan(localisation.energy_inside(np.zeros((16, 16)), mask))
    assert np.isnan(localisation.heatmap_auc(np.ones((16, 16)), np.zeros((16, 16), bool)))


def test_masks_shrink_by_coverage_and_scores_resize_them():
    big = np.zeros((64, 64), bool)
    big[0, 0] = True  # one pixel of a 4x4 block
    small = localisation.mask_to(big, 16)
    assert small[0, 0] and small.sum() == 1
    heat = np.zeros((16, 16))
    heat[0, 0] = 1
    row = localisation.score(heat, big, tolerance=0)
    assert row["pointing game"] and row["energy inside"] == 1.0 and row["mask share"] == pytest.approx(1 / 256)


def test_summary_per_model_and_subtype():
    rows = pd.DataFrame({"model": ["a", "a", "b"], "subtype": ["subdural"] * 3, "pointing game": [True, False, True],
                         "energy inside": [0.5, 0.1, np.nan], "heatmap AUC": [0.9, 0.5, np.nan],
                         "mask share": [0.1, 0.1, 0.2]})
    table = localisation.summarise(rows)
    assert table.loc[("a", "subdural"), "slices"] == 2 and table.loc[("a", "subdural"), "pointing game"] == 0.5
    assert table.loc[("a", "subdural"), "energy inside"] == pytest.approx(0.3)
    assert table.loc[("b", "subdural"), "pointing game"] == 1.0


def test_bleed_sizes_at_the_input_fall_in_their_bands():
    from ichlib.localisation import input_area, size_band

    mask = np.zeros((512, 512), bool)
    mask[:16, :16] = True  # 256 px at 512 -> 4 px at 64
    assert input_area(mask, 64) == pytest.approx(4.0)
    assert [size_band(a) for a in (0.5, 3.9, 4.0, 15.0, 64.0, 900)] == \
        ["0-4 px", "0-4 px", "4-16 px", "4-16 px", ">= 64 px", ">= 64 px"]


def test_sample_slices_keeps_order_and_all_when_few():
    from ichlib.localisation import sample_slices

    ids = [f"ID_{i}" for i in range(50)]
    picked = sample_slices(ids, 10, seed=1)
    assert len(picked) == 10 == len(set(picked)) and picked == sorted(picked, key=ids.index)
    assert picked == sample_slices(ids, 10, seed=1) != sample_slices(ids, 10, seed=2)
    assert sample_slices(ids, 0) == ids and sample_slices(ids, 99) == ids


def test_band_labels_are_every_band_size_band_gives_smallest_first():
    from ichlib.localisation import band_labels, size_band

    labels = band_labels()
    assert labels == ["0-4 px", "4-16 px", "16-64 px", ">= 64 px"]
    assert [size_band(a) for a in (0.5, 5, 20, 500)] == labels


def test_the_pointing_game_interval_resamples_patients():
    """Known answers: every slice a hit gives [1, 1]; one patient's 30 slices count as one patient, so an
    interval over 2 patients (one all hits, one all misses) spans nearly 0 to 1."""
    import pandas as pd

    from ichlib.localisation import pointing_interval

    rows = pd.DataFrame({"ID": [f"s{i}" for i in range(60)], "model": "m", "subtype": "any",
                         "pointing game": [True] * 30 + [False] * 30})
    two = pointing_interval(rows, {f"s{i}": ("a" if i < 30 else "b") for i in range(60)}, n=400)
    low, high = two.loc[("m", "any")]
    assert low == 0.0 and high == 1.0
    many = pointing_interval(rows, {f"s{i}": f"p{i}" for i in range(60)}, n=400)
    low, high = many.loc[("m", "any")]
    assert 0.3 < low < 0.5 < high < 0.7
    hits = rows.assign(**{"pointing game": True})
    assert tuple(pointing_interval(hits, {f"s{i}": f"p{i}" for i in range(60)}, n=50).iloc[0]) == (1.0, 1.0)
