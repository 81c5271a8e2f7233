"""Read the RSNA 2019 Intracranial Hemorrhage data in its Kaggle layout.

The phantom cohort (:mod:`ichlib.phantom`) is written in the same layout, so everything here reads either:

- ``stage_2_train.csv``: six rows per image, ``ID_<hex>_<subtype>,<0|1>``;
- ``stage_2_train/ID_<hex>.dcm``: one CT slice per file.

This module imports only ``ichlib.labels``, ``ichlib.preprocess``'s constants and ``ichlib.parallel``: it is the
bottom of the flow.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from .labels import LABELS, SUBTYPES
from .parallel import process_pool
from .preprocess import AIR_HU

# Header tags the index needs; reading only these keeps the scan cheap.
_INDEX_TAGS = [
    "SOPInstanceUID", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
    "ImagePositionPatient", "Rows", "Columns", "Modality", "NumberOfFrames",
]


class LabelError(ValueError):
    """A labels CSV that does not follow the RSNA six-row form."""


class DicomError(ValueError):
    """A file that cannot be read as one CT slice in Hounsfield units."""


# --------------------------------------------------------------------------------------------- labels
def read_labels(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read an RSNA labels file into one row per image.

    Args:
        csv_path: ``stage_2_train.csv`` (columns ``ID,Label``; IDs ``ID_<hex>_<subtype>``).

    Returns:
        DataFrame indexed by image ID (``ID_<hex>``, index name ``ID``) with one ``int8`` 0/1 column per label,
        in :data:`LABELS` order. Exact duplicate rows (the real file has some) are dropped.

    Raises:
        LabelError: naming the ID and the line for a malformed ID, an unknown subtype, a label other than 0/1,
            conflicting duplicates or an image missing one of the six rows.
        FileNotFoundError: the file does not exist.
    """
    csv_path = Path(csv_path)
    raw, line = _label_rows(csv_path)
    parts = raw["ID"].str.extract(r"^(ID_[0-9a-fA-F]+)_([a-z_]+)$")
    bad = parts[0].isna()
    if bad.any():
        i = bad.idxmax()
        raise LabelError(f"{csv_path}, line {line[i]}: malformed ID {raw['ID'][i]!r} "
                         "(expected ID_<hex>_<subtype>)")
    unknown = ~parts[1].isin(LABELS)
    if unknown.any():
        i = unknown.idxmax()
        raise LabelError(f"{csv_path}, line {line[i]}: unknown subtype {parts[1][i]!r} in ID {raw['ID'][i]!r}")
    label = raw["Label"].str.strip()
    bad_label = ~label.isin(["0", "1"])
    if bad_label.any():
        i = bad_label.idxmax()
        raise LabelError(f"{csv_path}, line {line[i]}: label {raw['Label'][i]!r} for {raw['ID'][i]!r} is not 0 or 1")

    table = pd.DataFrame({"image": parts[0], "subtype": parts[1], "label": label.astype(np.int8), "line": line})
    table = table.drop_duplicates(subset=["image", "subtype", "label"])
    clash = table.duplicated(subset=["image", "subtype"], keep=False)
    if clash.any():
        rows = table[clash]
        first = rows.iloc[0]
        lines = rows.loc[(rows.image == first.image) & (rows.subtype == first.subtype), "line"].tolist()
        raise LabelError(f"{csv_path}, lines {lines}: conflicting labels for {first.image}_{first.subtype}")
    return _wide_labels(table, csv_path)


