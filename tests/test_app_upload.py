"""ichlib.app.upload: checked uploads (every bad input refused or left out by name), names never paths, retention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ichlib.app import upload

from .conftest import write_dicom
from .test_app_service import study_files, uploads_left


def _edited(content: bytes, **tags) -> bytes:
    """A copy of a DICOM file's bytes with some tags changed (None: removed)."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(content))
    for key, value in tags.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def test_an_upload_is_stored_under_names_the_app_makes_and_ordered_by_z(app_data, tmp_path):
    files, rows = study_files(app_data)
    files = files[::-1]
    series = upload.receive(files, tmp_path / "uploads")
    assert len(series.slices) == len(rows) and series.slices["z"].is_monotonic_increasing
    assert set(series.slices["name"]) == {name for name, _ in files}
    assert all(Path(p).parent.parent == tmp_path / "uploads" for p in series.slices["path"])
    assert not any(Path(p).name in {name for name, _ in files} for p in series.slices["path"])
    assert series.details["patient ID"] == rows["patient"].iloc[0] and series.study == rows["study"].iloc[0]


def test_names_are_never_paths(app_data, tmp_path):
    files, _ = study_files(app_data)
    hostile = [("../../escape.dcm", files[0][1]), ("/etc/passwd", b"not dicom")]
    series = upload.receive(hostile, tmp_path / "uploads")
    assert not (tmp_path / "escape.dcm").exists() and not list(tmp_path.glob("*.dcm"))
    assert [name for name, _ in series.rejected] == ["/etc/passwd"]


def test_non_dicom_truncated_and_non_ct_files_are_left_out_by_name(app_data, tmp_path):
    files, _ = study_files(app_data)
    mr = write_dicom(tmp_path / "mr.dcm", np.zeros((8, 8), np.uint16), modality="MR").read_bytes()
    bad = [("notes.txt", b"hello"), ("cut.dcm", files[0][1][:300]), ("brain_mr.dcm", mr)]
    series = upload.receive(files + bad, tmp_path / "uploads")
    rejected = dict(series.rejected)
    assert set(rejected) == {"notes.txt", "cut.dcm", "brain_mr.dcm"}
    assert "notes.txt" in rejected["notes.txt"] and "MR" in rejected["brain_mr.dcm"]
    assert len(series.slices) == len(files)
    with pytest.raises(upload.InputError, match="notes.txt"):
        upload.receive(bad[:1], tmp_path / "uploads")


def test_mixed_series_empty_and_huge_uploads_are_refused(app_data, tmp_path, monkeypatch):
    index = app_data["index"]
    studies = index["study"].unique()
    first, _ = study_files(app_data, studies[0])
    second, _ = study_files(app_data, studies[1])
    with pytest.raises(upload.InputError, match="2 series"):
        upload.receive(first + second, tmp_path / "uploads")
    with pytest.raises(upload.InputError, match="no file"):
        upload.receive([], tmp_path / "uploads")
    monkeypatch.setattr(upload, "MAX_FILE_MB", 0.001)
    with pytest.raises(upload.InputError, match=first[0][0]):
        upload.receive(first, tmp_path / "uploads")
    monkeypatch.setattr(upload, "MAX_FILE_MB", 20)
    monkeypatch.setattr(upload, "MAX_TOTAL_MB", 0.01)
    with pytest.raises(upload.InputError, match="MB in all"):
        upload.receive(first, tmp_path / "uploads")
    monkeypatch.setattr(upload, "MAX_FILES", 2)
    with pytest.raises(upload.InputError, match="at most 2"):
        upload.receive(first[:3], tmp_path / "uploads")


def test_the_same_slice_twice_is_analysed_once_and_the_copy_named(app_data, tmp_path):
    files, _ = study_files(app_data)
    twice = [*files, ("copy of " + files[0][0], files[0][1])]
    series = upload.receive(twice, tmp_path / "uploads")
    assert len(series.slices) == len(files) and series.slices["ID"].is_unique
    [(name, reason)] = series.rejected
    assert name == "copy of " + files[0][0]
    assert "the same slice" in reason and reason.endswith(f"as {files[0][0]}")


def test_a_refused_upload_leaves_nothing_and_old_uploads_are_purged(app_data, tmp_path):
    root = tmp_path / "uploads"
    with pytest.raises(upload.InputError):
        upload.receive([("notes.txt", b"not a scan")], root)
    first, _ = study_files(app_data, app_data["index"]["study"].unique()[0])
    second, _ = study_files(app_data, app_data["index"]["study"].unique()[1])
    with pytest.raises(upload.InputError, match="2 series"):
        upload.receive(first + second, root)
    assert uploads_left(root) == []
    kept = upload.receive(first, root)
    assert len(uploads_left(root)) == len(first)
    assert upload.purge_uploads(root, older_than_min=60) == 0  # young: kept while it is shown
    assert upload.purge_uploads(root, older_than_min=0) == 1 and uploads_left(root) == []
    again = upload.receive(first, root)
    upload.discard(again)
    assert uploads_left(root) == [] and kept.upload is not None


