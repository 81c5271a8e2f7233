"""ichlib.app.service: a series analysed, its study decided, Grad-CAM for one slice, the models' scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ichlib.app import service, upload



def study_files(app_data, study=None):
    index = app_data["index"]
    study = study or index["study"].iloc[0]
    rows = index[index["study"] == study]
    return [(Path(p).name, Path(p).read_bytes()) for p in rows["path"]], rows


def test_a_study_is_analysed_with_one_model_and_its_heatmap_drawn(app_data):
    index = app_data["index"]
    series = upload.cohort_series(index, index["study"].iloc[0])
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
    with pytest.raises(upload.InputError, match="ID_nope"):
        upload.cohort_series(index, "ID_nope")
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
    series = upload.receive([cut, *files[1:]], tmp_path / "uploads")
    assert len(series.slices) == len(files) - 1
    assert series.rejected[0][0] == name and "pixel data" in series.rejected[0][1]
    service.analyse(series, [app_data["run"]])  # the rest analyses


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
    series = upload.cohort_series(app_data["index"], app_data["index"]["study"].iloc[0])
    with pytest.raises(upload.InputError, match="no series model"):
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
    series = upload.cohort_series(index, index["study"].iloc[0])
    report = service.analyse(series, [app_data["run"]])
    assert report.study_thresholds is not None and report.study_thresholds.shape == (6,)
    ids, truth, probs = runs.load_predictions(app_data["run"], "val")
    from ichlib.ensemble import study_thresholds

    np.testing.assert_allclose(report.study_thresholds, study_thresholds(ids, truth, probs, index["study"]))
    assert (report.study_flagged == (report.study_slices > 0)).all()
    plain = service.Report(report.ids, report.z, report.probs, report.thresholds, report.models, 0.0, {})
    np.testing.assert_array_equal(plain.study_cutoffs, report.thresholds)  # no studies at hand: the slice ones


def test_the_viewer_heatmap_lies_in_the_slice_frame_inside_the_head_box(app_env):
    from ichlib.rsna import read_hu

    index = app_env["index"]
    series = upload.cohort_series(index, index["study"].iloc[0])
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
