"""Shared helpers: hand-made CT DICOM files whose HU we know in closed form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.config import disable_value_validation
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import ichlib  # noqa: F401  (chooses the Keras backend before any test module imports keras)


@disable_value_validation()  # RSNA-style IDs are not valid UIDs
def write_dicom(path: Path, stored: np.ndarray, *, modality: str = "CT", image_id: str = "ID_0a1b2c3d4",
                series: str = "ID_series1", z: float = 0.0, pixel_data: bool = True, **tags) -> Path:
    """Write a minimal single-slice DICOM with the given stored values and tags (None removes a tag)."""
    stored = np.asarray(stored)
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = image_id
    ds.StudyInstanceUID = "ID_study1"
    ds.SeriesInstanceUID = series
    ds.PatientID = "ID_patient1"
    ds.Modality = modality
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    for key, value in tags.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    if "BitsStored" in tags:
        ds.HighBit = tags["BitsStored"] - 1
    if pixel_data:
        ds.PixelData = stored.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[image_id])
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


@pytest.fixture
def ct_file(tmp_path):
    """Factory: ``ct_file(stored, **tags)`` writes a CT slice in tmp_path and returns its path."""
    counter = iter(range(10**6))

    def make(stored, name=None, **tags):
        name = name or f"ID_{next(counter):09x}.dcm"
        return write_dicom(tmp_path / name, stored, **tags)

    return make


def pydicom_data_file(name: str) -> Path:
    """A file shipped by pydicom or by pydicom-data (no network)."""
    import data_store  # pydicom-data
    import pydicom.data

    for folder in (Path(data_store.__file__).parent / "data", Path(pydicom.data.__file__).parent / "test_files"):
        if (folder / name).exists():
            return folder / name
    pytest.skip(f"{name} is not shipped by the installed pydicom / pydicom-data")




@pytest.fixture(scope="session")
def app_data(tmp_path_factory):
    """A data folder as the book leaves it, in miniature: a 6-study phantom, its index and one trained run.

    ICHBOOK_DATA points there only while it is made; tests that run the app set it themselves (``app_env``).
    """
    from ichlib import plan, runs, store

    root = tmp_path_factory.mktemp("appdata")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ICHBOOK_DATA", str(root))
        src = store.source("", studies=6, seed=1, matrix=64, workers=1, progress=False)
        index, _ = store.index(src, workers=1, progress=False)
        spec = runs.RunSpec("resnet50", image_size=32, epochs=1, batch_size=16)
        trained = plan.train_runs(src, [spec], seed=1, workers=1, log=None)
    return {"root": root, "src": src, "index": index, "run": trained["folder"].iloc[0]}


@pytest.fixture
def app_env(app_data, monkeypatch):
    """The miniature data folder as the app's data root, for one test."""
    monkeypatch.setenv("ICHBOOK_DATA", str(app_data["root"]))
    return app_data


_USERS_OWN = ("_build/html", "book/chapters", "book/generated", "data/book/timings.json")


def _users_files() -> dict:
    root = Path(__file__).resolve().parents[1]
    found = {}
    for name in _USERS_OWN:
        path = root / name
        for item in ([path] if path.is_file() else path.rglob("*") if path.exists() else []):
            if item.is_file():
                found[str(item.relative_to(root))] = item.stat().st_mtime_ns
    return found


@pytest.fixture(scope="session", autouse=True)
def the_users_book_is_left_alone():
    """`make test` after `make book`: the suite must leave the built book, its chapters and its timings as they
    were (it builds its own books in temporary folders)."""
    before = _users_files()
    yield
    after = _users_files()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"the test suite changed the user's built book: {changed[:5]}"
