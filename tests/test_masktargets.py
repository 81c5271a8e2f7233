"""ichlib.masktargets: the phantom's masks in the network's frame, pooled to the mask head's grid, kept beside
the cache; real data has none and says so."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ichlib.cache import Cache
from ichlib.masktargets import GRID_FILE, MasksUnavailable, frame_masks, grid_targets, mask_to
from ichlib.phantom.cohort import SUBTYPES, mask_path, write_mask


def _cohort(tmp_path):
    """Two slices of a 64 x 64 matrix: one bleeding in its top-left corner (subdural), one clean."""
    folder = tmp_path / "cohort"
    (folder / "masks").mkdir(parents=True)
    bits = np.zeros((64, 64), np.uint8)
    bits[2:10, 4:12] = 1 << SUBTYPES.index("subdural")
    write_mask(mask_path(folder, "ID_bleeds"), bits)
    src = SimpleNamespace(key="toy", phantom=True, folder=folder)
    labels = np.zeros((2, 6), np.int8)
    labels[0, 0] = labels[0, 5] = 1
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache = Cache(np.zeros((2, 32, 32, 3), np.uint8), ["ID_bleeds", "ID_clean"], labels, [], {}, None, cache_dir)
    return src, cache


def test_mask_to_keeps_a_cell_where_any_of_its_area_is_in():
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = True
    assert mask_to(mask, 2).tolist() == [[True, False], [False, False]]


def test_the_grid_marks_the_bleeding_cells_and_nothing_on_a_clean_slice(tmp_path):
    src, cache = _cohort(tmp_path)
    grid = grid_targets(src, cache, 8)  # 64 px / 8 cells: the bleed (rows 2-9, cols 4-11) touches cells 0-1
    assert grid.shape == (2, 8, 8, 1) and grid.dtype == np.uint8
    assert np.argwhere(grid[0, :, :, 0]).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert not grid[1].any()
    assert (cache.folder / GRID_FILE.format(cells=8)).exists()


def test_the_grid_is_kept_and_read_back_not_drawn_again(tmp_path, monkeypatch):
    src, cache = _cohort(tmp_path)
    first = np.asarray(grid_targets(src, cache, 4))
    import ichlib.masktargets as module

    monkeypatch.setattr(module, "frame_masks", lambda *a: pytest.fail("read the masks again"))
    assert np.array_equal(grid_targets(src, cache, 4), first)


def test_a_cropped_cache_cuts_the_mask_to_its_head_box(tmp_path):
    src, cache = _cohort(tmp_path)
    cache.boxes = np.array([[0, 32, 0, 32], [0, 64, 0, 64]], np.int32)
    framed = frame_masks(src, ["ID_bleeds"], cache)["ID_bleeds"]["subdural"]
    assert framed.shape == (32, 32) and framed.sum() == 64


def test_real_data_has_no_masks_and_says_so_by_name(tmp_path):
    _, cache = _cohort(tmp_path)
    real = SimpleNamespace(key="rsna_stage2", phantom=False)
    assert frame_masks(real, ["ID_bleeds"]) == {}
    with pytest.raises(MasksUnavailable, match="rsna_stage2: this data has no bleed masks"):
        grid_targets(real, cache, 4)


def test_a_positive_slice_without_its_mask_file_gets_an_empty_target_and_a_warning(tmp_path, caplog):
    src, cache = _cohort(tmp_path)
    mask_path(src.folder, "ID_bleeds").unlink()
    assert not grid_targets(src, cache, 4).any()
    assert "1 of 1 positive slices have no mask file" in caplog.text
