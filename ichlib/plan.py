"""Every run of a plan: the runs a chapter asks for, their shared backbones pretrained first, then each run trained
(finished ones kept, interrupted ones resumed) and summarised in one row.

Above ``ichlib.train`` (one run's fit) and ``ichlib.pretrain`` (a backbone's folder and how a run starts from it):
pretraining a backbone is a fit too, so it lives here, where both are in reach.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd

from . import runs
from .preprocess import PAPER_WINDOWS
from .pretrain import KEY, backbone_dir, is_pretrained, pretraining_spec, read_summary, summaries, teacher
from .runs import RunSpec
from .split import PAPER_FRACTIONS, split_by_patient, split_fractions
from .train import compile_model, fit, mask_targets, split_batches, train_model


def plan_runs(archs, preprocessings, variants, **settings) -> list[RunSpec]:
    """Every combination, in the paper's order (backbone, then input, then variant); each checked."""
    specs = [RunSpec(a, p, v, **settings) for p in preprocessings for a in archs for v in variants]
    for spec in specs:
        spec.check()
    return specs


def train_runs(src, specs: list, seed: int, windows: tuple = PAPER_WINDOWS, workers: int | None = None,
               log=print, phantom=None) -> pd.DataFrame:
    """Train every run (finished ones are kept, interrupted ones resume) and return one summary row per run.

    The split is by patient from ``seed``; the inputs come from the cache of each run's preprocessing and size.
    Backbones that runs start from (``weights="pretrained"``) are pretrained first, once per architecture
    (``ichlib.pretrain``); on real data a ``"masks"`` start is the ``phantom`` source's (it has the masks).
    ``log`` receives one line per run and result (None: silent).
    """
    log = log or (lambda line: None)
    from . import store
    from .level import slice_levels
    from .metrics import per_label_auc, weighted_log_loss

    table, _ = store.index(src, workers=workers, progress=False)
    shares = {spec.test_fraction for spec in specs}
    if len(shares) > 1:
        raise ValueError(f"runs of one book share one split; got test fractions {sorted(shares)}")
    split = split_by_patient(table, seed, src.labels(), split_fractions(shares.pop() if shares else PAPER_FRACTIONS[2]))
    strata = slice_levels(table)["stratum"]
    # a finished run needs neither its backbone nor, on real data, the phantom its masks start came from
    backbones(src, [s for s in specs if not runs.is_finished(runs.run_dir(src, s))], split, strata, windows,
              workers, log, phantom)
    rows = []
    for i, spec in enumerate(specs, 1):
        data = store.run_cache(src, spec, windows, workers=workers)
        folder = runs.run_dir(src, spec)
        log(f"[{i}/{len(specs)}] {spec.name}: {'finished earlier' if runs.is_finished(folder) else 'training'}")
        summary = train_model(spec, data, split, folder, source=src, strata=strata,
                              start_source=None if runs.is_finished(folder) else teacher(src, spec, phantom))
        val_auc = per_label_auc(*runs.load_predictions(folder, "val")[1:])
        if spec.score_test:
            _, truth, probs = runs.load_predictions(folder, "test")
            auc, log_loss = per_label_auc(truth, probs), weighted_log_loss(truth, probs)
        else:  # a run scored on validation only (a lever) has no test predictions: its test columns stay empty
            auc, log_loss = pd.Series(np.nan, index=val_auc.index), np.nan
        log(f"    {summary['epochs_run']} epochs, {summary['train_seconds']:.0f} s, AUC any: validation "
            f"{val_auc['any']:.3f}, test {auc['any']:.3f}")
        rows.append({"run": spec.name, "arch": spec.arch, "preprocessing": spec.preprocessing,
                     "variant": spec.variant, "folder": str(folder), "backend": summary["backend"],
                     "epochs run": summary["epochs_run"],
                     "best epoch": summary["best_epoch"] + 1, "train s": summary["train_seconds"],
                     "test s/image": summary["test_seconds_per_image"],
                     **{f"{part} s": seconds for part, seconds in summary.get("seconds", {}).items()},
                     "images learnt": summary.get("images_learnt", 0),
                     "val AUC any": val_auc["any"], "test RSNA log loss": log_loss,
                     **{f"test AUC {label}": auc[label] for label in auc.index}})
    return pd.DataFrame(rows).set_index("run")


