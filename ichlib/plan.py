"""Every run of a plan: the runs a chapter asks for, their shared backbones pretrained first, then each run trained
(finished ones kept, interrupted ones resumed) and summarised in one row.

Above ``ichlib.train`` (one run's fit) and ``ichlib.pretrain`` (a backbone's folder and how a run starts from it):
pretraining a backbone is a fit too, so it lives here, where both are in reach.
"""

from __future__ import annotations

import json
import os
import time

import pandas as pd

from . import runs
from .preprocess import PAPER_WINDOWS
from .pretrain import KEY, backbone_dir, is_pretrained, pretraining_spec, read_summary, summaries
from .runs import RunSpec
from .split import PAPER_FRACTIONS, split_by_patient, split_fractions
from .train import compile_model, fit, split_batches, train_model


def plan_runs(archs, preprocessings, variants, **settings) -> list[RunSpec]:
    """Every combination, in the paper's order (backbone, then input, then variant); each checked."""
    specs = [RunSpec(a, p, v, **settings) for p in preprocessings for a in archs for v in variants]
    for spec in specs:
        spec.check()
    return specs


def train_runs(src, specs: list, seed: int, windows: tuple = PAPER_WINDOWS, workers: int | None = None,
               log=print) -> pd.DataFrame:
    """Train every run (finished ones are kept, interrupted ones resume) and return one summary row per run.

    The split is by patient from ``seed``; the inputs come from the cache of each run's preprocessing and size.
    Backbones that runs start from (``weights="pretrained"``) are pretrained first, once per architecture
    (``ichlib.pretrain``). ``log`` receives one line per run and result (None: silent).
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
    backbones(src, specs, split, strata, windows, workers, log)
    rows = []
    for i, spec in enumerate(specs, 1):
        data = store.run_cache(src, spec, windows, workers=workers)
        folder = runs.run_dir(src, spec)
        log(f"[{i}/{len(specs)}] {spec.name}: {'finished earlier' if runs.is_finished(folder) else 'training'}")
        summary = train_model(spec, data, split, folder, source=src, strata=strata)
        _, truth, probs = runs.load_predictions(folder, "test")
        auc = per_label_auc(truth, probs)
        val_auc = per_label_auc(*runs.load_predictions(folder, "val")[1:])
        log(f"    {summary['epochs_run']} epochs, {summary['train_seconds']:.0f} s, AUC any: validation "
            f"{val_auc['any']:.3f}, test {auc['any']:.3f}")
        rows.append({"run": spec.name, "arch": spec.arch, "preprocessing": spec.preprocessing,
                     "variant": spec.variant, "folder": str(folder), "backend": summary["backend"],
                     "epochs run": summary["epochs_run"],
                     "best epoch": summary["best_epoch"] + 1, "train s": summary["train_seconds"],
                     "test s/image": summary["test_seconds_per_image"],
                     "val AUC any": val_auc["any"], "test RSNA log loss": weighted_log_loss(truth, probs),
                     **{f"test AUC {label}": auc[label] for label in auc.index}})
    return pd.DataFrame(rows).set_index("run")


def pretrain_backbone(src, spec: RunSpec, split: pd.Series, strata: pd.Series | None, windows: tuple,
             workers: int | None = None) -> dict:
    """Pretrain ``spec``'s backbone once (a finished one is returned as it is); returns its summary.

    ``split`` is the book's patient split (only its training rows are used; validation scores the result),
    ``strata`` each image's level stratum (``ichlib.level.slice_levels``), needed for level-matched negatives.
    """
    from . import store
    from .metrics import auc_or_nan, matched_auc
    from .devices import set_determinism

    folder = backbone_dir(src, spec)
    if is_pretrained(folder):
        return read_summary(folder)
    pre = pretraining_spec(spec)
    pre.check()
    cache = store.run_cache(src, pre, windows, workers=workers)
    folder.mkdir(parents=True, exist_ok=True)
    set_determinism(spec.seed)
    rows, batches = split_batches(pre, cache, split, strata)
    model = compile_model(pre, len(batches["train"]))
    seconds = fit(pre, model, cache, rows, batches, folder)

    model.load_weights(str(folder / "best.weights.h5"))
    ids, truth, probs = runs.load_predictions(folder, "val")
    summary = {"arch": spec.arch, "settings": {name: getattr(spec, name) for name in KEY},
               "images": pre.epochs * batches["train"].epoch_size, "epochs": pre.epochs,
               "seconds": round(seconds, 1), "val AUC any": round(float(auc_or_nan(truth[:, 0], probs[:, 0])), 4)}
    if strata is not None:  # on level-matched negatives the plain AUC lacks the level: this is the fair one
        summary["val matched AUC any"] = round(matched_auc(truth[:, 0], probs[:, 0], strata.reindex(ids)), 4)
    plain = runs.model_for(pre)  # the weights without the optimizer's state
    plain.set_weights(model.get_weights())
    plain.save_weights(str(folder / "model.weights.h5"))
    (folder / "best.weights.h5").unlink(missing_ok=True)
    tmp = folder / "summary.json.part"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, folder / "summary.json")
    return summary


def backbones(src, specs: list[RunSpec], split: pd.Series, strata: pd.Series | None, windows: tuple,
              workers: int | None = None, log=print) -> pd.DataFrame:
    """Pretrain every backbone the runs ask for (one per architecture and setting) and return one row each
    (``ichlib.pretrain.summaries``)."""
    log = log or (lambda line: None)
    seen = set()
    for spec in specs:
        if spec.weights != "pretrained" or backbone_dir(src, spec) in seen:
            continue
        folder = backbone_dir(src, spec)
        seen.add(folder)
        log(f"backbone {spec.arch}: {'pretrained earlier' if is_pretrained(folder) else 'pretraining'} "
            f"({spec.pretrain_images} images)")
        start = time.perf_counter()
        summary = pretrain_backbone(src, spec, split, strata, windows, workers)
        log(f"    {summary['seconds']:.0f} s, validation AUC any {summary['val AUC any']:.3f}"
            + ("" if time.perf_counter() - start > 1 else " (kept)"))
    return summaries(src, specs)
