"""The project's own pretrained start: one backbone per architecture, trained once and shared by its runs.

The paper fine-tuned every model from Keras' ImageNet weights. Where they cannot be downloaded, a run can start
instead from a backbone this module pretrains once per architecture on the source's training split: the
three-window input at the run's size and crop, ``pretrain_images`` freshly drawn images (positives and negatives
as the runs draw them, flips on), the six labels with equal weights. Every run of that architecture (both
inputs, both variants, every seed) then starts from its layers with a new head, so, as in the paper, the runs
of one backbone share one start and stay comparable.

With ``weights="masks"`` the backbone learns from the phantom's bleed masks as well (``ichlib.masktargets``):
a light mask head on its stride-8 map (``ichlib.models``) is trained beside the labels, the masks' loss weighted
``PRETRAIN_MASK_WEIGHT``. The runs that start from it keep that head (a pointer to where it saw blood) and
fine-tune on whatever the run itself asks for: the paper's image labels only, unless the run sets its own
``mask_weight``. Real data has no masks: its runs start from the phantom's masks backbone, pretrained on the
phantom's training split, so whether that start helps real data is a measurement on real data, not a claim.

What it is not: ImageNet's kind of knowledge from elsewhere. It sees the same training patients and labels the
runs later fine-tune on (never a validation or test patient), so it is longer training paid once per
architecture instead of once per run. That is what makes it affordable on two cores.

    data/backbones/<source>/<arch>-<size>px-<hash of its settings and backend>/
        model.weights.h5   the pretrained network
        summary.json       its settings, seconds, images and validation AUC of `any`; written last
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import runs
from .runs import RunSpec

PRETRAIN_INPUT = "three_window"
HEAD = ("head_dense", "labels")  # the layers a fine-tuned run starts afresh
MASK_HEAD_PREFIX = "mask_"  # the mask head's layers (ichlib.models): copied where both networks have them
PRETRAIN_MASK_WEIGHT = 1.0  # the masks' loss beside the labels' while a "masks" backbone is pretrained
# Images per pretraining epoch: an interrupted pretraining resumes from the last one finished, and each epoch
# ends with a pass over the validation split (about 30 s on 2 cores at 80 px), so not too many of them.
CHUNK = 2400
# The settings a backbone depends on: two runs that agree on these share it.
KEY = ("arch", "image_size", "crop", "seed", "test_fraction", "pretrain_images", "batch_size", "learning_rate",
       "lr_schedule", "bn_momentum", "positive_fraction", "negatives", "mixed_precision", "weights")


def pretraining_spec(spec: RunSpec) -> RunSpec:
    """The run that pretrains ``spec``'s backbone: three-window input with flips, ``pretrain_images`` images in
    epochs of about ``CHUNK``, from scratch; for a ``"masks"`` start, with the mask loss beside the labels'."""
    epochs = max(1, round(spec.pretrain_images / CHUNK))
    masks = spec.weights == "masks"
    return replace(spec, preprocessing=PRETRAIN_INPUT, variant="optimised", any_weight=1.0, weights="none",
                   epochs=epochs, epoch_images=-(-spec.pretrain_images // epochs), pretrain_images=0, patience=epochs,
                   mask_weight=PRETRAIN_MASK_WEIGHT if masks else 0.0, score_from="head")


def backbone_dir(src, spec: RunSpec) -> Path:
    """The folder of ``spec``'s pretrained backbone on a source (``ichlib.store.Source``)."""
    from .backend import configure
    from .store import data_root

    settings = {name: getattr(spec, name) for name in KEY} | {"backend": configure(), "chunk": CHUNK}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return data_root() / "backbones" / src.key / f"{spec.arch}-{spec.image_size}px-{digest}"


def is_pretrained(folder: str | os.PathLike) -> bool:
    return (Path(folder) / "summary.json").exists()


def read_summary(folder: str | os.PathLike) -> dict:
    return json.loads((Path(folder) / "summary.json").read_text())


def start_from(model, src, spec: RunSpec) -> int:
    """Copy the pretrained backbone of ``spec`` into a new ``model`` of the same architecture and size, all but
    the head (``HEAD``); returns how many layers were copied. The layers are matched in order (Keras numbers
    some of its layer names per process, so names differ between two builds of one network)."""
    folder = backbone_dir(src, spec)
    if not is_pretrained(folder):
        raise FileNotFoundError(f"{folder}: no pretrained backbone for {spec.name}; run ichlib.plan.pretrain_backbone")
    source = runs.model_for(pretraining_spec(spec))
    source.load_weights(str(folder / "model.weights.h5"))

    def backbone(net, mask: bool):
        return [layer for layer in net.layers if layer.weights and layer.name not in HEAD
                and layer.name.startswith(MASK_HEAD_PREFIX) == mask]

    mine, theirs = backbone(model, False), backbone(source, False)
    if len(mine) != len(theirs):
        raise ValueError(f"{folder}: the backbone has {len(theirs)} weighted layers, the model {len(mine)}")
    if backbone(model, True) and backbone(source, True):  # the mask head, where both have it (named by us)
        mine += backbone(model, True)
        theirs += [source.get_layer(layer.name) for layer in backbone(model, True)]
    for to, frm in zip(mine, theirs):
        shapes = [tuple(w.shape) for w in to.weights], [tuple(w.shape) for w in frm.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(f"{folder}: layer {frm.name} does not fit {to.name} ({shapes[1]} vs {shapes[0]})")
        to.set_weights(frm.get_weights())
    return len(mine)


def teacher(src, spec: RunSpec, phantom=None):
    """The source ``spec``'s backbone is pretrained on: ``src`` itself, except for a ``"masks"`` start on data
    without masks (real data), which starts from ``phantom``'s."""
    if spec.weights != "masks" or getattr(src, "phantom", False):
        return src
    if phantom is None:
        from .masktargets import MasksUnavailable

        raise MasksUnavailable(f"{src.key}: real data has no masks; a 'masks' start is pretrained on the phantom, "
                               "so pass the phantom source (phantom=)")
    return phantom


def summaries(src, specs: list[RunSpec], phantom=None) -> pd.DataFrame:
    """The backbones the runs started from, one row each (arch, images, train s, val AUC any, val matched AUC any,
    folder): read from
    their summaries, never trained here. Empty where no run starts from a pretrained backbone."""
    rows = {}
    for spec in specs:
        if spec.weights not in runs.PRETRAINED:
            continue
        folder = backbone_dir(teacher(src, spec, phantom), spec)
        if spec.weights in runs.PRETRAINED and folder not in rows:
            summary = read_summary(folder)
            rows[folder] = {"arch": spec.arch, "start": spec.weights, "images": summary["images"],
                            "train s": summary["seconds"], "val AUC any": summary["val AUC any"],
                            "val matched AUC any": summary.get("val matched AUC any", np.nan),
                            **{column: summary.get(column, np.nan) for column in MASK_SCORES}, "folder": str(folder)}
    return pd.DataFrame(list(rows.values()), columns=["arch", "start", "images", "train s", "val AUC any",
                                                      "val matched AUC any", *MASK_SCORES, "folder"])


# A masks backbone's own validation scores: its mask head's cells as a pixel classifier of the true grid, its
# Dice at one half, and its largest cell as the slice's `any` score, level-matched (ichlib.metrics.matched_auc).
MASK_SCORES = ("val cell AUC", "val Dice", "val mask matched AUC any")
# The same columns as a page names them, short enough that a table of them fits the column.
SHOWN = {"val AUC any": "AUC", "val matched AUC any": "matched", "val cell AUC": "cell AUC", "val Dice": "Dice",
         "val mask matched AUC any": "mask matched"}


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`summaries` as a page shows it: one row per backbone named ``arch (start)``, the columns' short names
    (``SHOWN``), no folder, so that it fits the column."""
    out = table.drop(columns="folder").rename(columns=SHOWN)
    out.index = [f"{arch} ({start})" for arch, start in zip(table["arch"], table["start"])]
    return out.drop(columns=["arch", "start"])
