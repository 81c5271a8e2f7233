"""The one real head CT that ships inside Python packages, read by the app's models: a lesson in domain shift.

pydicom's test files hold a slice of a CQ500 head CT (``693_J2KI.dcm``, lossy JPEG 2000); the optional
``pydicom-data`` package holds the same slice uncompressed (``693_UNCR.dcm``) and lossless (``693_J2KR.dcm``).
It shows a large low-density extra-axial collection. The book's models learned on the phantom, so what they
say about it measures how far the phantom is from a scanner, not how well they find bleeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import LABELS
from ..rsna import read_hu
from . import service, upload

FILES = {"693_J2KI.dcm": "pydicom", "693_UNCR.dcm": "pydicom-data", "693_J2KR.dcm": "pydicom-data"}


def shipped_slices() -> dict[str, Path]:
    """The copies of the slice installed here, by file name (pydicom's always; pydicom-data's if installed)."""
    import pydicom.data

    found = {}
    folders = [Path(pydicom.data.__file__).parent / "test_files"]
    try:
        import data_store  # pydicom-data

        folders.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    for name in FILES:
        for folder in folders:
            if (folder / name).is_file():
                found[name] = folder / name
                break
    return found


def describe(paths: dict[str, Path]) -> pd.DataFrame:
    """Per file: its encoding, matrix, the median and 99th percentile of HU inside the head (above -200 HU: brain,
    then bone) and the share of head pixels in the fresh-blood range (50-90 HU)."""
    import pydicom

    rows = {}
    for name, path in paths.items():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        hu = read_hu(path)
        head = hu[hu > -200]
        rows[name] = {"package": FILES[name], "encoding": ds.file_meta.TransferSyntaxUID.name,
                      "matrix": f"{ds.Rows} x {ds.Columns}", "HU median (head)": float(np.median(head)),
                      "HU 99th pct (head)": float(np.percentile(head, 99)),
                      "share 50-90 HU": float(np.mean((head >= 50) & (head <= 90)))}
    return pd.DataFrame(rows).T


def best_by_validation(runs: pd.DataFrame) -> str:
    """The folder of the run with the highest validation `any` AUC (chosen without the test split)."""
    from .. import runs as run_folders
    from ..metrics import per_label_auc
    from ..tables import best_run

    scored = runs.set_index("folder").assign(**{"val AUC any": [
        per_label_auc(*run_folders.load_predictions(f, "val")[1:])["any"] for f in runs["folder"]]})
    return best_run(scored) or str(runs["folder"].iloc[0])


def read_out(paths: dict[str, Path], runs: pd.DataFrame, upload_dir: str | Path) -> pd.DataFrame:
    """Each model's six probabilities for each copy of the slice, read as the app reads an upload, with its
    flags at the thresholds chosen on its own validation patients (rows: file, model)."""
    rows = []
    for name, path in paths.items():
        if name == "693_J2KR.dcm" and "693_UNCR.dcm" in paths:
            continue  # lossless: the same pixels as the uncompressed copy (a test checks), the same answers
        series = upload.receive([(name, path.read_bytes())], upload_dir)
        try:
            for run in runs.itertuples():
                report = service.analyse(series, [run.folder])
                flagged = report.study_flagged
                rows.append({"file": name, "model": run.run,
                             **{f"p({label})": report.probs[0, j] for j, label in enumerate(LABELS)},
                             "flagged": ", ".join(label for label in LABELS if flagged[label]) or "none"})
        finally:
            upload.discard(series)
    return pd.DataFrame(rows).set_index(["file", "model"])