def test_tiny_multiframe_and_non_dicom_files_are_refused_with_one_clear_line(tmp_path):
    tiny = write_dicom(tmp_path / "tiny.dcm", np.zeros((16, 16), np.int16))
    big = write_dicom(tmp_path / "ok.dcm", np.zeros((64, 64), np.int16), image_id="ID_0a1b2c3d5", z=1.0)
    frames = write_dicom(tmp_path / "frames.dcm", np.zeros((64, 64), np.int16), image_id="ID_0a1b2c3d6",
                         NumberOfFrames=2, ImagePositionPatient=None)
    files = [(p.name, p.read_bytes()) for p in (tiny, big, frames)] + [("notes.txt", b"hello")]
    series = upload.receive(files, tmp_path / "uploads")
    reasons = dict(series.rejected)
    assert list(series.slices["name"]) == ["ok.dcm"]
    assert "16 x 16 pixels, too small" in reasons["tiny.dcm"]
    assert "multi-frame" in reasons["frames.dcm"] and "AttributeError" not in reasons["frames.dcm"]
    assert "not a DICOM file" in reasons["notes.txt"] and "force=True" not in reasons["notes.txt"]
    assert all("\n" not in reason for reason in reasons.values())


def test_file_names_are_shown_as_literal_text():
    shown = upload.literal("**x** [click](https://evil.example).dcm")
    assert shown == r"\*\*x\*\* \[click\]\(https\://evil\.example\)\.dcm"
    assert upload.literal("a\nb") == "a b" and upload.literal("plain") == "plain"


def test_text_from_files_is_shown_as_typed_never_as_markup():
    """A right-to-left override cannot turn a warning round; a UID with `$^^$` is drawn as typed (mathtext
    would stop the page); Markdown links and bare addresses stay text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert "\u202e" not in upload.literal("scan\u202egpj.dcm")
    shown = upload.literal("[click me](https://evil.example/x) **bold** www.evil.example.dcm")
    assert "](" not in shown and "**" not in shown and "www.evil.example" not in shown
    fig, ax = plt.subplots()
    ax.set_title(upload.plot_text("1.2.3$^^$4: p(any) = 0.5"))
    fig.canvas.draw()  # would raise ValueError from mathtext without the escape
    assert ax.get_title().count(r"\$") == 2
    plt.close(fig)


def test_retention_is_read_safely_and_counts_from_the_last_use(app_data, tmp_path, monkeypatch):
    """`abc` or `-5` keep the default instead of failing at import or purging everything; uploads are private;
    a series read a moment ago is kept however long ago it arrived."""
    import os
    import stat
    import time

    for text, minutes in (("abc", 60.0), ("-5", 60.0), ("0", 60.0), ("nan", 60.0), ("30", 30.0)):
        assert upload.retention_minutes(text) == minutes
    files, _ = study_files(app_data)
    series = upload.receive(files, tmp_path / "uploads")
    assert stat.S_IMODE(series.upload.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in series.upload.iterdir()} == {0o600}
    old = time.time() - 2 * 3600
    os.utime(series.upload, (old, old))
    upload.in_use(series)  # the reader moves to the next slice
    assert upload.purge_uploads(tmp_path / "uploads", older_than_min=60) == 0 and series.upload.exists()
    os.utime(series.upload, (old, old))
    assert upload.purge_uploads(tmp_path / "uploads", older_than_min=60) == 1 and not series.upload.exists()


def test_the_history_file_is_private(tmp_path):
    import stat

    from ichlib.app.history import History

    History(tmp_path / "app" / "history.sqlite")
    assert stat.S_IMODE((tmp_path / "app" / "history.sqlite").stat().st_mode) == 0o600


def test_series_identity_patients_positions_and_anonymised_files(app_data, tmp_path):
    """Two patients under one series UID are refused by name; a re-exported copy (new SOP UID, same position)
    is kept once; a slice without a usable position is left out by name; files without PatientID are read."""
    from pydicom.uid import generate_uid

    files, _ = study_files(app_data)
    name, content = files[1]
    mixed = [*files[:1], (name, _edited(content, PatientID="ID_someone_else")), *files[2:]]
    with pytest.raises(upload.InputError, match="2 patients"):
        upload.receive(mixed, tmp_path / "a")
    copy = ("copy.dcm", _edited(files[0][1], SOPInstanceUID=generate_uid()))
    series = upload.receive([*files, copy], tmp_path / "b")
    assert len(series.slices) == len(files)
    assert [n for n, _ in series.rejected] == ["copy.dcm"] and "second copy" in series.rejected[0][1]
    nowhere = ("nowhere.dcm", _edited(files[0][1], SOPInstanceUID=generate_uid(),
                                      ImagePositionPatient=[0.0, 0.0, float("nan")]))
    series = upload.receive([*files[1:], nowhere], tmp_path / "c")
    assert [n for n, _ in series.rejected] == ["nowhere.dcm"] and "no usable z" in series.rejected[0][1]
    anonymous = [(n, _edited(c, PatientID=None)) for n, c in files]
    assert len(upload.receive(anonymous, tmp_path / "d").slices) == len(files)
