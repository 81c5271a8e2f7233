"""What the reader app receives: uploaded files checked (sizes, counts, readable DICOM, one series, one slice per
position), stored under names the app makes up, kept for a while and then purged; text from them made safe for
the page.

Uploaded files are stored under the app's own data folder with names the app makes up: an uploaded name is shown
to the user, never used as a path. The analysis of a received series is ``ichlib.app.service``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..rsna import DicomError, lenient_uids, read_header, read_hu

MAX_FILE_MB = 20      # one CT slice is ~0.5 MB; anything far larger is not one
MAX_TOTAL_MB = 400    # a whole series
MAX_FILES = 1000
MIN_SIDE = 64         # px: a head CT slice is 512 (sometimes 256-768); far smaller is a thumbnail or a scout
# Uploads are patient data: an upload refused is deleted at once, an analysed one when the session moves on to
# another series or, at the latest, this many minutes after it arrived (ICHBOOK_UPLOAD_RETENTION_MIN).
DEFAULT_RETENTION_MIN = 60.0


def retention_minutes(text: str | None = None) -> float:
    """``ICHBOOK_UPLOAD_RETENTION_MIN`` read safely: a positive number of minutes; anything else (``abc``, ``-5``,
    ``0``, ``nan``) keeps the default, with a line in the server log, instead of stopping the app at import or
    purging every upload at once."""
    text = os.environ.get("ICHBOOK_UPLOAD_RETENTION_MIN") if text is None else text
    if text is None:
        return DEFAULT_RETENTION_MIN
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        logging.getLogger(__name__).warning("ICHBOOK_UPLOAD_RETENTION_MIN=%r is not a positive number of minutes; "
                                            "keeping %g", text, DEFAULT_RETENTION_MIN)
        return DEFAULT_RETENTION_MIN
    return value


UPLOAD_RETENTION_MIN = retention_minutes()

# Tags shown on the analysis page (and nothing else is read from the files about the patient).
DETAIL_TAGS = {"PatientID": "patient ID", "PatientSex": "sex", "PatientAge": "age", "StudyDate": "study date",
               "StudyDescription": "study", "SeriesDescription": "series", "Manufacturer": "scanner maker",
               "SliceThickness": "slice thickness (mm)", "StudyInstanceUID": "study UID"}


class InputError(ValueError):
    """Files the app cannot analyse as one CT series; the message names the file(s)."""


@dataclass
class Series:
    """One CT series, slices ordered by z (``slices``: ID, z, path, name = the name the user gave the file)."""

    slices: pd.DataFrame
    details: dict
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason), files left out
    prepared: dict = field(default_factory=dict, repr=False)  # network inputs per (run, windows), made once
    boxes: dict = field(default_factory=dict, repr=False)  # per run: where each slice's input was cut from
    upload: Path | None = None  # the folder of an uploaded series (None: a local data set, never deleted)

    @property
    def study(self) -> str:
        return self.details.get("study UID", "")


def _details(path: str | Path) -> dict:
    import pydicom

    with lenient_uids():
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(DETAIL_TAGS))
    return {label: str(ds.get(tag, "")) for tag, label in DETAIL_TAGS.items()}


def receive(files: list[tuple[str, bytes]], upload_dir: str | Path) -> Series:
    """Check uploaded files and keep those that form one CT series.

    Every file is read whole here, header and pixels, so a file that would fail later is left out now.

    Args:
        files: (name the user gave, content) per file.
        upload_dir: the app's folder for uploads; each call writes one new sub-folder of numbered files.

    Raises:
        InputError: no file, too many or too large files, no readable CT slice, or slices of several series;
            the message names the files, and nothing of the upload is kept. Files that cannot be analysed (not
            DICOM, truncated header or pixels, another modality, multi-frame, too small, a second copy of a
            slice) are left out and listed in ``Series.rejected`` when others remain.
    """
    _check_sizes(files)
    folder = Path(upload_dir) / uuid.uuid4().hex
    Path(upload_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.mkdir(mode=0o700)  # patient data: this user's only
    try:
        rows, rejected = _read_files(files, folder)
        if not rows:
            reasons = "; ".join(f"{reason}" for _, reason in rejected[:5])
            raise InputError(f"none of the {len(files)} file(s) is a readable CT slice: {reasons}")
        slices = pd.DataFrame(rows)
        series = slices["series"].unique()
        if len(series) > 1:
            first = slices[slices["series"] == series[0]]["name"].iloc[0]
            other = slices[slices["series"] == series[1]]["name"].iloc[0]
            raise InputError(f"the files hold {len(series)} series (e.g. {first} and {other}): upload one series "
                             "at a time")
        patients = slices["patient"].unique()
        if len(patients) > 1:  # one SeriesInstanceUID can be reused across patients by a careless export
            first = slices[slices["patient"] == patients[0]]["name"].iloc[0]
            other = slices[slices["patient"] == patients[1]]["name"].iloc[0]
            raise InputError(f"the files belong to {len(patients)} patients under one series UID (e.g. {first} "
                             f"and {other}): upload one patient's series at a time")
        slices, copies = _one_per_position(slices)
        rejected += copies
        received = _series(slices, rejected)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # a refused upload leaves nothing behind
        raise
    received.upload = folder
    return received


def _check_sizes(files: list[tuple[str, bytes]]) -> None:
    if not files:
        raise InputError("no file was given")
    if len(files) > MAX_FILES:
        raise InputError(f"{len(files)} files: at most {MAX_FILES} per series")
    for name, content in files:
        if len(content) > MAX_FILE_MB * 2**20:
            raise InputError(f"{name}: {len(content) / 2**20:.0f} MB, larger than the {MAX_FILE_MB} MB a CT slice can be")
    total = sum(len(content) for _, content in files)
    if total > MAX_TOTAL_MB * 2**20:
        raise InputError(f"{total / 2**20:.0f} MB in all: at most {MAX_TOTAL_MB} MB per series")


def _read_files(files: list[tuple[str, bytes]], folder: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """Write each file under a name of ours and read it whole: (readable slices, (name, reason) of the others)."""
    rows, rejected, seen = [], [], {}
    for k, (name, content) in enumerate(files):
        path = folder / f"{k:05d}.dcm"  # our name, never the user's
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(content)
        try:
            header = read_header(path)
            if min(header["rows"], header["columns"]) < MIN_SIDE:
                raise DicomError(f"{path}: {header['rows']} x {header['columns']} pixels, too small for a head CT "
                                 f"slice (at least {MIN_SIDE} a side)")
            if header["ID"] in seen:
                raise DicomError(f"{path}: the same slice (SOP instance {header['ID']}) as {seen[header['ID']]}")
            read_hu(path)  # the pixels too: a file cut short after its header fails here, not in the analysis
        except (DicomError, OSError) as exc:
            rejected.append((name, str(exc).replace(str(path), name)))
            path.unlink()
            continue
        seen[header["ID"]] = name
        rows.append({**header, "name": name})
    return rows, rejected


def _one_per_position(slices: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """One slice per position in each series: a re-exported copy (a new SOP UID, the same z) is left out and
    named, so a slice is not counted twice."""
    duplicate = slices.duplicated(["series", "z"], keep="first")
    first = slices[~duplicate].set_index(["series", "z"])["name"]
    copies = [(row.name_, f"a second copy of the slice at z = {row.z:g} mm (as {first.loc[(row.series, row.z)]})")
              for row in slices[duplicate].rename(columns={"name": "name_"}).itertuples()]
    return slices[~duplicate].reset_index(drop=True), copies


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # marks that reorder the text around them


def literal(text: str) -> str:
    """Text that Streamlit's Markdown shows as typed: a file name like ``**x** [click](https://a.b).dcm`` is
    neither bold nor a link (every Markdown character escaped, line breaks made spaces), and a right-to-left
    override in a name cannot turn the sentence it sits in around."""
    return _MARKDOWN.sub(r"\\\1", " ".join(_BIDI.sub("", str(text)).splitlines()))


def plot_text(text: str) -> str:
    """Text from a file for a matplotlib title: shown as typed, never read as mathtext (``$^^$`` in a UID
    would stop the drawing)."""
    return _BIDI.sub("", str(text)).replace("$", r"\$")


def quiet_pydicom() -> None:
    """Keep pydicom's warnings out of the app's server log: they quote the values they object to (a study's UIDs,
    a patient's name) and the app already names each file it cannot use. Called once by the app's process."""
    import warnings

    logging.getLogger("pydicom").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


def discard(series: Series | None) -> None:
    """Delete an uploaded series' files (a local data set's are never touched)."""
    if series is not None and series.upload is not None:
        shutil.rmtree(series.upload, ignore_errors=True)


def page_error(page: str, exc: BaseException) -> str:
    """The one line a page shows when it fails (no traceback, no server path); the server log gets where it
    failed, the code's frames without the message, which may carry a file's UIDs."""
    import traceback

    frames = "".join(traceback.format_tb(exc.__traceback__))
    logging.getLogger("ichlib.app").error("the %s page failed with %s at\n%s", page, type(exc).__name__, frames)
    return (f"The {page} page could not be shown ({type(exc).__name__}). Nothing was lost; the details are in "
            "the server's log.")


def in_use(series: Series) -> None:
    """Mark an uploaded series as read now: the retention counts from its last use, so a reader in the middle
    of a study never has its files purged by another session."""
    if series.upload is not None:
        try:
            os.utime(series.upload)
        except OSError:
            pass


def purge_uploads(upload_dir: str | Path, older_than_min: float = UPLOAD_RETENTION_MIN) -> int:
    """Delete upload folders not used for longer than the retention (:func:`in_use` marks a use); returns how
    many were deleted."""
    root, cutoff, deleted = Path(upload_dir), time.time() - older_than_min * 60, 0
    for folder in root.glob("*") if root.exists() else []:
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            deleted += 1
    return deleted


def _series(slices: pd.DataFrame, rejected: list) -> Series:
    slices = slices.sort_values("z", kind="stable").reset_index(drop=True)
    return Series(slices[["ID", "z", "path", "name"]], _details(slices["path"].iloc[0]), rejected)


def cohort_series(index: pd.DataFrame, study: str) -> Series:
    """A study of a local data set (``ichlib.store.index``), read where it lies (its first series)."""
    rows = index[index["study"] == study]
    if rows.empty:
        raise InputError(f"study {study!r} is not in this data set")
    rows = rows[rows["series"] == rows["series"].iloc[0]].reset_index()
    rows["name"] = [Path(p).name for p in rows["path"]]
    return _series(rows, [])
