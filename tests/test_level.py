"""ichlib.level: a slice's place in its series, its series' length and its stratum, from the index alone."""

from __future__ import annotations

import pytest

from ichlib import level
from tests.test_baselines import make_index


def test_levels_are_positions_in_the_series_and_tenths_of_it():
    index = make_index([10, 4])
    found = level.slice_levels(index)
    assert found.loc["ID_0_0", "level"] == pytest.approx(0.05) and found.loc["ID_0_9", "level"] == pytest.approx(0.95)
    assert list(found.loc[[f"ID_0_{r}" for r in range(10)], "stratum"]) == list(range(10))
    assert list(found.loc[[f"ID_1_{r}" for r in range(4)], "stratum"]) == [1, 3, 6, 8]
    assert set(found["slices"]) == {10, 4}
    with pytest.raises(ValueError, match="bins"):
        level.slice_levels(index, 0)


def test_a_one_slice_series_sits_in_the_middle():
    found = level.slice_levels(make_index([1, 3]))
    assert found.loc["ID_0_0", "level"] == 0.5 and found.loc["ID_0_0", "stratum"] == 5
    empty = make_index([1]).iloc[:0]
    assert level.slice_levels(empty).empty
