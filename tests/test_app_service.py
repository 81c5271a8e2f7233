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
    assert runs["phantom"].tolist() == [True]


def test_the_pages_say_what_the_models_were_trained_on(app_data, tmp_path):
    """From each run's own record, never typed: a run of real data says so, a phantom run says phantom."""
    import json
    import shutil

    assert service.trained_on([app_data["run"]]) == "synthetic (phantom) data"
    real = tmp_path / "rsna-0000" / "resnet50-x"
    shutil.copytree(app_data["run"], real)
    summary = json.loads((real / "done.json").read_text())
    summary["source"] = {"key": "rsna-0000", "phantom": False}
    (real / "done.json").write_text(json.dumps(summary))
    assert service.trained_on([real]) == "real data"
    assert service.trained_on([app_data["run"], real]) == "synthetic (phantom) data and real data"


# ----------------------------------------------------------------------------- what a hostile upload finds
def uploads_left(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_slice_cut_short_after_its_header_is_left_out_at_receive(app_data, tmp_path):
    files, _ = study_files(app_data)
    name, content = files[0]
    cut = (name, content[: len(content) - 3000])  # the header whole, the pixels short
    series = service.receive([cut, *files[1:]], tmp_path / "uploads")
    assert len(series.slices) == len(files) - 1
    assert series.rejected[0][0] == name and "pixel data" in series.rejected[0][1]
    service.analyse(series, [app_data["run"]])  # the rest analyses


def test_the_same_slice_twice_is_analysed_once_and_the_copy_named(app_data, tmp_path):
    files, _ = study_files(app_data)
    twice = [*files, ("copy of " + files[0][0], files[0][1])]
    series = service.receive(twice, tmp_path / "uploads")
    assert len(series.slices) == len(files) and series.slices["ID"].is_unique
    [(name, reason)] = series.rejected
    assert name == "copy of " + files[0][0]
    assert "the same slice" in reason and reason.endswith(f"as {files[0][0]}")


def test_a_refused_upload_leaves_nothing_and_old_uploads_are_purged(app_data, tmp_path):
    root = tmp_path / "uploads"
    with pytest.raises(service.InputError):
        service.receive([("notes.txt", b"not a scan")], root)
    first, _ = study_files(app_data, app_data["index"]["study"].unique()[0])
    second, _ = study_files(app_data, app_data["index"]["study"].unique()[1])
    with pytest.raises(service.InputError, match="2 series"):
        service.receive(first + second, root)
    assert uploads_left(root) == []
    kept = service.receive(first, root)
    assert len(uploads_left(root)) == len(first)
    assert service.purge_uploads(root, older_than_min=60) == 0  # young: kept while it is shown
    assert service.purge_uploads(root, older_than_min=0) == 1 and uploads_left(root) == []
    again = service.receive(first, root)
    service.discard(again)
    assert uploads_left(root) == [] and kept.upload is not None


def test_tiny_multiframe_and_non_dicom_files_are_refused_with_one_clear_line(tmp_path):
    tiny = write_dicom(tmp_path / "tiny.dcm", np.zeros((16, 16), np.int16))
    big = write_dicom(tmp_path / "ok.dcm", np.zeros((64, 64), np.int16), image_id="ID_0a1b2c3d5", z=1.0)
    frames = write_dicom(tmp_path / "frames.dcm", np.zeros((64, 64), np.int16), image_id="ID_0a1b2c3d6",
                         NumberOfFrames=2, ImagePositionPatient=None)
    files = [(p.name, p.read_bytes()) for p in (tiny, big, frames)] + [("notes.txt", b"hello")]
    series = service.receive(files, tmp_path / "uploads")
    reasons = dict(series.rejected)
    assert list(series.slices["name"]) == ["ok.dcm"]
    assert "16 x 16 pixels, too small" in reasons["tiny.dcm"]
    assert "multi-frame" in reasons["frames.dcm"] and "AttributeError" not in reasons["frames.dcm"]
    assert "not a DICOM file" in reasons["notes.txt"] and "force=True" not in reasons["notes.txt"]
    assert all("\n" not in reason for reason in reasons.values())


def test_file_names_are_shown_as_literal_text():
    shown = service.literal("**x** [click](https://evil.example).dcm")
    assert shown == r"\*\*x\*\* \[click\]\(https\://evil\.example\)\.dcm"
    assert service.literal("a\nb") == "a b" and service.literal("plain") == "plain"


def test_no_subtype_is_flagged_where_any_is_not(app_data):
    from ichlib import runs, tables

    report = service.Report(["a", "b"], np.array([0.0, 1.0]),
                            np.array([[0.2, 0.0, 0.0, 0.0, 0.9, 0.0], [0.9, 0.0, 0.0, 0.0, 0.9, 0.0]]),
                            np.array([0.5, 0.5, 0.5, 0.5, 0.1, 0.5]), ["m"], 0.1, {})
    assert report.flagged.loc["a"].tolist() == [False] * 6
    assert report.flagged.loc["b", "subarachnoid"] and report.study_flagged["subarachnoid"]
    _, truth, probs = runs.load_predictions(app_data["run"], "val")
    effect = tables.hierarchy_effect(truth, probs)
    from ichlib.metrics import per_label_auc

    assert effect.at["any", "AUC"] == pytest.approx(per_label_auc(truth, probs)["any"])  # no `any` AUC lost
    assert effect.at["any", "F1 alone"] == effect.at["any", "F1 gated by any"]


@pytest.mark.slow
def test_a_series_model_is_offered_for_its_runs_and_reads_the_series(app_data, monkeypatch, tmp_path):
    from ichlib import runs, sequence

    monkeypatch.setenv("ICHBOOK_DATA", str(app_data["root"]))
    folder = app_data["run"]
    assert service.series_model_for([folder]) is None
    series = service.cohort_series(app_data["index"], app_data["index"]["study"].iloc[0])
    with pytest.raises(service.InputError, match="no series model"):
        service.analyse_series(series, [folder])
    ids, features = runs.load_features(folder, "val")
    _, truth, probs = runs.load_predictions(folder, "val")
    chunks = [(features[:10], truth[:10]), (features[10:], truth[10:])]
    model = sequence.fit(chunks, chunks, seed=0, units=8, epochs=2)
    sequence.save(model, app_data["root"] / "series" / "test" / "m", [folder], validation=(ids, truth, probs))
    assert service.series_model_for([folder]) is not None
    report = service.analyse_series(series, [folder])
    assert report.probs.shape == (len(series.slices), 6) and report.models[-1] == "series model"
    import shutil

    shutil.rmtree(app_data["root"] / "series")  # the session's shared data folder, as it was


def test_a_study_is_decided_with_thresholds_chosen_on_validation_studies(app_env):
    """The Study table: thresholds from the run's validation studies (its data's index is at hand), and its
    "positive" exactly where some slice reaches the study's threshold."""
    from ichlib import runs

    app_data = app_env
    index = app_data["index"]
    series = service.cohort_series(index, index["study"].iloc[0])
    report = service.analyse(series, [app_data["run"]])
    assert report.study_thresholds is not None and report.study_thresholds.shape == (6,)
    ids, truth, probs = runs.load_predictions(app_data["run"], "val")
    from ichlib.ensemble import study_thresholds

    np.testing.assert_allclose(report.study_thresholds, study_thresholds(ids, truth, probs, index["study"]))
    assert (report.study_flagged == (report.study_slices > 0)).all()
    plain = service.Report(report.ids, report.z, report.probs, report.thresholds, report.models, 0.0, {})
    np.testing.assert_array_equal(plain.study_cutoffs, report.thresholds)  # no studies at hand: the slice ones


def test_text_from_files_is_shown_as_typed_never_as_markup():
    """A right-to-left override cannot turn a warning round; a UID with `$^^$` is drawn as typed (mathtext
    would stop the page); Markdown links and bare addresses stay text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert "\u202e" not in service.literal("scan\u202egpj.dcm")
    shown = service.literal("[click me](https://evil.example/x) **bold** www.evil.example.dcm")
    assert "](" not in shown and "**" not in shown and "www.evil.example" not in shown
    fig, ax = plt.subplots()
    ax.set_title(service.plot_text("1.2.3$^^$4: p(any) = 0.5"))
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
        assert service.retention_minutes(text) == minutes
    files, _ = study_files(app_data)
    series = service.receive(files, tmp_path / "uploads")
    assert stat.S_IMODE(series.upload.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in series.upload.iterdir()} == {0o600}
    old = time.time() - 2 * 3600
    os.utime(series.upload, (old, old))
    service.in_use(series)  # the reader moves to the next slice
    assert service.purge_uploads(tmp_path / "uploads", older_than_min=60) == 0 and series.upload.exists()
    os.utime(series.upload, (old, old))
    assert service.purge_uploads(tmp_path / "uploads", older_than_min=60) == 1 and not series.upload.exists()


def test_the_history_file_is_private(tmp_path):
    import stat

    from ichlib.app.history import History

    History(tmp_path / "app" / "history.sqlite")
    assert stat.S_IMODE((tmp_path / "app" / "history.sqlite").stat().st_mode) == 0o600


def test_the_viewer_heatmap_lies_in_the_slice_frame_inside_the_head_box(app_env):
    from ichlib.rsna import read_hu

    index = app_env["index"]
    series = service.cohort_series(index, index["study"].iloc[0])
    k = len(series.slices) // 2
    hu = read_hu(series.slices["path"].iloc[k])
    heat = service.slice_heatmap(series, [app_env["run"]], k, "any", hu.shape)
    assert heat.shape == hu.shape and np.isfinite(heat).all()
    box = series.boxes[str(app_env["run"])][k]
    if box is not None:  # a run cut to the head: nothing drawn outside its box
        top, bottom, left, right = box
        outside = np.ones(hu.shape, bool)
        outside[max(top, 0):bottom, max(left, 0):right] = False
        assert heat[outside].max() == 0


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


def test_series_identity_patients_positions_and_anonymised_files(app_data, tmp_path):
    """Two patients under one series UID are refused by name; a re-exported copy (new SOP UID, same position)
    is kept once; a slice without a usable position is left out by name; files without PatientID are read."""
    from pydicom.uid import generate_uid

    files, _ = study_files(app_data)
    name, content = files[1]
    mixed = [*files[:1], (name, _edited(content, PatientID="ID_someone_else")), *files[2:]]
    with pytest.raises(service.InputError, match="2 patients"):
        service.receive(mixed, tmp_path / "a")
    copy = ("copy.dcm", _edited(files[0][1], SOPInstanceUID=generate_uid()))
    series = service.receive([*files, copy], tmp_path / "b")
    assert len(series.slices) == len(files)
    assert [n for n, _ in series.rejected] == ["copy.dcm"] and "second copy" in series.rejected[0][1]
    nowhere = ("nowhere.dcm", _edited(files[0][1], SOPInstanceUID=generate_uid(),
                                      ImagePositionPatient=[0.0, 0.0, float("nan")]))
    series = service.receive([*files[1:], nowhere], tmp_path / "c")
    assert [n for n, _ in series.rejected] == ["nowhere.dcm"] and "no usable z" in series.rejected[0][1]
    anonymous = [(n, _edited(c, PatientID=None)) for n, c in files]
    assert len(service.receive(anonymous, tmp_path / "d").slices) == len(files)