def pretrain_backbone(src, spec: RunSpec, split: pd.Series, strata: pd.Series | None, windows: tuple,
                      workers: int | None = None) -> dict:
    """Pretrain ``spec``'s backbone once (a finished one is returned as it is); returns its summary.

    ``split`` is the book's patient split (only its training rows are used; validation scores the result),
    ``strata`` each image's level stratum (``ichlib.level.slice_levels``), needed for level-matched negatives.
    A ``"masks"`` backbone learns the source's masks too, and is scored on them (``ichlib.pretrain.MASK_SCORES``).
    """
    from . import store
    from .devices import set_determinism
    from .metrics import auc_or_nan, matched_auc

    folder = backbone_dir(src, spec)
    if is_pretrained(folder):
        return read_summary(folder)
    pre = pretraining_spec(spec)
    pre.check()
    cache = store.run_cache(src, pre, windows, workers=workers)
    folder.mkdir(parents=True, exist_ok=True)
    set_determinism(spec.seed)
    masks = mask_targets(pre, cache, src)
    rows, batches = split_batches(pre, cache, split, strata, masks)
    model, trainee = compile_model(pre, len(batches["train"]))
    seconds = fit(pre, model, trainee, cache, rows, batches, folder)

    model.load_weights(str(folder / "best.weights.h5"))
    ids, truth, probs = runs.load_predictions(folder, "val")
    summary = {"arch": spec.arch, "settings": {name: getattr(spec, name) for name in KEY},
               "images": pre.epochs * batches["train"].epoch_size, "epochs": pre.epochs,
               "seconds": round(seconds, 1), "val AUC any": round(float(auc_or_nan(truth[:, 0], probs[:, 0])), 4)}
    if strata is not None:  # on level-matched negatives the plain AUC lacks the level: this is the fair one
        summary["val matched AUC any"] = round(matched_auc(truth[:, 0], probs[:, 0], strata.reindex(ids)), 4)
    if masks is not None:
        from .pointers import mask_scores

        summary.update(mask_scores(model, cache, rows["val"], masks, strata))
    os.replace(folder / "best.weights.h5", folder / "model.weights.h5")  # the model's weights alone (no optimizer)
    tmp = folder / "summary.json.part"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, folder / "summary.json")
    return summary


def backbones(src, specs: list[RunSpec], split: pd.Series, strata: pd.Series | None, windows: tuple,
              workers: int | None = None, log=print, phantom=None) -> pd.DataFrame:
    """Pretrain every backbone the runs ask for (one per architecture and setting) and return one row each
    (``ichlib.pretrain.summaries``). A ``"masks"`` start on real data is pretrained on ``phantom``, on its own
    patient split."""
    log = log or (lambda line: None)
    seen = set()
    for spec in specs:
        if spec.weights not in runs.PRETRAINED:
            continue
        home = teacher(src, spec, phantom)
        folder = backbone_dir(home, spec)
        if folder in seen:
            continue
        seen.add(folder)
        log(f"backbone {spec.arch} ({spec.weights}): {'pretrained earlier' if is_pretrained(folder) else 'pretraining'} "
            f"({spec.pretrain_images} images{'' if home is src else ', on the phantom'})")
        start = time.perf_counter()
        if home is src:
            summary = pretrain_backbone(src, spec, split, strata, windows, workers)
        else:
            summary = pretrain_backbone(home, spec, *book_split(home, spec.seed, spec.test_fraction, workers),
                                        windows, workers)
        log(f"    {summary['seconds']:.0f} s, validation AUC any {summary['val AUC any']:.3f}"
            + ("" if time.perf_counter() - start > 1 else " (kept)"))
    return summaries(src, specs, phantom)


def book_split(src, seed: int, test_fraction: float, workers: int | None = None) -> tuple[pd.Series, pd.Series]:
    """(the patient split, each image's level stratum) of a source, as a book on it would draw them."""
    from . import store
    from .level import slice_levels

    table, _ = store.index(src, workers=workers, progress=False)
    return (split_by_patient(table, seed, src.labels(), split_fractions(test_fraction)),
            slice_levels(table)["stratum"])


def phantom_for(src, specs: list[RunSpec], studies: int, seed: int, matrix: int, workers: int | None = None):
    """The phantom whose masks teach a ``"masks"`` start on data without masks (real data): the book's phantom
    of ``studies``, ``seed`` and ``matrix`` (made first where it is missing); None where no run needs one."""
    if getattr(src, "phantom", False) or not any(spec.weights == "masks" for spec in specs):
        return None
    from . import store

    return store.source("", studies, seed, matrix, workers=workers, progress=True)
