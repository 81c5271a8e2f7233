"""What the reader app hands on: the report as CSV and JSON, and as DICOM that radiology systems read.

- ``report_csv`` / ``report_json``: per slice its z, six probabilities and six flags; per study its six
  probabilities, thresholds and decisions; the models and what they were trained on. A spreadsheet opening the
  CSV never runs a cell taken from a file (a value starting with ``= + - @`` is quoted, as OWASP advises).
- ``structured_report``: a DICOM Comprehensive 3D SR (TID 1500, *Measurement Report*, made with highdicom) in the
  analysed study: one measurement group per label with the study's probability and a present / absent
  evaluation, the algorithm named, every analysed slice as evidence. ``any`` is coded as SNOMED CT 1386000
  (*Intracranial hemorrhage*); the five subtypes have no code in DICOM's own lists, so they carry codes of a
  local scheme (``99ICHBOOK``; DICOM reserves designators starting with 99 for this) with their names.
- ``secondary_capture``: one slice with the Grad-CAM overlay burned in, as a DICOM Secondary Capture image in the
  same study (``BurnedInAnnotation`` YES: it is a picture of the finding, not a CT image).

Both DICOM objects are research output (their series description says so). The RSNA data's "UIDs" (``ID_...``)
are not valid DICOM UIDs; where a source UID is not valid, the export uses ``2.25.<digits>`` made from it (the
same source value always gives the same UID), so the SR and the capture still share one study.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..metrics import flags
from ..labels import LABELS
from ..rsna import lenient_uids

MANUFACTURER = "ichbook (research software, not a medical device)"
SERIES_DESCRIPTION = "ichbook ICH findings (research, not for diagnosis)"
CAPTURE_DESCRIPTION = "ichbook Grad-CAM (research, not for diagnosis)"
LOCAL_SCHEME = "99ICHBOOK"
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A CSV cell a spreadsheet shows as text: a string starting like a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def slice_frame(report) -> pd.DataFrame:
    """Per slice (ordered by z): ID, z, the six probabilities and the six slice decisions."""
    frame = pd.DataFrame({"ID": report.ids, "z (mm)": report.z})
    for k, label in enumerate(LABELS):
        frame[f"p({label})"] = report.probs[:, k]
    flagged = flags(report.probs, report.thresholds)
    for k, label in enumerate(LABELS):
        frame[f"flagged {label}"] = flagged[:, k]
    return frame


def report_csv(report) -> bytes:
    """The slice table as CSV (UTF-8): one row per slice, probabilities to 4 decimals."""
    frame = slice_frame(report).round(4)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(frame.columns)
    for row in frame.itertuples(index=False):
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def study_findings(report) -> pd.DataFrame:
    """Per label: the study's probability (its highest slice), the study threshold, slices at or above it and the
    decision: the Study table of the app."""
    return pd.DataFrame({"probability": report.study_probs, "threshold": report.study_cutoffs,
                         "slices": report.study_slices, "positive": report.study_flagged})


def report_json(report, trained_on: str = "") -> bytes:
    """The whole report as JSON: details, models, thresholds, study findings and every slice."""
    study = study_findings(report)
    payload = {
        "software": f"ichbook {__version__}",
        "disclaimer": "Research software, not a medical device: not for diagnosis.",
        "trained_on": trained_on,
        "details": {k: str(v) for k, v in report.details.items()},
        "models": list(report.models),
        "seconds": round(float(report.seconds), 3),
        "slice_thresholds": dict(zip(LABELS, np.round(report.thresholds, 4).tolist())),
        "study": {label: {"probability": round(float(study.at[label, "probability"]), 4),
                          "threshold": round(float(study.at[label, "threshold"]), 4),
                          "slices": int(study.at[label, "slices"]), "positive": bool(study.at[label, "positive"])}
                  for label in LABELS},
        "slices": [{"ID": row["ID"], "z": round(float(row["z (mm)"]), 3),
                    "probabilities": {label: round(float(row[f"p({label})"]), 4) for label in LABELS},
                    "flagged": {label: bool(row[f"flagged {label}"]) for label in LABELS}}
                   for row in slice_frame(report).to_dict("records")],
    }
    return json.dumps(payload, indent=1).encode("utf-8")


def valid_uid(value: str) -> str:
    """``value`` if it is a valid DICOM UID, else ``2.25.<decimal>`` made from it (the same value, the same UID)."""
    value = str(value or "").strip()
    if _UID.match(value) and len(value) <= 64:
        return value
    digest = int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:16], "big")
    return f"2.25.{digest}"


def _source(path: str | Path):
    """One analysed file's header, its UIDs made valid for export (see the module's note)."""
    import pydicom

    with lenient_uids():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            if keyword in ds:
                setattr(ds, keyword, valid_uid(ds.get(keyword)))
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in ("PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                    "AccessionNumber", "ReferringPhysicianName"):  # type 2 in the study the exports join
        if keyword not in ds:
            setattr(ds, keyword, None)
    if "PatientID" not in ds or not ds.PatientID:
        ds.PatientID = ""
    return ds


def _label_code(label: str):
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    if label == "any":
        return codes.SCT.IntracranialHemorrhage
    return CodedConcept(value=f"ICH-{label[:12].upper()}", scheme_designator=LOCAL_SCHEME,
                        meaning=f"{label.capitalize()} hemorrhage")


def structured_report(series, report, series_number: int = 990):
    """The study's findings as a DICOM Comprehensive 3D SR (a ``pydicom.Dataset``, ready for ``save_as``)."""
    import highdicom as hd
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    sources = [_source(p) for p in series.slices["path"]]
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="ichbook", manufacturer_name=MANUFACTURER, model_name=f"ichbook {__version__}"))
    algorithm = hd.sr.AlgorithmIdentification(name="ichbook", version=__version__,
                                              parameters=[str(m) for m in report.models])
    probability = CodedConcept(value="ICH-PROB", scheme_designator=LOCAL_SCHEME, meaning="Model probability")
    study = study_findings(report)
    groups = []
    for label in LABELS:
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"ichbook {label}"),
            finding_type=_label_code(label),
            algorithm_id=algorithm,
            measurements=[hd.sr.Measurement(name=probability, value=round(float(study.at[label, "probability"]), 4),
                                            unit=codes.UCUM.NoUnits, algorithm_id=algorithm)],
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(
                name=_label_code(label),
                value=codes.SCT.Present if study.at[label, "positive"] else codes.SCT.Absent)]))
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.ComputedTomography, imaging_measurements=groups)
    sr = hd.sr.Comprehensive3DSR(
        evidence=sources, content=content[0], series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True)
    sr.SeriesDescription = SERIES_DESCRIPTION
    return sr


