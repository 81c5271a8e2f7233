"""ichlib.app.real_ct: the real CQ500 slice that ships with pydicom, read by a trained model as the app reads it."""

from __future__ import annotations

import numpy as np

from ichlib.app import real_ct, service


def test_the_shipped_slice_is_found_described_and_read_out(app_data, tmp_path):
    paths = real_ct.shipped_slices()
    assert "693_J2KI.dcm" in paths  # pydicom's own copy is always there
    table = real_ct.describe(paths)
    row = table.loc["693_J2KI.dcm"]
    assert row["matrix"] == "512 x 512" and "JPEG 2000" in row["encoding"]
    assert 15 < row["HU median (head)"] < 45 and row["HU 99th pct (head)"] > 300  # brain, then skull, in HU
    runs = service.available_runs(app_data["root"] / "runs")
    out = real_ct.read_out({"693_J2KI.dcm": paths["693_J2KI.dcm"]}, runs, tmp_path / "uploads")
    assert len(out) == len(runs)
    probs = out.filter(like="p(").to_numpy()
    assert probs.shape == (len(runs), 6) and np.all((probs >= 0) & (probs <= 1))
    assert not any((tmp_path / "uploads").rglob("*.dcm"))  # the copy the app read is gone
    if "693_UNCR.dcm" in paths:  # pydicom-data: the same slice; lossy JPEG 2000 moves HU by tens, not hundreds
        from ichlib.rsna import read_hu

        lossy, plain = read_hu(paths["693_J2KI.dcm"]), read_hu(paths["693_UNCR.dcm"])
        head = plain > -200  # outside the scanner's field of view the two copies differ in their padding value
        assert 5 < np.median(np.abs(lossy - plain)[head]) < 60
        np.testing.assert_array_equal(read_hu(paths["693_J2KR.dcm"]), plain)  # lossless is lossless


def test_the_model_shown_is_chosen_on_validation_never_on_test(tmp_path):
    """Two runs: the first better on validation, the second on test; the validation one is shown."""
    import pandas as pd

    from ichlib import runs as run_folders

    truth = np.zeros((40, 6))
    truth[:20, 0] = 1
    ids = [f"ID_{k:03d}" for k in range(40)]
    ranked, reversed_ = np.linspace(1, 0, 40), np.linspace(0, 1, 40)  # a perfect ranking and its opposite
    folders = []
    for name, val, test in (("good-on-val", ranked, reversed_), ("good-on-test", reversed_, ranked)):
        folder = tmp_path / name
        folder.mkdir()
        for split, scores in (("val", val), ("test", test)):
            run_folders.write_predictions(folder, split, ids, truth, np.repeat(scores[:, None], 6, axis=1))
        folders.append(str(folder))
    for order in (folders, folders[::-1]):  # whichever comes first
        assert real_ct.best_by_validation(pd.DataFrame({"folder": order})) == folders[0]
