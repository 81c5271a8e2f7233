"""ichlib.density: the pixel baseline's counts, by hand and from files (a bad file is a NaN row, never fatal)."""

from __future__ import annotations

import numpy as np
import pytest

from ichlib import density
from tests.conftest import write_dicom


def test_slice_features_count_each_band_per_128_pixels_square():
    hu = np.full((256, 256), -1000.0, np.float32)  # air
    hu[:128, :] = 30  # brain: tissue, in no band
    hu[:10, :10] = 65  # 100 px of blood
    hu[20:30, :20] = 150  # 200 px of calcification
    hu[40:41, :5] = 80  # 5 px at the window's top (80 belongs to the band above)
    found = density.slice_features(hu)
    scale = 128 * 128 / 256 ** 2
    assert found["60-70 HU"] == 100 * scale and found["100-300 HU"] == 200 * scale
    assert found["80-100 HU"] == 5 * scale and found["70-80 HU"] == 0 and found["50-60 HU"] == 0
    assert found[density.HEAD] == 128 * 256 * scale
    assert list(found) == list(density.COLUMNS)
    assert density.slice_features(np.kron(hu, np.ones((2, 2), np.float32))) == found  # any matrix, same counts


def test_index_features_read_every_file_and_leave_a_bad_one_as_nan(tmp_path):
    import pandas as pd

    paths = []
    for k in range(3):
        stored = np.full((32, 32), 1024 + 30, np.uint16)  # 30 HU everywhere
        stored[:4, :4] = 1024 + 65 + k  # 16 px of blood
        paths.append(write_dicom(tmp_path / f"ID_{k}.dcm", stored, image_id=f"ID_{k}"))
    (tmp_path / "ID_bad.dcm").write_bytes(b"not dicom")
    index = pd.DataFrame({"path": [str(p) for p in paths] + [str(tmp_path / "ID_bad.dcm")]},
                         index=pd.Index(["ID_0", "ID_1", "ID_2", "ID_bad"], name="ID"))
    table, failures = density.index_features(index, workers=1)
    assert list(table.columns) == list(density.COLUMNS)
    assert table.loc["ID_1", "60-70 HU"] == pytest.approx(16 * 16)  # 16 of 32 x 32, per 128 x 128
    assert table.loc["ID_bad"].isna().all()
    assert len(failures) == 1 and "ID_bad.dcm" in failures[0][0]


def drawn_head(n=128):
    """A 30 HU head with a bone ring, a blood rim inside it, a calcification with its rim, a blood midline
    strip and a blood blob in the brain: each place's bright pixels known."""
    hu = np.full((n, n), -1000.0, np.float32)
    hu[8:120, 8:120] = 30.0
    hu[8:120, 8:12] = 1000.0  # bone along the left edge
    hu[40:60, 12:13] = 70.0   # 20 bright px touching the bone
    hu[30:32, 30:32] = 200.0  # a calcification
    hu[32:33, 30:32] = 70.0   # 2 bright px on its rim
    hu[90:100, 62:66] = 70.0  # 40 px on the midline (the head spans columns 8-119: centre 63.5)
    hu[90:95, 90:95] = 70.0   # 25 px elsewhere
    return hu


def test_bright_pixels_are_placed_by_what_they_touch():
    places = density.bright_places(drawn_head())
    assert places == {"next to bone": 20.0, "next to a dense spot": 2.0, "on the midline": 40.0, "elsewhere": 25.0}
    assert density.bright_places(np.full((64, 64), 30.0, np.float32)) == dict.fromkeys(density.PLACES, 0.0)


def test_place_shares_reads_the_top_scored_slices_of_each_truth(tmp_path):
    import pandas as pd

    rows = []
    for k, (truth, score) in enumerate(((0, 0.9), (0, 0.1), (1, 0.8), (1, 0.2))):
        hu = drawn_head()
        if k == 0:
            hu[90:95, 90:95] = 30.0  # the top negative: nothing bright elsewhere
        rows.append((f"ID_{k}", write_dicom(tmp_path / f"ID_{k}.dcm", (hu + 1024).astype(np.uint16),
                                           image_id=f"ID_{k}"), truth, score))
    index = pd.DataFrame({"path": [str(p) for _, p, _, _ in rows]}, index=pd.Index([r[0] for r in rows]))
    table = density.place_shares(index, index.index, [r[2] for r in rows], [r[3] for r in rows], n=1)
    fp, tp = table.iloc[0], table.iloc[1]
    assert fp["elsewhere"] == 0 and fp["on the midline"] == pytest.approx(40 / 62)
    assert tp["elsewhere"] == pytest.approx(25 / 87) and tp["slices"] == fp["slices"] == 1
    assert tp["bright px per slice"] == pytest.approx(87)  # 128 x 128 already
