"""The preprocessed-array cache: every slice of an index as a uint8 3-channel image, memory-mapped on disk.

A cache folder holds::

    images.u8      (n, size, size, 3) uint8, C order: open with :func:`load_cache` (a read-only memmap)
    ids.txt        one image ID per row of images.u8
    labels.npy     (n, 6) int8 in LABELS order, when labels were given
    boxes.npy      (n, 4) int32: each slice's head box (top, bottom, left, right), when cut to the head
    failures.csv   path,reason for each slice that could not be read (skipped, never fatal)
    meta.json      mode, size, windows, n: what the cache was built with

Work is done one series at a time, so the adjacent-slice stack reads each file once. The cache is written into
``<folder>.part`` and renamed when complete: an interrupted build never passes for a finished one.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .parallel import process_pool
from .preprocess import PAPER_WINDOWS, NoHeadError, adjacent_stack, crop_to, head_box, resize, three_window
from .labels import LABELS
from .rsna import DicomError, read_hu

THREE_WINDOW, ADJACENT = "three_window", "adjacent"  # the paper's two inputs, by the names runs and folders use
MODES = (THREE_WINDOW, ADJACENT)


def windows_for(mode: str, windows: tuple) -> tuple:
    """The windows an input uses: all three for ``three_window``, the first (brain) for ``adjacent``."""
    return tuple(windows) if mode == THREE_WINDOW else tuple(windows)[:1]
# The channel that shows the slice itself in the brain window: the first window, or the middle of three slices.
BRAIN_CHANNEL = {THREE_WINDOW: 0, ADJACENT: 1}


@dataclass
class Cache:
    """A loaded cache: ``images[i]`` is the slice ``ids[i]``."""

    images: np.ndarray            # (n, size, size, 3) uint8 memmap
    ids: list[str]
    labels: np.ndarray | None     # (n, 6) int8
    failures: list[tuple[str, str]]
    meta: dict
    boxes: np.ndarray | None = None  # (n, 4) top, bottom, left, right of each slice's head box, when cropped
    folder: Path | None = None  # where it lies on disk (what is derived from it is kept beside it)

    def summary(self) -> dict:
        """What a reader wants to know about a cache, in one row."""
        return {"mode": self.meta["mode"], "images": len(self.ids), "shape": "x".join(map(str, self.images.shape[1:])),
                "MB on disk": round(self.images.nbytes / 2**20, 1), "skipped": self.meta["skipped"]}

    def row(self, image_id: str) -> int:
        """The row of an image ID (a KeyError names an ID the cache does not hold)."""
        if getattr(self, "_rows", None) is None:
            self._rows = {i: k for k, i in enumerate(self.ids)}
        return self._rows[image_id]

    def image(self, image_id: str) -> np.ndarray:
        return self.images[self.row(image_id)]


def series_images(paths: list[str], mode: str, size: int, windows: tuple, crop: bool = False) -> tuple[list, list]:
    """Preprocess one series (paths ordered by z); return ([(row, image, box)], [(path, reason)]).

    Without ``crop`` a slice is shrunk whole (``box`` None). With it, each slice is cut to its head's box
    (:func:`ichlib.preprocess.head_box`; a slice with no head is taken whole) before resizing, and the adjacent
    stack cuts its neighbours with the middle slice's box, so the three channels show the same place.
    """
    slices, failures = [], []
    for path in paths:
        try:
            # without the crop: shrink, then window (see preprocess); with it, the box needs the full image
            slices.append(read_hu(path) if crop else resize(read_hu(path, shrink_to=size), size))
        except (DicomError, OSError) as exc:
            slices.append(None)
            failures.append((path, str(exc)))
    readable = [i for i, s in enumerate(slices) if s is not None]
    done = []
    for pos, i in enumerate(readable):
        box = head_or_whole(slices[i]) if crop else None
        if mode == "three_window":
            image = three_window(_cut(slices[i], box, size), windows, np.uint8)
        else:  # neighbours among the readable slices; an unreadable one is skipped over, as at a series end
            prev = _cut(slices[readable[pos - 1]], box, size) if pos > 0 else None
            nxt = _cut(slices[readable[pos + 1]], box, size) if pos + 1 < len(readable) else None
            image = adjacent_stack(prev, _cut(slices[i], box, size), nxt, windows[0], np.uint8)
        done.append((i, image, box))
    return done, failures


def _cut(hu: np.ndarray, box: tuple[int, int, int, int] | None, size: int) -> np.ndarray:
    """A full-size slice cut to ``box`` and resized; without a box, the slice as it is (already shrunk)."""
    return hu if box is None else resize(crop_to(hu, box), size)


def head_or_whole(hu: np.ndarray) -> tuple[int, int, int, int]:
    """The head's box of a slice, or the whole slice where it has no head."""
    try:
        return head_box(hu)
    except NoHeadError:  # air only: nothing to crop to
        return (0, hu.shape[0], 0, hu.shape[1])


