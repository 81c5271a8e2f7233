"""ichlib.app.service: checked uploads (every bad input), a series analysed, Grad-CAM for one slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ichlib.app import service

from .conftest import write_dicom


def study_files(app_data, study=None):
    index = app_data["index"]
    study = study or index["study"].iloc[0]
    rows = index[index["study"] == study]
    return [(Path(p).name, Path(p).read_bytes()) for p in rows["path"]], rows


def test_an_upload_is_stored_under_names_the_app_makes_and_ordered_by_z(app_data, tmp_path):
    files, rows = study_files(app_data)
    files = files[::-1]
    series = service.receive(files, tmp_path / "uploads")
    assert len(series.slices) == len(rows) and series.slices["z"].is_monotonic_increasing
    assert set(series.slices["name"]) == {name for name, _ in files}
    assert all(Path(p).parent.parent == tmp_path / "uploads" for p in series.slices["path"])
    assert not any(Path(p).name in {name for name, _ in files} for p in series.slices["path"])
    assert series.details["patient ID"] == rows["patient"].iloc[0] and series.study == rows["study"].iloc[0]


def test_names_are_never_paths(app_data, tmp_path):
    files, _ = study_files(app_data)
    hostile = [("../../escape.dcm", files[0][1]), ("/etc/passwd", b"not dicom")]
    series = service.receive(hostile, tmp_path / "uploads")
    assert not (tmp_path / "escape.dcm").exists() and not list(tmp_path.glob("*.dcm"))
    assert [name for name, _ in series.rejected] == ["/etc/passwd"]


def test_non_dicom_truncated_and_non_ct_files_are_left_out_by_name(app_data, tmp_path):
    files, _ = study_files(app_data)
    mr = write_dicom(tmp_path / "mr.dcm", np.zeros((8, 8), np.uint16), modality="MR").read_bytes()
    bad = [("notes.txt", b"hello"), ("cut.dcm", files[0][1][:300]), ("brain_mr.dcm", mr)]
    series = service.receive(files + bad, tmp_path / "uploads")
    rejected = dict(series.rejected)
    assert set(rejected) == {"notes.txt", "cut.dcm", "brain_mr.dcm"}
    assert "notes.txt" in rejected["notes.txt"] and "MR" in rejected["brain_mr.dcm"]
    assert len(series.slices) == len(files)
    with pytest.raises(service.InputError, match="notes.txt"):
        service.receive(bad[:1], tmp_path / "uploads")


def test_mixed_series_empty_and_huge_uploads_are_refused(app_data, tmp_path, monkeypatch):
    index = app_data["index"]
    studies = index["study"].unique()
    first, _ = study_files(app_data, studies[0])
    second, _ = study_files(app_data, studies[1])
    with pytest.raises(service.InputError, match="2 series"):
        service.receive(first + second, tmp_path / "uploads")
    with pytest.raises(service.InputError, match="no file"):
        service.receive([], tmp_path / "uploads")
    monkeypatch.setattr(service, "MAX_FILE_MB", 0.001)
    with pytest.raises(service.InputError, match=first[0][0]):
        service.receive(first, tmp_path / "uploads")
    monkeypatch.setattr(service, "MAX_FILE_MB", 20)
    monkeypatch.setattr(service, "MAX_TOTAL_MB", 0.01)
    with pytest.raises(service.InputError, match="MB in all"):
        service.receive(first, tmp_path / "uploads")
    monkeypatch.setattr(service, "MAX_FILES", 2)
    with pytest.raises(service.InputError, match="at most 2"):
        service.receive(first[:3], tmp_path / "uploads")


def test_a_study_is_analysed_with_one_model_and_its_heatmap_drawn(app_data):
    index = app_data["index"]
    series = service.cohort_series(index, index["study"].iloc[0])
    report = service.analyse(series, [app_data["run"]])
    n = len(series.slices)
    assert report.probs.shape == (n, 6) and ((report.probs >= 0) & (report.probs <= 1)).all()
    assert report.thresholds.shape == (6,) and report.seconds > 0
    np.testing.assert_allclose(report.study_probs.to_numpy(), report.probs.max(axis=0))
    assert report.flagged.shape == (n, 6) and list(report.table().columns)[0] == "z (mm)"
    two = service.analyse(series, [app_data["run"], app_data["run"]])
    np.testing.assert_allclose(two.probs, report.probs, atol=1e-6)  # the mean of one model twice
    assert len(series.prepared) == 1  # preprocessed once for this run; the heatmap below reuses it
    image, heat = service.heatmap(series, [app_data["run"]], 0, "any")
    assert len(series.prepared) == 1
    assert image.shape == heat.shape == (32, 32) and 0 <= heat.min() and heat.max() <= 1
    with pytest.raises(service.InputError, match="ID_nope"):
        service.cohort_series(index, "ID_nope")
    with pytest.raises(ValueError, match="at least one"):
        service.analyse(series, [])


def test_available_runs_lists_finished_runs(app_data):
    runs = service.available_runs(app_data["root"] / "runs")
    assert list(runs["folder"]) == [str(app_data["run"])] and runs["arch"].iloc[0] == "resnet50"