def _label_rows(csv_path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The file's (ID, Label) rows as text, blank lines left out, and each row's line number in the file."""
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise
    except pd.errors.EmptyDataError:
        raise LabelError(f"{csv_path}: empty file (expected the header 'ID,Label' and one row per image and label)") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise LabelError(f"{csv_path}: not a CSV text file ({type(exc).__name__}: {exc})") from None
    if list(raw.columns) != ["ID", "Label"]:
        raise LabelError(f"{csv_path}: expected the header 'ID,Label', found {','.join(map(str, raw.columns))!r}")
    line = pd.Series(np.arange(len(raw)) + 2, index=raw.index)  # line 1 is the header; blank lines still count
    blank = (raw["ID"].str.strip() == "") & (raw["Label"].str.strip() == "")
    return raw[~blank], line[~blank]


def _wide_labels(table: pd.DataFrame, csv_path: Path) -> pd.DataFrame:
    """One row per image, the six labels as columns; every image has all six, and `any` is set wherever a subtype
    is (it is their union)."""
    wide = table.pivot(index="image", columns="subtype", values="label")
    wide = wide.reindex(columns=list(LABELS))
    missing = wide.isna()
    if missing.to_numpy().any():
        image = missing.any(axis=1).idxmax()
        absent = [c for c in LABELS if missing.at[image, c]]
        first_line = int(table.loc[table.image == image, "line"].min())
        raise LabelError(f"{csv_path}, line {first_line}: image {image} has no row for {', '.join(absent)}")
    wide = wide.astype(np.int8)
    orphan = (wide[list(SUBTYPES)].max(axis=1) == 1) & (wide["any"] == 0)
    if orphan.any():
        image = orphan.idxmax()
        subtype = next(s for s in SUBTYPES if wide.at[image, s] == 1)
        row = table[(table.image == image) & (table.subtype == "any")].iloc[0]
        raise LabelError(f"{csv_path}, line {row.line}: {image} has {subtype} = 1 but any = 0 "
                         "(any is the union of the subtypes)")
    wide.index.name = "ID"
    wide.columns.name = None
    return wide


# --------------------------------------------------------------------------------------------- pixels
def _first(value, default: float) -> float:
    """First value of a possibly multi-valued numeric tag (the real files hold both kinds)."""
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0]
    return float(value)


def _rescale(ds: pydicom.Dataset, path: Path) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept), or DicomError naming the file: a slope of 0 would make every pixel one
    value (a blank image read as "no bleed"), text is no number."""
    try:
        slope = _first(ds.get("RescaleSlope"), 1.0)
        intercept = _first(ds.get("RescaleIntercept"), 0.0)
    except (TypeError, ValueError):
        raise DicomError(f"{path}: RescaleSlope / RescaleIntercept are not numbers "
                         f"({ds.get('RescaleSlope')!r}, {ds.get('RescaleIntercept')!r})") from None
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
        raise DicomError(f"{path}: RescaleSlope {slope:g} / RescaleIntercept {intercept:g} cannot map the pixels "
                         "to HU")
    return slope, intercept


# RSNA image IDs ('ID_...') are not valid UIDs: pydicom would warn for every file as its tags are read or written.
lenient_uids = pydicom.config.disable_value_validation


def _quiet_uids(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with lenient_uids():
            return func(*args, **kwargs)

    return wrapper


def _open(path: Path, **kwargs) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError as exc:
        reason = str(exc).split(" Use force=True")[0].strip()  # pydicom's advice is for programmers, not users
        raise DicomError(f"{path}: not a DICOM file ({reason})") from exc
    except FileNotFoundError:
        raise
    except Exception as exc:  # pydicom raises many kinds for a truncated or garbled header
        raise DicomError(f"{path}: unreadable DICOM header, truncated or corrupt ({type(exc).__name__}: {exc})") from exc


MAX_SIDE = 2048  # rows and columns a slice may declare: CT slices are 512 (a few 1024); a file claiming more


def _check_ct(ds: pydicom.Dataset, path: Path) -> None:
    modality = ds.get("Modality")
    if modality is None:
        raise DicomError(f"{path}: no Modality tag: truncated, or not an image ({path.stat().st_size} bytes)")
    if modality != "CT":
        raise DicomError(f"{path}: not CT (Modality is {modality!r})")
    # checked from the header, before any decoding: a small compressed file may declare an 8192 x 8192 image
    rows, cols = ds.get("Rows"), ds.get("Columns")
    try:
        rows, cols = int(rows or 0), int(cols or 0)
    except (TypeError, ValueError):
        raise DicomError(f"{path}: Rows / Columns are not numbers ({rows!r} x {cols!r})") from None
    if rows > MAX_SIDE or cols > MAX_SIDE:
        raise DicomError(f"{path}: declares {rows} x {cols} pixels, more than the {MAX_SIDE} x {MAX_SIDE} a CT "
                         "slice needs; not decoded")


_NATIVE = {pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian}


def _native_pixels(ds: pydicom.Dataset, bits: int | None, signed: int | None) -> np.ndarray | None:
    """Stored values of an uncompressed little-endian 16-bit slice, straight from the bytes (no copy).

    This is the layout of (nearly) every RSNA file; pydicom's general decoder costs as much again as parsing the
    header. Anything else (compressed, big-endian, signed data narrower than 16 bits, odd sizes) returns None
    and goes through ``ds.pixel_array``.
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None or meta.get("TransferSyntaxUID") not in _NATIVE:
        return None
    if ds.get("BitsAllocated") != 16 or ds.get("SamplesPerPixel", 1) != 1 or int(ds.get("NumberOfFrames", 1) or 1) != 1:
        return None
    if signed == 1 and bits != 16:
        return None
    rows, cols, data = ds.Rows, ds.Columns, ds.PixelData
    if len(data) < rows * cols * 2:
        return None  # truncated: let pydicom say so
    raw = np.frombuffer(data, dtype="<i2" if signed == 1 else "<u2", count=rows * cols).reshape(rows, cols)
    if signed != 1 and bits < 16:
        raw = raw & np.uint16((1 << bits) - 1)  # as pydicom does: bits above BitsStored are not pixel data
    return raw


def is_12bit_fault(bits: int | None, signed: int | None, intercept: float) -> bool:
    """The RSNA files that store signed 12-bit values as unsigned (BitsStored 12, PixelRepresentation 0,
    RescaleIntercept > -100): air then reads as ~3096."""
    return bits == 12 and signed == 0 and intercept > -100


@_quiet_uids
def read_hu(path: str | os.PathLike, shrink_to: int | None = None) -> np.ndarray:
    """Read one CT slice in Hounsfield units.

    Applies RescaleSlope / RescaleIntercept (first value where multi-valued), fixes the RSNA 12-bit unsigned
    fault, sets PixelPaddingValue pixels to air and decodes compressed transfer syntaxes (JPEG 2000, JPEG lossless,
    RLE) through pydicom's plugins.

    Args:
        path: a DICOM file.
        shrink_to: a hint for readers that want a smaller image: when the slice is square and its side is
            ``shrink_to`` times a power of two (512 -> 256, 128, 64 ...), each block is averaged (exact area
            averaging, done before scaling, so full-size floats are never made). Any other size comes back
            whole, for the caller to resize.

    Returns:
        float32 array (rows x columns, or shrink_to x shrink_to) in HU.

    Raises:
        DicomError: naming the file, when it is not DICOM, is truncated, has no pixel data, is not CT, is not a
            single 2-D slice, or its pixel data cannot be decoded.
    """
    path = Path(path)
    ds = _open(path)
    _check_ct(ds, path)
    raw = _stored_pixels(ds, path)
    bits, signed = ds.get("BitsStored"), ds.get("PixelRepresentation")
    slope, intercept = _rescale(ds, path)
    padding = ds.get("PixelPaddingValue")
    pad_mask = raw == padding if padding is not None else None
    if is_12bit_fault(bits, signed, intercept):
        raw = raw.astype(np.int32) + 1000  # the usual fix: back to two's complement, intercept -1000
        raw[raw >= 4096] -= 4096
        intercept = -1000.0

    if pad_mask is not None:  # padding becomes air before any averaging
        raw = np.where(pad_mask, np.float32((AIR_HU - intercept) / slope), raw)
    hu, factor = _shrink(raw, shrink_to)
    slope /= factor * factor
    if slope != 1.0:
        hu *= np.float32(slope)
    if intercept != 0.0:
        hu += np.float32(intercept)
    return hu


def _stored_pixels(ds, path: Path) -> np.ndarray:
    """The slice's stored values (before rescaling), decoded; DicomError naming the file where they are not one
    whole 2-D slice."""
    if "PixelData" not in ds:
        raise DicomError(f"{path}: no pixel data")
    try:
        raw = _native_pixels(ds, ds.get("BitsStored"), ds.get("PixelRepresentation"))
        if raw is None:  # compressed or unusual: pydicom's decoders
            raw = ds.pixel_array
    except Exception as exc:
        raise DicomError(f"{path}: pixel data cannot be decoded, truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    if raw.ndim != 2:
        raise DicomError(f"{path}: expected one 2-D slice, found pixel data of shape {raw.shape}")
    return raw


def _shrink(raw: np.ndarray, shrink_to: int | None) -> tuple[np.ndarray, int]:
    """(float32 block sums, the block side): summed ``factor`` x ``factor`` blocks where the slice is square and
    ``shrink_to`` times a power of two, else the slice as floats with factor 1."""
    factor = raw.shape[0] // shrink_to if shrink_to else 1
    if not (factor > 1 and raw.shape == (shrink_to * factor,) * 2 and factor & (factor - 1) == 0):
        return raw.astype(np.float32), 1
    hu = np.add(raw[0::2], raw[1::2], dtype=np.float32)  # the first halving also converts to float
    hu = hu[:, 0::2] + hu[:, 1::2]
    while hu.shape[0] > shrink_to:
        hu = hu[0::2] + hu[1::2]
        hu = hu[:, 0::2] + hu[:, 1::2]
    return hu, factor


# --------------------------------------------------------------------------------------------- index
INDEX_COLUMNS = ["patient", "study", "series", "z", "rows", "columns", "path"]


@_quiet_uids
def read_header(path: str | os.PathLike) -> dict:
    """The index fields of one file, from its header alone (no pixel decode).

    Raises:
        DicomError: naming the file, for a file that is not a readable CT header with the fields the index needs.
    """
    path = Path(path)
    ds = _open(path, stop_before_pixels=True, specific_tags=_INDEX_TAGS)
    _check_ct(ds, path)
    frames = _first(ds.get("NumberOfFrames"), 1)
    if frames != 1:
        raise DicomError(f"{path}: a multi-frame (enhanced) CT, {frames:g} frames in one file; export the series "
                         "as one file per slice (classic CT Image Storage), as RSNA's files are")
    missing = [tag for tag in _INDEX_TAGS if tag not in ds and tag not in ("NumberOfFrames", "PatientID")]
    if missing:
        raise DicomError(f"{path}: header lacks {', '.join(missing)}, needed to place the slice in its series")
    try:
        image_id = str(ds.SOPInstanceUID)
        ipp = ds.ImagePositionPatient
        if not np.isfinite(float(ipp[2])):
            raise DicomError(f"{path}: ImagePositionPatient gives no usable z ({ipp[2]!r}): the slice cannot be "
                             "placed in its series")
        # an anonymised file may carry no PatientID: its study stands for the patient (never pooled with others)
        patient = str(ds.get("PatientID", "") or "").strip() or f"anonymous study {ds.StudyInstanceUID}"
        return {
            "ID": image_id,
            "patient": patient,
            "study": str(ds.StudyInstanceUID),
            "series": str(ds.SeriesInstanceUID),
            "z": float(ipp[2]),
            "rows": int(ds.Rows),
            "columns": int(ds.Columns),
            "path": str(path),
        }
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        raise DicomError(f"{path}: header lacks a field the index needs ({type(exc).__name__}: {exc})") from exc


def _read_header_safe(path: str) -> tuple[dict | None, str | None]:
    try:
        return read_header(path), None
    except (DicomError, OSError) as exc:
        return None, str(exc)


def index_dicoms(folder: str | os.PathLike, workers: int | None = None,
                 progress: bool = True) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Index every ``*.dcm`` under a folder from the headers alone, in parallel.

    Args:
        folder: e.g. ``stage_2_train/``.
        workers: processes to use (header parsing is pure Python, so threads would not help);
            default: the machine's CPU count. 1 runs in this process.
        progress: show a tqdm progress bar.

    Returns:
        ``(index, failures)``. ``index`` is indexed by image ID with columns patient, study, series, z, rows,
        columns, path and ``rank`` (0-based position of the slice within its series, by z); rows are sorted by
        series then z. ``failures`` lists ``(path, reason)`` for every file that could not be indexed, a second
        file with an image ID already seen among them; one bad file never stops the scan.
    """
    from tqdm import tqdm  # the console bar: tqdm.auto warns in a kernel without ipywidgets

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    found = sorted(folder.rglob("*.dcm"))
    paths = [str(p) for p in found if p.is_file()]  # a FIFO or a folder named *.dcm would hang or fail a read
    skipped = [(str(p), f"{p}: not a regular file") for p in found if not p.is_file()]
    workers = workers or os.cpu_count() or 1
    bar = dict(total=len(paths), desc=f"index {folder.name}", unit="file", disable=not progress)
    if workers == 1 or len(paths) < 64:
        results = [_read_header_safe(p) for p in tqdm(paths, **bar)]
    else:
        chunk = max(16, len(paths) // (workers * 16))
        with process_pool(workers) as pool:
            results = list(tqdm(pool.map(_read_header_safe, paths, chunksize=chunk), **bar))

    rows, failures, seen = [], skipped, set()
    for path, (row, error) in zip(paths, results):
        if row is None:
            failures.append((path, error))
        elif row["ID"] in seen:
            failures.append((path, f"{path}: image ID {row['ID']} already read from another file"))
        else:
            seen.add(row["ID"])
            rows.append(row)
    index = pd.DataFrame(rows, columns=["ID", *INDEX_COLUMNS])
    index = index.sort_values(["series", "z", "ID"], kind="stable").set_index("ID")
    index["rank"] = index.groupby("series", sort=False).cumcount().astype(np.int32)
    return index, failures


def neighbours(index: pd.DataFrame) -> pd.DataFrame:
    """Previous and next slice of each image in its series, by z, for the adjacent-slice preprocessing.

    Args:
        index: as returned by :func:`index_dicoms` (needs ``series`` and ``z``).

    Returns:
        DataFrame indexed like ``index`` with columns ``prev`` and ``next`` (image IDs); at either end of a series
        the image itself stands in for the missing neighbour.
    """
    order = index.sort_values(["series", "z"], kind="stable")
    ids = pd.Series(order.index, index=order.index)
    by_series = ids.groupby(order["series"], sort=False)
    prev = by_series.shift(1).fillna(ids)
    nxt = by_series.shift(-1).fillna(ids)
    return pd.DataFrame({"prev": prev, "next": nxt}).reindex(index.index)

