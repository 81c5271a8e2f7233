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
