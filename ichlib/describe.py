"""Describing a data set: labels beside the paper's Table 1, example slices, blood-vs-brain contrast per window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import binary_dilation, binary_erosion

from .cache import head_or_whole
from .paper import TABLE1_IMAGES
from .phantom import read_mask
from .density import BRIGHT
from .preprocess import PRESETS, window
from .labels import LABELS, SUBTYPES
from .rsna import read_hu
from .store import Source


def label_distribution(labels: pd.DataFrame) -> pd.DataFrame:
    """Images per class (normal, any, the five subtypes), ours beside the paper's Table 1, counts and shares."""
    ours = {"normal": int((labels["any"] == 0).sum()), **{name: int(labels[name].sum()) for name in LABELS}}
    rows = []
    for name, paper in TABLE1_IMAGES.items():
        rows.append({"class": name, "images": ours[name], "share %": 100 * ours[name] / len(labels),
                     "paper images": paper, "paper share %": 100 * paper / (TABLE1_IMAGES["normal"] + TABLE1_IMAGES["any"])})
    return pd.DataFrame(rows).set_index("class").round({"share %": 1, "paper share %": 1})


def _largest_bleed(src: Source, ids, subtype: str) -> str:
    """The slice among ``ids`` whose ``subtype`` mask is largest (ties, and slices without it: all its bleeds)."""
    def size(image_id):
        masks = read_mask(src.folder, image_id)
        return (int(masks[subtype].sum()) if subtype in masks else 0, sum(int(m.sum()) for m in masks.values()))

    return max(ids, key=size)


def examples(src: Source, index: pd.DataFrame, labels: pd.DataFrame, subtypes=SUBTYPES, seed: int = 0,
             slice_id: str = "") -> list[dict]:
    """One slice per subtype (the phantom: the one with the largest bleed; real data: a random positive one).

    Each item: ``subtype``, ``id``, ``hu``, ``mask`` (bool array, or None without masks). ``slice_id`` puts a
    chosen slice first.
    """
    rng = np.random.default_rng(seed)
    readable = labels.loc[labels.index.intersection(index.index)]
    chosen = []
    if slice_id:
        if slice_id not in index.index:
            raise ValueError(f"slice_id {slice_id!r} is not in the index")
        positive = [s for s in subtypes if readable.at[slice_id, s]] if slice_id in readable.index else []
        chosen.append((positive[0] if positive else "none", slice_id))
    for subtype in subtypes:
        ids = readable.index[readable[subtype] == 1]
        if len(ids) == 0:
            continue
        if src.phantom:
            ids = ids[rng.permutation(len(ids))[:40]]
            best = _largest_bleed(src, ids, subtype)
        else:
            best = ids[rng.integers(len(ids))]
        chosen.append((subtype, best))
    out = []
    for subtype, image_id in chosen:
        mask = read_mask(src.folder, image_id).get(subtype) if src.phantom else None
        out.append(dict(subtype=subtype, id=image_id, hu=read_hu(index.at[image_id, "path"]), mask=mask))
    return out


def window_contrast(src: Source, index: pd.DataFrame, labels: pd.DataFrame, windows=("brain", "subdural", "soft"),
                    per_subtype: int = 12, seed: int = 0) -> pd.DataFrame:
    """How far apart blood and the brain beside it lie under each window, measured from the true masks.

    Returns one row per subtype: slices measured, mean blood and brain HU, then ``contrast`` and ``cnr`` per window.
    For up to ``per_subtype`` positive slices of each subtype: blood = the mask eroded by its 1-pixel rim
    (partial volume), brain = a 2-6 pixel ring around the mask with 0-60 HU. Under each window, ``contrast`` is
    the mean windowed blood minus the mean windowed brain (0-1 units: 1 is black versus white) and ``cnr`` that
    contrast over the brain ring's standard deviation. Phantom only (real data has no masks).
    """
    if not src.phantom:
        raise ValueError("window_contrast needs true masks: only the phantom cohort has them")
    rng = np.random.default_rng(seed)
    readable = labels.loc[labels.index.intersection(index.index)]
    rows = []
    for subtype in SUBTYPES:
        ids = readable.index[readable[subtype] == 1]
        for image_id in ids[rng.permutation(len(ids))[:per_subtype]]:
            mask = read_mask(src.folder, image_id)[subtype]
            hu = read_hu(index.at[image_id, "path"])
            blood = binary_erosion(mask)
            ring = binary_dilation(mask, iterations=6) & ~binary_dilation(mask, iterations=2) & (hu > 0) & (hu < 60)
            if blood.sum() < 3 or ring.sum() < 10:
                continue
            row = {"subtype": subtype, "slices": 1, "blood HU": float(hu[blood].mean()), "brain HU": float(hu[ring].mean())}
            for name in windows:
                w = PRESETS[name]
                shown = window(hu, w.center, w.width)
                contrast = float(shown[blood].mean() - shown[ring].mean())
                row[("contrast", name)] = contrast
                row[("cnr", name)] = contrast / max(float(shown[ring].std()), 1e-3)
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    summary = table.groupby("subtype", sort=False).agg(
        {c: ("sum" if c == "slices" else "mean") for c in table.columns if c != "subtype"})
    summary.columns = pd.MultiIndex.from_tuples([c if isinstance(c, tuple) else (c, "") for c in summary.columns])
    return summary.round(3)


