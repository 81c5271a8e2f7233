"""ichlib.cache: round trip, both modes, bad files skipped and listed, an unfinished build never loads."""

from __future__ import annotations

import numpy as np
import pytest

from ichlib.cache import build_cache, load_cache
from ichlib.preprocess import adjacent_stack, resize, three_window
from ichlib.rsna import index_dicoms, read_hu, read_labels

from .conftest import write_dicom


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for s in range(3):
        for k in range(4):
            image_id = f"ID_{s:02x}{k:07x}"
            stored = rng.integers(900, 1200, (32, 32)).astype(np.uint16)
            write_dicom(tmp_path / f"{image_id}.dcm", stored, image_id=image_id, series=f"ID_series{s}", z=5.0 * (3 - k))
    bad = tmp_path / "ID_000000002.dcm"  # series 0, a middle slice: its header reads, its pixel data is cut short
    bad.write_bytes(bad.read_bytes()[:-1000])
    lines = ["ID,Label"] + [f"ID_{s:02x}{k:07x}_{name},{int(k == 1)}" for s in range(3) for k in range(4)
                            for name in ("epidural", "intraparenchymal", "intraventricular", "subarachnoid",
                                         "subdural", "any")]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.mark.parametrize("workers", [1, 2])
def test_three_window_round_trip_skips_bad_files(folder, tmp_path, workers):
    index, _ = index_dicoms(folder, workers=1, progress=False)
    labels = read_labels(folder / "labels.csv")
    cache = build_cache(index, tmp_path / "cache", size=16, labels=labels, workers=workers, progress=False)
    assert len(cache.ids) == 11 and cache.images.shape == (11, 16, 16, 3)
    assert [p.endswith("ID_000000002.dcm") for p, _ in cache.failures] == [True]
    for i, image_id in enumerate(cache.ids):
        expected = three_window(resize(read_hu(index.loc[image_id, "path"]), 16), dtype=np.uint8)
        # the cache shrinks on the stored integers (read_hu's shrink_to): equal up to float rounding
        assert np.abs(cache.images[i].astype(int) - expected).max() <= 1
        np.testing.assert_array_equal(cache.labels[i], labels.loc[image_id].to_numpy())
    again = load_cache(tmp_path / "cache")
    assert again.ids == cache.ids and again.meta["skipped"] == 1


def test_adjacent_mode_uses_neighbours_by_z_and_steps_over_bad_slices(folder, tmp_path):
    index, _ = index_dicoms(folder, workers=1, progress=False)
    cache = build_cache(index, tmp_path / "adj", mode="adjacent", size=32, windows=("brain",), workers=1,
                        progress=False)
    series = index[index.series == "ID_series1"].sort_values("z")
    hu = [read_hu(p) for p in series.path]
    middle = cache.ids.index(series.index[1])
    np.testing.assert_array_equal(cache.images[middle], adjacent_stack(hu[0], hu[1], hu[2], dtype=np.uint8))
    bottom = cache.ids.index(series.index[0])
    np.testing.assert_array_equal(cache.images[bottom], adjacent_stack(None, hu[0], hu[1], dtype=np.uint8))
    # series 0 lost its slice at z = 5: the slices either side of it now neighbour each other
    s0 = index[index.series == "ID_series0"].sort_values("z")
    assert s0.index[1] == "ID_000000002" and "ID_000000002" not in cache.ids
    hu0 = {i: read_hu(p) for i, p in s0.path.items() if i != "ID_000000002"}
    np.testing.assert_array_equal(cache.images[cache.ids.index(s0.index[2])],
                                  adjacent_stack(hu0[s0.index[0]], hu0[s0.index[2]], hu0[s0.index[3]], dtype=np.uint8))


def test_bad_arguments_and_unfinished_cache(folder, tmp_path):
    index, _ = index_dicoms(folder, workers=1, progress=False)
    with pytest.raises(ValueError, match="mode 'asip'"):
        build_cache(index, tmp_path / "x", mode="asip")
    with pytest.raises(ValueError, match="size"):
        build_cache(index, tmp_path / "x", size=2)
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match="half"):
        load_cache(tmp_path / "half")


@pytest.fixture
def heads(tmp_path):
    """One series of three 128 px slices: a small head off-centre on the middle one, air only on the top one."""
    rows, cols = np.mgrid[:128, :128]
    stored = []
    for k, (centre, radius) in enumerate((((64, 64), 50), ((40, 80), 25), (None, 0))):
        hu = np.full((128, 128), -1000.0)
        if centre is not None:
            hu[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius ** 2] = 40.0
        stored.append((hu + 1024).astype(np.uint16))
        write_dicom(tmp_path / f"ID_head{k}.dcm", stored[-1], image_id=f"ID_head{k}", z=5.0 * k)
    return tmp_path


def test_crop_cuts_each_slice_to_its_head_and_keeps_the_box(heads, tmp_path):
    from ichlib.preprocess import crop_to, head_box

    index, _ = index_dicoms(heads, workers=1, progress=False)
    plain = build_cache(index, tmp_path / "plain", size=32, workers=1, progress=False)
    cut = build_cache(index, tmp_path / "cut", size=32, workers=1, progress=False, crop=True)
    assert plain.boxes is None and cut.meta["crop"] and cut.boxes.shape == (3, 4)
    middle = read_hu(index.at["ID_head1", "path"])
    box = head_box(middle)
    assert tuple(cut.boxes[cut.row("ID_head1")]) == box and box[1] - box[0] < 64  # the small head's own box
    np.testing.assert_array_equal(cut.image("ID_head1"), three_window(resize(crop_to(middle, box), 32), dtype=np.uint8))
    assert (cut.image("ID_head1")[..., 0] > 0).mean() > 2 * (plain.image("ID_head1")[..., 0] > 0).mean()
    assert tuple(cut.boxes[cut.row("ID_head2")]) == (0, 128, 0, 128)  # air only: taken whole, not refused
    assert load_cache(tmp_path / "cut").boxes.tolist() == cut.boxes.tolist()


def test_crop_cuts_the_neighbours_with_the_middle_slices_box(heads, tmp_path):
    from ichlib.preprocess import crop_to

    index, _ = index_dicoms(heads, workers=1, progress=False)
    cut = build_cache(index, tmp_path / "adj", mode="adjacent", size=32, windows=("brain",), workers=1,
                      progress=False, crop=True)
    hu = [read_hu(index.at[f"ID_head{k}", "path"]) for k in range(3)]
    box = tuple(int(v) for v in cut.boxes[cut.row("ID_head1")])
    views = [resize(crop_to(h, box), 32) for h in hu]
    np.testing.assert_array_equal(cut.image("ID_head1"), adjacent_stack(*views, dtype=np.uint8))


def test_crop_skips_a_truncated_slice_and_lists_it(folder, tmp_path):
    index, _ = index_dicoms(folder, workers=1, progress=False)
    cut = build_cache(index, tmp_path / "cut", size=16, workers=2, progress=False, crop=True)
    assert len(cut.ids) == 11 and cut.boxes.shape == (11, 4) and cut.meta["skipped"] == 1
    assert [p.endswith("ID_000000002.dcm") for p, _ in cut.failures] == [True]
