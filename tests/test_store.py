"""ichlib.store: folders keyed by the parameters that matter; made once, found again; real data checked."""

from __future__ import annotations

import numpy as np
import pytest

from ichlib import store


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_phantom_source_is_made_once_and_keyed(data):
    src = store.source("", studies=1, seed=0, matrix=32, workers=1, progress=False)
    assert src.phantom and src.folder == data / "phantom" / "studies1_seed0_matrix32_v2"
    stamp = (src.folder / "manifest.json").stat().st_mtime_ns
    again = store.source("", studies=1, seed=0, matrix=32, workers=1, progress=False)
    assert again == src and (src.folder / "manifest.json").stat().st_mtime_ns == stamp
    other = store.source("", studies=1, seed=1, matrix=32, workers=1, progress=False)
    assert other.folder != src.folder and src.folder.exists()


def test_index_and_cache_are_kept_and_a_new_size_makes_a_new_cache(data):
    src = store.source("", studies=1, seed=0, matrix=32, workers=1, progress=False)
    index, failures = store.index(src, workers=1, progress=False)
    assert len(index) > 10 and len(failures) == 1
    again, _ = store.index(src, workers=1, progress=False)
    assert again.equals(index)
    small = store.cache(src, "three_window", 16, workers=1, progress=False)
    assert small.images.shape[1:] == (16, 16, 3) and small.labels is not None
    bigger = store.cache(src, "three_window", 32, workers=1, progress=False)
    assert bigger.images.shape[1:] == (32, 32, 3)
    assert len(list((data / "cache" / src.key).iterdir())) == 2
    assert store.cache(src, "three_window", 16, workers=1, progress=False).ids == small.ids


def test_real_data_dir_must_hold_the_rsna_layout(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="stage_2_train.csv"):
        store.source(str(tmp_path / "rsna"))
    (tmp_path / "rsna" / "stage_2_train").mkdir(parents=True)
    (tmp_path / "rsna" / "stage_2_train.csv").write_text("ID,Label\n")
    with pytest.raises(FileNotFoundError, match="holds no .dcm file: an incomplete download"):
        store.source(str(tmp_path / "rsna"))  # an empty download is named, not indexed into an error
    from tests.conftest import write_dicom

    write_dicom(tmp_path / "rsna" / "stage_2_train" / "ID_000000001.dcm", np.zeros((8, 8), np.int16),
                image_id="ID_000000001")
    src = store.source(str(tmp_path / "rsna"))
    assert not src.phantom and src.key.startswith("rsna-")
    assert store.source(str(tmp_path / "rsna")).key == src.key  # the same data: the same index and runs
    first, _ = store.index(src, workers=1, progress=False)
    write_dicom(tmp_path / "rsna" / "stage_2_train" / "ID_000000002.dcm", np.zeros((8, 8), np.int16),
                image_id="ID_000000002", z=5.0)
    grown = store.source(str(tmp_path / "rsna"))  # the download completed: new data, a new index
    assert grown.key != src.key
    assert len(first) == 1 and len(store.index(grown, workers=1, progress=False)[0]) == 2


def test_what_the_data_is_comes_from_the_data(data):
    """A cohort this project wrote, given as data_dir, is the phantom (its manifest says so); a folder in
    Kaggle's layout without one is real data, whatever its path."""
    made = store.source("", 1, 0, 32)
    given = store.source(str(made.folder))
    assert given.phantom and given.key.startswith("phantom-")
    (made.folder / "manifest.json").rename(made.folder / "kept.json")  # now only Kaggle's files are there
    assert not store.source(str(made.folder)).phantom
    (made.folder / "manifest.json").write_text('{"generator": "someone else"}')
    assert not store.source(str(made.folder)).phantom


def test_paths_are_shown_relative_to_the_data_folder(tmp_path, monkeypatch):
    from ichlib.store import shown_path

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path / "data"))
    assert shown_path(tmp_path / "data" / "phantom" / "x") == "data/phantom/x"
    assert shown_path(tmp_path / "elsewhere" / "rsna") == "rsna"