def failures_table(failures: list[tuple[str, str]]) -> pd.DataFrame:
    """Unreadable files as a table: file name and reason (without the folder, which the reason repeats)."""
    rows = [{"file": Path(path).name, "reason": reason.replace(f"{path}: ", "")} for path, reason in failures]
    return pd.DataFrame(rows, columns=["file", "reason"])


def gradcam_pair(src: Source, labels: pd.DataFrame, candidates, subtype: str = "subdural", slice_id: str = "",
                 seed: int = 0) -> tuple[str, str]:
    """A positive and a negative slice among ``candidates`` (e.g. the test split) to draw heatmaps on.

    The positive one is ``slice_id`` when given, else the candidate with the largest ``subtype`` bleed (the
    phantom) or a random positive (real data); with no ``subtype`` slice among the candidates, the same among
    all their positive slices, and with none of those, among every labelled slice (a small download). The
    negative one is a random candidate without a bleed.
    """
    known = labels.loc[labels.index.intersection(pd.Index(candidates))]
    rng = np.random.default_rng(seed)
    if slice_id:
        if slice_id not in labels.index:
            raise ValueError(f"slice_id {slice_id!r} is not a labelled image of this data")
        positive = slice_id
    else:
        if subtype not in SUBTYPES:
            raise ValueError(f"unknown subtype {subtype!r}; expected one of {', '.join(SUBTYPES)}")
        ids = known.index[known[subtype] == 1]
        if len(ids) == 0:
            ids = known.index[known["any"] == 1]
        if len(ids) == 0:  # a small download whose held-out patients have no bleed: any labelled one will show
            ids = labels.index[labels["any"] == 1]
        if len(ids) == 0:
            raise ValueError(f"no slice with a bleed in this data ({len(labels)} labelled slices)")
        if src.phantom:
            positive = _largest_bleed(src, ids, subtype)
        else:
            positive = ids[rng.integers(len(ids))]
    negatives = known.index[known["any"] == 0]
    if len(negatives) == 0:
        raise ValueError("no slice without a bleed among the candidates")
    return positive, negatives[rng.integers(len(negatives))]


def masks_of(src: Source, ids, cache=None) -> dict[str, dict[str, np.ndarray]]:
    """The true masks of each slice in the frame the network saw (``ichlib.masktargets.frame_masks``)."""
    from .masktargets import frame_masks

    return frame_masks(src, ids, cache)


def head_boxes(index: pd.DataFrame, ids) -> dict[str, tuple[int, int, int, int]]:
    """Each slice's head box (:func:`ichlib.preprocess.head_box`), the whole slice where it has no head."""
    return {i: head_or_whole(read_hu(index.at[i, "path"])) for i in ids}


def worst_false_positives(index: pd.DataFrame, ids, y_any, p_any, n: int = 6) -> list[dict]:
    """The ``n`` slices without blood that a score ranks highest, as ``figures.gallery`` items: the slice in HU,
    its pixels of 50-100 HU (what the pixel baseline counts) as the outlined "mask", and the score in the title.
    Unreadable slices are passed over."""
    negatives = [(p, i) for i, y, p in zip(ids, np.asarray(y_any), np.asarray(p_any)) if y == 0]
    items = []
    for p, image_id in sorted(negatives, key=lambda t: -t[0]):
        try:
            hu = read_hu(index.at[image_id, "path"])
        except (OSError, ValueError):  # DicomError is a ValueError: a bad file is skipped, not fatal
            continue
        items.append({"subtype": f"p(any) {p:.2f}", "id": image_id, "hu": hu, "mask": (hu >= BRIGHT[0]) & (hu < BRIGHT[1])})
        if len(items) == n:
            break
    return items
