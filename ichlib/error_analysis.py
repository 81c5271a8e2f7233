"""Where the models' errors come from, measured on the phantom (which knows every bleed's mask): the AUC with the
smallest bleeds left out, with the negatives next to a bleed left out, and how many bleeds are big enough at the
network's input to be seen at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import auc_or_nan
from .targets import VISIBLE_PX


def auc_by_bleed_size(ids, y_any, p_any, masks: dict, image_size: int, floors=(0, 1, 4, 16, 64)) -> pd.DataFrame:
    """The `any` AUC with the smallest bleeds left out: per floor, only positive slices whose bleed covers at
    least that many pixels **at the network's input size** are kept (every negative is). Phantom data only
    (``masks``: image ID -> {subtype: bool mask}); shows how much of a shortfall the input resolution explains."""
    from .localisation import input_area

    ids, y_any, p_any = list(ids), np.asarray(y_any), np.asarray(p_any)
    area = np.zeros(len(ids))
    for k, image_id in enumerate(ids):
        parts = masks.get(image_id, {})
        if parts:
            union = np.logical_or.reduce(list(parts.values()))
            area[k] = input_area(union, image_size)
    rows = []
    for floor in floors:
        keep = (y_any == 0) | ((y_any == 1) & (area >= floor))
        kept_pos = int(((y_any == 1) & keep).sum())
        auc = auc_or_nan(y_any[keep], p_any[keep])
        rows.append({"bleed at least (px at input)": floor, "positive slices kept": kept_pos, "AUC any": auc})
    return pd.DataFrame(rows).set_index("bleed at least (px at input)")


def auc_by_distance_to_bleed(y_any, p_any, study, position, gaps=(0, 1, 2)) -> pd.DataFrame:
    """The `any` AUC with the negatives next to a bleed left out: per gap g, negative slices within g slices of a
    positive slice of the same study are dropped (every positive is kept; gap 0 drops nothing).

    A 5 mm slice just past a bleed's last labelled slice still holds some blood by partial volume while its label
    says none; if the AUC climbs with the gap, those edge slices, not missed bleeds, cost much of it.
    ``study`` and ``position`` (the slice's place in its series) are per slice, aligned with the labels."""
    y_any, p_any = np.asarray(y_any), np.asarray(p_any)
    frame = pd.DataFrame({"study": np.asarray(study), "position": np.asarray(position, float), "y": y_any})
    bleeding = frame[frame["y"] == 1].groupby("study")["position"].apply(np.asarray)
    distance = np.full(len(frame), np.inf)
    for k, (name, where) in enumerate(zip(frame["study"], frame["position"])):
        if name in bleeding.index:
            distance[k] = np.abs(bleeding[name] - where).min()
    rows = []
    for gap in gaps:
        keep = (y_any == 1) | (distance > gap)
        kept_neg = int(((y_any == 0) & keep).sum())
        auc = auc_or_nan(y_any[keep], p_any[keep])
        rows.append({"gap (slices)": gap, "negative slices kept": kept_neg,
                     "AUC any": auc})
    return pd.DataFrame(rows).set_index("gap (slices)")


def small_bleed_share(masks: dict, boxes: dict, image_size: int, floor: float = VISIBLE_PX) -> pd.DataFrame:
    """How many positive slices' bleeds fall under ``floor`` px at the input, on the whole slice and cut to the
    head's box: what the crop gives a small bleed for free.

    Args:
        masks: image ID -> {subtype: bool mask} at the stored resolution (``describe.masks_of`` without a cache).
        boxes: image ID -> the head's box (``describe.head_boxes``).
        image_size: the network's input size.
    """
    from .localisation import input_area

    areas = {"whole slice": [], "cut to the head": []}
    for image_id, parts in masks.items():
        if not parts:
            continue
        union = np.logical_or.reduce(list(parts.values()))
        top, bottom, left, right = boxes[image_id]
        areas["whole slice"].append(input_area(union, image_size))
        areas["cut to the head"].append(float(union.sum()) * image_size ** 2 / ((bottom - top) * (right - left)))
    rows = {name: {"positive slices": len(a), f"share under {floor:g} px": float(np.mean(np.array(a) < floor))
                   if a else np.nan, "median bleed (px at input)": float(np.median(a)) if a else np.nan}
            for name, a in areas.items()}
    return pd.DataFrame(rows).T