def build_cache(index: pd.DataFrame, out_dir: str | os.PathLike, mode: str = "three_window", size: int = 128,
                windows: tuple = PAPER_WINDOWS, labels: pd.DataFrame | None = None, workers: int | None = None,
                progress: bool = True, crop: bool = False) -> Cache:
    """Preprocess every slice of ``index`` (from :func:`ichlib.rsna.index_dicoms`) into a cache folder.

    Args:
        index: needs ``series``, ``z`` and ``path``, indexed by image ID.
        out_dir: the cache folder (replaced if it exists).
        mode: ``"three_window"`` (one slice, three windows) or ``"adjacent"`` (previous / current / next slice
            in ``windows[0]``).
        size: output rows = columns.
        windows: preset names or (center, width) pairs.
        labels: from :func:`ichlib.rsna.read_labels`; its rows for the cached IDs are stored alongside.
        workers: processes (default: CPU count).
        progress: show a progress bar.
        crop: cut each slice to its head's box first (``boxes.npy`` then keeps each box, in stored pixels).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    out = Path(out_dir)
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)

    ordered = index.sort_values(["series", "z"], kind="stable")
    groups = [g for _, g in ordered.groupby("series", sort=False)]
    ids = [image_id for g in groups for image_id in g.index]
    images = np.memmap(part / "images.u8", mode="w+", dtype=np.uint8, shape=(max(len(ids), 1), size, size, 3))
    good, boxes, failures = _fill(images, groups, ids, mode, size, windows, crop, workers, progress)
    kept_ids = _compact(images, part / "images.u8", ids, good, size)
    del images
    (part / "ids.txt").write_text("\n".join(kept_ids) + ("\n" if kept_ids else ""))
    if crop:
        np.save(part / "boxes.npy", boxes[good])
    if labels is not None:
        missing = [i for i in kept_ids if i not in labels.index]
        if missing:
            raise ValueError(f"{len(missing)} cached images have no labels, e.g. {missing[0]}")
        np.save(part / "labels.npy", labels.loc[kept_ids, list(LABELS)].to_numpy(np.int8))
    with open(part / "failures.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        writer.writerows(failures)
    meta = dict(mode=mode, size=size, windows=[w if isinstance(w, str) else list(w) for w in windows],
                n=len(kept_ids), skipped=len(failures), crop=bool(crop))
    (part / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(part, out)
    return load_cache(out)


def _fill(images: np.memmap, groups: list, ids: list, mode: str, size: int, windows: tuple, crop: bool,
          workers: int | None, progress: bool) -> tuple[np.ndarray, np.ndarray, list]:
    """Preprocess every series (in processes) into its rows of ``images``: (rows read, head boxes, failures)."""
    from tqdm import tqdm  # the console bar: tqdm.auto warns in a kernel without ipywidgets

    row_of = {image_id: i for i, image_id in enumerate(ids)}
    good = np.zeros(len(ids), bool)
    boxes = np.zeros((len(ids), 4), np.int32)
    failures: list[tuple[str, str]] = []
    jobs = [(g.path.tolist(), mode, size, tuple(windows), crop) for g in groups]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    bar = dict(total=len(jobs), desc=f"cache {mode} {size}px", unit="series", disable=not progress)
    if workers == 1:
        results = (series_images(*job) for job in jobs)
    else:
        pool = process_pool(workers)
        results = pool.map(series_images, *zip(*jobs)) if jobs else iter(())
    try:
        for group, (done, bad) in tqdm(zip(groups, results), **bar):
            for i, image, box in done:
                row = row_of[group.index[i]]
                images[row] = image
                good[row] = True
                if box is not None:
                    boxes[row] = box
            failures += bad
    except BaseException:  # an interrupt: no worker left behind
        if workers > 1:
            pool.stop()
        raise
    if workers > 1:
        pool.shutdown()
    return good, boxes, failures


def _compact(images: np.memmap, path: Path, ids: list, good: np.ndarray, size: int) -> list[str]:
    """Keep only the rows that were read: move them up in place, in order, and cut the file; their IDs."""
    keep = np.flatnonzero(good)
    for new, old in enumerate(keep):
        if new != old:
            images[new] = images[old]
    images.flush()
    with open(path, "r+b") as fh:
        fh.truncate(len(keep) * size * size * 3)
    return [ids[i] for i in keep]


def load_cache(folder: str | os.PathLike) -> Cache:
    """Open a cache folder written by :func:`build_cache` (images memory-mapped, read-only)."""
    folder = Path(folder)
    if not (folder / "meta.json").exists():
        raise FileNotFoundError(f"{folder}: not a finished cache (no meta.json)")
    ids = (folder / "ids.txt").read_text().split()
    labels = np.load(folder / "labels.npy") if (folder / "labels.npy").exists() else None
    with open(folder / "failures.csv", newline="") as fh:
        failures = [tuple(row) for row in list(csv.reader(fh))[1:]]
    meta = json.loads((folder / "meta.json").read_text())
    size = meta["size"]
    images = (np.memmap(folder / "images.u8", mode="r", dtype=np.uint8, shape=(len(ids), size, size, 3))
              if ids else np.zeros((0, size, size, 3), np.uint8))
    boxes = np.load(folder / "boxes.npy") if (folder / "boxes.npy").exists() else None
    return Cache(images, ids, labels, failures, meta, boxes, folder)
