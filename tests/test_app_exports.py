"""ichlib.app.exports: the report as CSV and JSON, the findings as a DICOM SR, an overlay as a DICOM capture; each
read back with pydicom alone (and with dicom3tools' dciodvfy where it is installed)."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import subprocess
import warnings

import numpy as np
import pydicom
import pytest

from ichlib.app import exports, service, upload
from ichlib.labels import LABELS

from .conftest import write_dicom


def a_report(series, probs=None, study_thresholds=0.6):
    n = len(series.slices)
    probs = np.random.default_rng(3).random((n, 6)) if probs is None else probs
    return service.Report(list(series.slices["ID"]), series.slices["z"].to_numpy(), probs, np.full(6, 0.5),
                          ["run-a", "run-b"], 1.25, series.details, np.full(6, study_thresholds))


@pytest.fixture
def series(app_data):
    index = app_data["index"]
    return upload.cohort_series(index, index["study"].iloc[0])


def test_the_csv_has_every_slice_and_never_a_formula(series):
    report = a_report(series)
    report.ids[0] = "=HYPERLINK(\"http://evil.example\")"  # an ID from a hostile file
    rows = list(csv.reader(io.StringIO(exports.report_csv(report).decode("utf-8"))))
    assert rows[0][:3] == ["ID", "z (mm)", "p(any)"] and len(rows) == len(series.slices) + 1
    assert rows[1][0].startswith("'=")  # text to a spreadsheet, not a formula
    assert float(rows[2][2]) == pytest.approx(report.probs[1, 0], abs=1e-4)
    flagged = [r[8] for r in rows[1:]]
    assert flagged == [str(p >= 0.5) for p in report.probs[:, 0]]


def test_the_json_matches_the_study_table(series):
    probs = np.full((len(series.slices), 6), 0.1)
    probs[2, [0, 5]] = 0.9  # one slice: any and subdural above both thresholds
    report = a_report(series, probs)
    payload = json.loads(exports.report_json(report, "a synthetic phantom"))
    assert payload["models"] == ["run-a", "run-b"] and payload["trained_on"] == "a synthetic phantom"
    assert payload["study"]["any"] == {"probability": 0.9, "threshold": 0.6, "slices": 1, "positive": True}
    assert payload["study"]["subdural"]["positive"] and not payload["study"]["epidural"]["positive"]
    assert len(payload["slices"]) == len(series.slices) and payload["slices"][2]["flagged"]["subdural"]
    assert "not for diagnosis" in payload["disclaimer"]


def test_the_structured_report_reads_back_with_every_finding(series, tmp_path):
    probs = np.full((len(series.slices), 6), 0.05)
    probs[1, [0, 3]] = [0.95, 0.8]
    report = a_report(series, probs)
    content = exports.dicom_bytes(exports.structured_report(series, report))
    found = exports.read_back(content)
    assert found["sop_class"] == pydicom.uid.Comprehensive3DSRStorage
    assert found["patient"] == series.details["patient ID"]
    assert found["study"] == exports.valid_uid(series.slices.pipe(lambda s: pydicom.dcmread(
        s["path"].iloc[0], stop_before_pixels=True).StudyInstanceUID))
    findings = found["findings"]
    assert findings["Intracranial hemorrhage (disorder)"] == {"probability": 0.95, "evaluation": "Present"}
    assert findings["Intraventricular hemorrhage"] == {"probability": 0.8, "evaluation": "Present"}
    assert findings["Subdural hemorrhage"] == {"probability": 0.05, "evaluation": "Absent"}
    assert len(findings) == len(LABELS)
    ds = pydicom.dcmread(io.BytesIO(content))
    evidence = {item.ReferencedSOPInstanceUID for study in ds.CurrentRequestedProcedureEvidenceSequence
                for s in study.ReferencedSeriesSequence for item in s.ReferencedSOPSequence}
    assert len(evidence) == len(series.slices)  # every analysed slice is the SR's evidence
    _dciodvfy(content, tmp_path / "sr.dcm")


def test_the_overlay_capture_sits_in_the_same_study(series, tmp_path):
    from ichlib.rsna import read_hu

    report = a_report(series)
    hu = read_hu(series.slices["path"].iloc[1])
    heat = np.zeros(hu.shape, np.float32)
    heat[:8, :8] = 1.0
    rgb = exports.burned_overlay(np.zeros(hu.shape), heat, 0.5)
    assert rgb.shape == (*hu.shape, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) != (0, 0, 0) and tuple(rgb[-1, -1]) == (0, 0, 64)  # jet 0 (dark blue) at half opacity on black
    capture = exports.dicom_bytes(exports.secondary_capture(series, 1, rgb))
    sr = exports.read_back(exports.dicom_bytes(exports.structured_report(series, report)))
    found = exports.read_back(capture)
    assert found["sop_class"] == pydicom.uid.SecondaryCaptureImageStorage
    assert found["study"] == sr["study"] and found["rows_columns"] == hu.shape and found["photometric"] == "RGB"
    ds = pydicom.dcmread(io.BytesIO(capture))
    assert ds.BurnedInAnnotation == "YES" and "not for diagnosis" in ds.SeriesDescription
    np.testing.assert_array_equal(ds.pixel_array, rgb)
    _dciodvfy(capture, tmp_path / "sc.dcm")


def test_invalid_source_uids_map_to_one_valid_uid_each():
    assert exports.valid_uid("1.2.840.113619.2.55") == "1.2.840.113619.2.55"
    mapped = exports.valid_uid("ID_546122597e")
    assert mapped.startswith("2.25.") and len(mapped) <= 64 and mapped == exports.valid_uid("ID_546122597e")
    assert exports.valid_uid("ID_546122597f") != mapped and exports.valid_uid("1.02.3").startswith("2.25.")


def test_pydicom_warnings_stay_out_of_the_app_log(tmp_path, caplog):
    path = write_dicom(tmp_path / "x.dcm", np.zeros((64, 64), np.uint16), StudyInstanceUID="ID_SECRET_STUDY")
    level = logging.getLogger("pydicom").level
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            upload.quiet_pydicom()
            with caplog.at_level(logging.DEBUG):
                assert pydicom.dcmread(path).StudyInstanceUID == "ID_SECRET_STUDY"  # pydicom objects to it
        assert not [w for w in seen if "SECRET" in str(w.message)]
        assert "SECRET" not in caplog.text
    finally:
        logging.getLogger("pydicom").setLevel(level)


def _dciodvfy(content: bytes, path):
    """dicom3tools' validator, where installed: no line it prints may be an error."""
    if shutil.which("dciodvfy") is None:
        return
    path.write_bytes(content)
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
    assert not errors, errors


