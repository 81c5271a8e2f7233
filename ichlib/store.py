"""What the chapters make, kept under ``data/`` in folders named by the parameters it depends on.

A chapter talks to the one before it only through these folders, so any chapter can be re-run alone: asking
for a thing that exists returns it, asking with a changed parameter makes a new folder and leaves the others.

    data/phantom/studies40_seed0_matrix512_v2/   the cohort (ichlib.phantom; v: its drawing)
    data/index/<source>/                         index.csv, failures.csv (ichlib.rsna.index_dicoms)
    data/cache/<source>/three_window_128px_brain-subdural-soft/   (ichlib.cache)
    data/runs/<source>/<run>-<hash of its settings>/             (ichlib.train, laid out by ichlib.runs)

``<source>`` names the data: the phantom's folder name, or ``rsna-<hash of the path and of what it holds>`` for
a real download (each file's name, size and time, and the labels file's), so changed data is never read
through an old index.
``ICHBOOK_DATA`` moves the whole tree elsewhere.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .cache import Cache, build_cache, load_cache, windows_for
from .phantom import DRAWING, make_cohort
from .preprocess import PAPER_WINDOWS
from .rsna import index_dicoms, read_labels


def data_root() -> Path:
    """``$ICHBOOK_DATA``, else the project's ``data/`` (beside the package in a checkout), else ``./data``."""
    if os.environ.get("ICHBOOK_DATA"):
        return Path(os.environ["ICHBOOK_DATA"])
    here = Path(__file__).resolve().parents[1]
    return here / "data" if (here / "pyproject.toml").exists() else Path.cwd() / "data"


def shown_path(path: str | os.PathLike) -> str:
    """A path as the book prints it: ``data/...`` under the data folder, else the folder's own name, never this
    machine's absolute path (a book built on one machine is read on others)."""
    path = Path(path).resolve()
    try:
        return str(Path("data") / path.relative_to(data_root().resolve()))
    except ValueError:
        return path.name


@dataclass(frozen=True)
class Source:
    """One data set in the RSNA layout."""

    folder: Path
    key: str
    phantom: bool

    @property
    def labels_csv(self) -> Path:
        return self.folder / "stage_2_train.csv"

    @property
    def images(self) -> Path:
        return self.folder / "stage_2_train"

    def labels(self) -> pd.DataFrame:
        return read_labels(self.labels_csv)


def phantom_key(studies: int, seed: int, matrix: int) -> str:
    """The folder name of a phantom cohort under ``data/phantom``, and its key for the index, caches and runs:
    what made it, with the phantom's drawing (``ichlib.phantom.DRAWING``)."""
    return f"studies{studies}_seed{seed}_matrix{matrix}_v{DRAWING}"


def source(data_dir: str = "", studies: int = 40, seed: int = 0, matrix: int = 512, workers: int | None = None,
           progress: bool = True) -> Source:
    """The data a chapter works on: the real download at ``data_dir``, or the phantom cohort (made if missing)."""
    if data_dir:
        folder = Path(data_dir).expanduser().resolve()
        for needed in (folder / "stage_2_train.csv", folder / "stage_2_train"):
            if not needed.exists():
                raise FileNotFoundError(f"data_dir {data_dir!r}: {needed} is missing (expected Kaggle's RSNA layout)")
        # Keyed by the folder and what it holds: a download completed, or a labels file replaced, is new data
        # with its own index, caches and runs (the old ones are left as they were).
        digest = hashlib.sha1((str(folder) + contents(folder)).encode()).hexdigest()[:8]
        phantom = is_phantom_folder(folder)  # what the data is, from the data: a cohort this project wrote
        return Source(folder, f"{'phantom' if phantom else 'rsna'}-{digest}", phantom=phantom)
    key = phantom_key(studies, seed, matrix)
    folder = data_root() / "phantom" / key
    if not (folder / "manifest.json").exists():
        make_cohort(folder, studies, seed=seed, matrix=matrix, workers=workers, progress=progress)
    return Source(folder, key, phantom=True)


def contents(folder: Path) -> str:
    """What a real data folder holds, as text to hash: each ``stage_2_train/**/*.dcm`` file's path, size and
    modification time, and the labels file's. FileNotFoundError where no image is there (an incomplete
    download, or the wrong folder)."""
    images = folder / "stage_2_train"
    entries = []
    for directory, _, files in os.walk(images):
        for name in files:
            if name.endswith(".dcm"):
                path = Path(directory) / name
                try:
                    stat = path.stat()
                except OSError:  # vanished or unreadable: the index will name it
                    continue
                entries.append(f"{path.relative_to(images)}\t{stat.st_size}\t{stat.st_mtime_ns}")
    if not entries:
        raise FileNotFoundError(f"{images} holds no .dcm file: an incomplete download, or not Kaggle's "
                                "stage_2_train folder")
    labels = (folder / "stage_2_train.csv").stat()
    return "\n".join(sorted(entries)) + f"\nlabels\t{labels.st_size}\t{labels.st_mtime_ns}"


def is_phantom_folder(folder: str | os.PathLike) -> bool:
    """Whether a folder in the RSNA layout is a cohort written by ``ichlib.phantom`` (its manifest says so);
    Kaggle's download has no manifest."""
    import json

    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("generator") == "ichlib.phantom"


def source_is_phantom(key: str) -> bool:
    """Whether a source key (a folder name under ``data/runs``) names a phantom cohort of this data folder."""
    return (data_root() / "phantom" / key / "manifest.json").exists()


def read_index(csv_path: str | os.PathLike) -> pd.DataFrame:
    """A saved header index (``index.csv``), IDs kept as strings."""
    return pd.read_csv(csv_path, index_col="ID", dtype={"patient": str, "study": str, "series": str})


def index(src: Source, workers: int | None = None, progress: bool = True) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The header index of a source and the files that could not be read (scanned once, then kept)."""
    folder = data_root() / "index" / src.key
    if not (folder / "index.csv").exists():
        table, failures = index_dicoms(src.images, workers=workers, progress=progress)
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(failures, columns=["path", "reason"]).to_csv(folder / "failures.csv", index=False)
        tmp = folder / "index.csv.part"
        table.to_csv(tmp)
        os.replace(tmp, folder / "index.csv")
    table = read_index(folder / "index.csv")
    failures = pd.read_csv(folder / "failures.csv", dtype=str, keep_default_na=False)
    return table, list(failures.itertuples(index=False, name=None))


def cache(src: Source, mode: str = "three_window", size: int = 128, windows: tuple = PAPER_WINDOWS,
          workers: int | None = None, progress: bool = True, crop: bool = False) -> Cache:
    """The preprocessed arrays of a source (built once per mode, size, windows and crop, then memory-mapped)."""
    names = "-".join(w if isinstance(w, str) else f"{w[0]}_{w[1]}" for w in windows)
    folder = data_root() / "cache" / src.key / f"{mode}_{size}px_{names}{'_crop' if crop else ''}"
    if (folder / "meta.json").exists():
        return load_cache(folder)
    table, _ = index(src, workers=workers, progress=progress)
    return build_cache(table, folder, mode=mode, size=size, windows=tuple(windows), labels=src.labels(),
                       workers=workers, progress=progress, crop=crop)


def run_cache(src: Source, spec, windows: tuple = PAPER_WINDOWS, workers: int | None = None,
              progress: bool = False) -> Cache:
    """The cache a training run reads: its preprocessing at its size, with its windows and crop."""
    return cache(src, spec.preprocessing, spec.image_size, windows_for(spec.preprocessing, windows), workers=workers,
                 progress=progress, crop=spec.crop)
