"""Write phantom slices as CT DICOM files the way the RSNA files are written, in their several encodings.

The encodings exercise every fix :func:`ichlib.rsna.read_hu` makes:

==========  ==============================================================================================
``u12``     unsigned, BitsStored 12, stored = HU + 1024, RescaleIntercept -1024 (the most common)
``u16``     unsigned, BitsStored 16, stored = HU + 1024, RescaleIntercept -1024, implicit VR
``s16``     signed, BitsStored 16, stored = HU + 1024, RescaleIntercept -1024
``s16pad``  signed, with PixelPaddingValue -2000 outside the circular field of view
``fault12`` the RSNA fault: signed 12-bit values stored as unsigned (air reads ~3096), RescaleIntercept 0
==========  ==============================================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ..rsna import lenient_uids

ENCODINGS = ("u12", "u16", "s16", "s16pad", "fault12")
PADDING = -2000


@dataclass(frozen=True)
class SliceInfo:
    """What a slice's header says besides its pixels."""

    image_id: str
    patient_id: str
    study_id: str
    series_id: str
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    spacing: float
    instance: int
    encoding: str
    window_multi: bool


def encode(hu: np.ndarray, encoding: str, fov_radius_px: float | None = None) -> tuple[np.ndarray, dict]:
    """Stored pixel values and the tags that go with them, for a HU image.

    Args:
        hu: float HU image; rounded to the nearest HU.
        encoding: one of :data:`ENCODINGS`.
        fov_radius_px: radius of the reconstruction circle, for ``s16pad``.

    Returns:
        (stored array, tags dict).
    """
    hu = np.rint(hu)
    if encoding in ("u12", "u16"):
        top = 4095 if encoding == "u12" else 65535
        stored = np.clip(hu + 1024, 0, top).astype(np.uint16)
        return stored, dict(BitsStored=12 if encoding == "u12" else 16, PixelRepresentation=0, RescaleIntercept=-1024)
    if encoding in ("s16", "s16pad"):
        stored = np.clip(hu + 1024, -32768, 32767).astype(np.int16)
        tags = dict(BitsStored=16, PixelRepresentation=1, RescaleIntercept=-1024)
        if encoding == "s16pad":
            rows, cols = hu.shape
            r, c = np.ogrid[:rows, :cols]
            outside = (r - (rows - 1) / 2) ** 2 + (c - (cols - 1) / 2) ** 2 > (fov_radius_px or rows / 2) ** 2
            stored[outside] = PADDING
            tags["PixelPaddingValue"] = PADDING
        return stored, tags
    if encoding == "fault12":
        # Two's complement in 12 bits, read back as unsigned: -1000 becomes 3096.
        stored = (np.clip(hu, -1000, 2047).astype(np.int32) & 0xFFF).astype(np.uint16)
        return stored, dict(BitsStored=12, PixelRepresentation=0, RescaleIntercept=0)
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")


def decoded_hu(hu: np.ndarray, encoding: str, fov_radius_px: float | None = None) -> np.ndarray:
    """The HU a correct reader should get back from :func:`encode` (rounding, range limits, padding as air)."""
    hu = np.rint(hu).astype(np.float32)
    if encoding == "u12":
        return np.clip(hu, -1024, 3071)
    if encoding == "fault12":
        return np.clip(hu, -1000, 2047)
    if encoding == "s16pad":
        stored, _ = encode(hu, encoding, fov_radius_px)
        return np.where(stored == PADDING, np.float32(-1000), hu)
    return np.clip(hu, -1024, None)


def write_slice(path: str | os.PathLike, hu: np.ndarray, info: SliceInfo, fov_radius_px: float | None = None) -> None:
    """Write one CT slice, atomically (a crash leaves no half-written file under the final name)."""
    stored, tags = encode(hu, info.encoding, fov_radius_px)
    with lenient_uids():  # RSNA IDs are not valid UIDs; we write them as RSNA does
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = info.image_id
        ds.StudyInstanceUID = info.study_id
        ds.SeriesInstanceUID = info.series_id
        ds.Modality = "CT"
        ds.PatientID = info.patient_id
        ds.InstanceNumber = info.instance
        ds.ImagePositionPatient = [round(v, 3) for v in info.position]
        ds.ImageOrientationPatient = [round(v, 6) for v in info.orientation]
        ds.PixelSpacing = [round(info.spacing, 6)] * 2
        ds.SliceThickness = 5
        ds.KVP = 120
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = stored.shape
        ds.BitsAllocated = 16
        ds.BitsStored = tags["BitsStored"]
        ds.HighBit = tags["BitsStored"] - 1
        ds.PixelRepresentation = tags["PixelRepresentation"]
        if "PixelPaddingValue" in tags:
            ds.PixelPaddingValue = tags["PixelPaddingValue"]
        ds.RescaleIntercept = tags["RescaleIntercept"]
        ds.RescaleSlope = 1
        ds.WindowCenter = [40, 40] if info.window_multi else 40
        ds.WindowWidth = [80, 80] if info.window_multi else 80
        ds.PixelData = stored.tobytes()

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = info.image_id
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if info.encoding == "u16" else ExplicitVRLittleEndian
        ds.file_meta = meta

        path = Path(path)
        tmp = path.with_name(path.name + ".part")
        ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)