def test_the_findings_table_puts_the_page_beside_the_file(series):
    probs = np.full((len(series.slices), 6), 0.2)
    probs[0, [0, 1]] = 0.7
    report = a_report(series, probs)
    table = exports.findings_table(report, exports.read_back(exports.dicom_bytes(exports.structured_report(series,
                                                                                                        report))))
    assert list(table.index) == list(LABELS)
    assert (table["app probability"] == table["SR probability"]).all()
    assert list(table["app decision"].map({"positive": "Present", "negative": "Absent"})) == list(table["SR evaluation"])
    assert table.at["epidural", "app decision"] == "positive" and table.at["subdural", "app decision"] == "negative"


def test_a_single_anonymous_slice_with_an_odd_name_still_exports(tmp_path):
    """One slice, no PatientID, RSNA-style identifiers and a hostile file name: the SR and the capture are made
    and read back, the empty patient kept empty."""
    stored = np.full((64, 64), 1024 + 30, np.uint16)
    path = write_dicom(tmp_path / "x.dcm", stored, PatientID=None, image_id="ID_odd")
    series = upload.receive([("**x** [y](https://e.x)\u202e.dcm", path.read_bytes())], tmp_path / "uploads")
    report = a_report(series, probs=np.full((1, 6), 0.9))
    found = exports.read_back(exports.dicom_bytes(exports.structured_report(series, report)))
    assert found["patient"] == "" and found["study"].startswith("2.25.") and len(found["findings"]) == 6
    capture = exports.read_back(exports.dicom_bytes(exports.secondary_capture(
        series, 0, exports.burned_overlay(np.zeros((64, 64)), np.ones((64, 64)), 1.0))))
    assert capture["study"] == found["study"] and capture["rows_columns"] == (64, 64)
    upload.discard(series)