def burned_overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float) -> np.ndarray:
    """A windowed slice (0-1) with a heatmap (0-1, the slice's frame) blended in the jet colour map, as 8-bit RGB."""
    from matplotlib import colormaps

    gray = np.repeat(np.clip(np.asarray(image, np.float32), 0, 1)[..., None], 3, axis=2)
    heat = colormaps["jet"](np.clip(np.asarray(heatmap, np.float32), 0, 1))[..., :3]
    opacity = float(np.clip(opacity, 0.0, 1.0))
    return np.round((1 - opacity) * gray * 255 + opacity * heat * 255).astype(np.uint8)


def secondary_capture(series, slice_index: int, rgb: np.ndarray, series_number: int = 991):
    """One slice's overlay (``rgb``: rows x columns x 3, uint8, the slice's own frame) as a DICOM Secondary
    Capture image in the analysed study."""
    import highdicom as hd

    ref = _source(series.slices["path"].iloc[slice_index])
    spacing = ref.get("PixelSpacing")
    capture = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref, pixel_array=np.ascontiguousarray(rgb, np.uint8), photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=slice_index + 1, manufacturer=MANUFACTURER,
        pixel_spacing=tuple(float(s) for s in spacing) if spacing else None,
        patient_orientation=("L", "P"))
    capture.SeriesDescription, capture.BurnedInAnnotation = CAPTURE_DESCRIPTION, "YES"
    return capture


def dicom_bytes(dataset) -> bytes:
    """A dataset as the bytes of a DICOM file (preamble, file meta)."""
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def read_back(content: bytes) -> dict:
    """What a DICOM export says, read with pydicom alone: its SOP class, study, series description and, for an SR,
    each finding's probability and evaluation (a check that the file stands on its own)."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(content))
    found = {"sop_class": str(ds.SOPClassUID), "study": str(ds.StudyInstanceUID),
             "patient": str(ds.get("PatientID", "")), "series_description": str(ds.get("SeriesDescription", ""))}
    if "ContentSequence" in ds:
        findings = {}
        for item in _walk(ds.ContentSequence):
            if item.get("ValueType") != "CONTAINER" or "ContentSequence" not in item:
                continue
            name = prob = value = None
            for child in item.ContentSequence:
                concept = child.ConceptNameCodeSequence[0]
                if child.ValueType == "NUM" and concept.CodeValue == "ICH-PROB":
                    prob = float(child.MeasuredValueSequence[0].NumericValue)
                elif child.ValueType == "CODE" and concept.CodeMeaning != "Finding":
                    if "ConceptCodeSequence" in child and child.ConceptCodeSequence[0].CodeMeaning in ("Present",
                                                                                                        "Absent"):
                        name, value = concept.CodeMeaning, child.ConceptCodeSequence[0].CodeMeaning
            if name is not None:
                findings[name] = {"probability": prob, "evaluation": value}
        found["findings"] = findings
    else:
        found["rows_columns"] = (int(ds.Rows), int(ds.Columns))
        found["photometric"] = str(ds.PhotometricInterpretation)
    return found


def findings_table(report, exported: dict) -> pd.DataFrame:
    """Per label: the app's study probability and decision beside what the SR (read back by :func:`read_back`)
    says, so a reader sees the file carries the page's findings."""
    study = study_findings(report)
    read = {label: exported["findings"].get(_label_code(label).meaning, {}) for label in LABELS}
    return pd.DataFrame({"app probability": study["probability"].round(4),
                         "app decision": np.where(study["positive"], "positive", "negative"),
                         "SR probability": [read[label].get("probability") for label in LABELS],
                         "SR evaluation": [read[label].get("evaluation") for label in LABELS]},
                        index=pd.Index(list(LABELS), name="label"))


def _walk(sequence):
    for item in sequence:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)
