"""Training one of the paper's models: the fit with its callbacks and the test predictions (every run of a plan:
``ichlib.plan``).

The split by patient is ``ichlib.split``, the epoch's images and batches ``ichlib.batches``, the devices and the
seed ``ichlib.devices``; a run's folder belongs to ``ichlib.runs``. Keras is imported inside the functions that
train.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import runs
from .batches import INFERENCE_BATCH, batches_class
from .devices import distribution_scope, set_determinism
from .labels import ANY
from .monitor import curve_sample, read_monitor_seconds, run_monitor
from .runs import RunSpec
from .split import SPLITS


# --------------------------------------------------------------------------------------------- fitting
def learning_rate(spec: RunSpec, total_steps: int):
    """The optimiser's learning rate: the spec's constant, or a warm-up and cosine decay over ``total_steps``.

    A short run from scratch gains from ending at a small rate: the last steps settle instead of jumping.
    """
    import keras

    if spec.lr_schedule == "constant":
        return spec.learning_rate
    warmup = max(1, total_steps // 20)
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, total_steps - warmup), alpha=0.0,
                                                  warmup_target=spec.learning_rate, warmup_steps=warmup)


def train_model(spec: RunSpec, cache, split: pd.Series, out_dir: str | os.PathLike, verbose: int = 0,
                callbacks: list | None = None, source=None, strata: pd.Series | None = None,
                start_source=None) -> dict:
    """Train one model on a cache and save everything later chapters need in ``out_dir`` (``ichlib.runs``).

    A folder with ``done.json`` is returned as it is; an interrupted run resumes from its last finished epoch
    (``keras.callbacks.BackupAndRestore``), keeping the best epoch it had.

    Args:
        spec: the run.
        cache: an ``ichlib.cache.Cache`` with labels.
        split: ``split_by_patient`` output (train / val / test per image ID).
        out_dir: the run's artifact folder.
        verbose: Keras fit verbosity.
        callbacks: extra Keras callbacks (tests use one to interrupt a run).
        source: the ``ichlib.store.Source`` the cache was made from (its key and kind go into the summary; a
            ``weights="pretrained"`` run finds its backbone through it).
        strata: each image ID's level stratum (``ichlib.level.slice_levels``): needed for level-matched negatives.
        start_source: where a pretrained start was pretrained, where not on ``source`` (real data starts from
            the phantom's ``"masks"`` backbone: it has no masks of its own).
    """
    import keras

    spec.check()
    out = Path(out_dir)
    if runs.is_finished(out):
        return runs.read_summary(out)
    if cache.labels is None:
        raise ValueError("the cache has no labels; build it with labels to train on it")
    out.mkdir(parents=True, exist_ok=True)
    set_determinism(spec.seed)
    masks = mask_targets(spec, cache, source)
    rows, batches = split_batches(spec, cache, split, strata, masks)
    prior = level_prior(spec, cache, rows, strata, out)
    policy = keras.mixed_precision.global_policy()
    try:
        if spec.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        with distribution_scope():
            model, trainee = compile_model(spec, len(batches["train"]), start_source or source)
            train_seconds = fit(spec, model, trainee, cache, rows, batches, out, verbose, callbacks, prior)
            model.load_weights(str(out / "best.weights.h5"))
            test_seconds = (predict_test(model, cache, rows["test"], batches["test"], out, prior) if spec.score_test
                            else 0.0)
    finally:  # an interrupted mixed-precision run must not leave the process in float16
        keras.mixed_precision.set_global_policy(policy)
    summary = run_summary(spec, model, cache, rows, batches, out, train_seconds, test_seconds, source)
    runs.write_summary(out, summary)
    return summary


def run_summary(spec: RunSpec, model, cache, rows: dict, batches: dict, out: Path, train_seconds: float,
                test_seconds: float, source=None) -> dict:
    """What a finished run's ``done.json`` says of it (``ichlib.runs``)."""
    import keras

    history = pd.read_csv(out / "history.csv")
    monitor = read_monitor_seconds(out)
    summary = dict(
        name=spec.name, spec=asdict(spec), parameters=int(model.count_params()), epochs_run=int(len(history)),
        best_epoch=int(history["val_loss"].idxmin()), train_seconds=round(train_seconds, 1),
        test_seconds_per_image=test_seconds, backend=keras.backend.backend(), keras=keras.__version__,
        cache=cache.meta, images={name: int(len(r)) for name, r in rows.items()},
        # where the run's seconds went: the learning steps are what is left of training once the monitor's
        # validation passes and curve checks are taken out
        seconds={"learning": round(max(train_seconds - monitor["validation"] - monitor["curve"], 0.0), 1),
                 "validation passes": round(monitor["validation"], 1), "curve checks": round(monitor["curve"], 1),
                 "test prediction": round(test_seconds * len(rows["test"]), 1)},
        images_learnt=int(len(history) * batches["train"].epoch_size),
        **({"source": {"key": source.key, "phantom": source.phantom}} if source is not None else {}))
    return summary


def mask_targets(spec: RunSpec, cache, source) -> np.ndarray | None:
    """The mask grid of every cache row for a run trained on masks (``spec.mask_weight`` > 0), else None."""
    if spec.mask_weight <= 0:
        return None
    from .masktargets import MasksUnavailable, grid_targets
    from .models import mask_cells

    if source is None:
        raise MasksUnavailable(f"{spec.name}: mask_weight {spec.mask_weight:g} needs the source whose masks it "
                               "learns (source=)")
    return grid_targets(source, cache, mask_cells(runs.model_for(spec)))


def level_prior(spec: RunSpec, cache, rows: dict, strata: pd.Series | None, out: Path) -> tuple | None:
    """(correction, stratum per cache row) of a run on level-matched negatives, its correction saved in ``out``
    (``ichlib.levelprior``); None for a run on random negatives."""
    if spec.negatives != "level_matched":
        return None
    from . import levelprior

    row_strata = levelprior.aligned_strata(strata, cache.ids)
    train = rows["train"]
    table = levelprior.correction(cache.labels[train], row_strata[train], spec.positive_fraction, spec.seed)
    levelprior.write(out, table)
    return table, row_strata


def split_batches(spec: RunSpec, cache, split: pd.Series, strata: pd.Series | None = None,
                  masks: np.ndarray | None = None) -> tuple[dict, dict]:
    """(cache rows, batches) of each split: training batches drawn afresh each epoch (with their mask targets
    where ``masks`` are given), the others in order."""
    where = split.reindex(cache.ids)
    if spec.negatives == "level_matched":
        if strata is None:
            raise ValueError(f"{spec.name}: level-matched negatives need each image's level stratum (strata=)")
        from .levelprior import aligned_strata

        strata = aligned_strata(strata, cache.ids)  # an image without a level: its own stratum (-1)
    else:
        strata = None
    rows = {name: np.flatnonzero((where == name).to_numpy()) for name in SPLITS}
    for name, r in rows.items():
        if len(r) == 0:
            raise ValueError(f"the {name} split is empty for this cache")
    Batches = batches_class()
    batches = {name: Batches(cache.images, cache.labels, r, spec.batch_size if name == "train" else INFERENCE_BATCH,
                             name == "train", spec.seed,
                             positive_fraction=spec.positive_fraction if name == "train" else 0.0,
                             epoch_size=spec.epoch_images if name == "train" else 0,
                             strata=strata if name == "train" else None,
                             masks=masks if name == "train" else None,
                             flips=spec.flips_in_data and name == "train", workers=2, use_multiprocessing=False, max_queue_size=8) for name, r in rows.items()}
    return rows, batches


def compile_model(spec: RunSpec, steps_per_epoch: int, source=None):
    """(model, trainee): the run's model at its start (``spec.weights``), and what is fitted, compiled with
    Adam at the run's schedule, its loss and the RSNA metric. The two are one network: for a run trained on masks
    the trainee is the same layers with the mask logits as a second output, whose loss (binary cross-entropy per
    cell, weighted ``spec.mask_weight``) is added to the labels'; for every other run the same layers under
    another name, so the model itself carries no optimizer. A pretrained start
    needs the ``source`` its backbone was pretrained on."""
    import keras

    from .losses import RSNALogLoss, WeightedBCE
    from .models import training_model

    if spec.weights == "imagenet":
        from .models import build_model

        model = build_model(spec.arch, spec.image_size, weights="imagenet",
                            flips=spec.variant == "optimised" and not spec.flips_in_data,
                            seed=spec.seed, bn_momentum=spec.bn_momentum, mask_head=spec.mask_head,
                            score_from=spec.score_from)
    else:
        model = runs.model_for(spec)
    if spec.weights in runs.PRETRAINED:
        from .pretrain import start_from

        if source is None:
            raise ValueError(f"{spec.name}: a pretrained start needs the source its backbone was pretrained on")
        start_from(model, source, spec)
    optimizer = keras.optimizers.Adam(learning_rate(spec, spec.epochs * steps_per_epoch))
    # the optimizer lives with the trainee, so the model saves its weights alone (Adam's two numbers per weight
    # would triple the checkpoint, and nothing reads them once a run is finished)
    if spec.mask_weight > 0:
        trainee = training_model(model)
        trainee.compile(optimizer=optimizer,
                        loss=[WeightedBCE(spec.loss_weights), keras.losses.BinaryCrossentropy(from_logits=True)],
                        loss_weights=[1.0, float(spec.mask_weight)], metrics=[[RSNALogLoss()], []])
        return model, trainee
    trainee = keras.Model(model.inputs, model.outputs, name=f"{model.name}_trainee")
    trainee.compile(optimizer=optimizer, loss=WeightedBCE(spec.loss_weights), metrics=[RSNALogLoss()])
    return model, trainee


def fit(spec: RunSpec, model, trainee, cache, rows: dict, batches: dict, out: Path, verbose: int = 0,
        callbacks: list | None = None, prior: tuple | None = None) -> float:
    """Fit ``trainee`` (``compile_model``) with the run's callbacks; returns the training seconds, interruptions
    included (kept in a file). ``model`` is the run's model, which validation scores and the checkpoint saves.
    ``prior``: (correction, strata per cache row) where the run's output gets the level put back."""
    import keras

    val_truth = cache.labels[rows["val"]].astype(np.float32)
    sample = curve_sample(val_truth[:, ANY] > 0, seed=spec.seed)
    if prior is not None:
        table, row_strata = prior
        prior = (table, row_strata[rows["val"]], row_strata[rows["val"][sample]])
    history = out / "history.csv"
    best_so_far = pd.read_csv(history)["val_loss"].min() if history.exists() else np.inf
    monitor = run_monitor(out, model, batches=batches["val"], ids=[cache.ids[i] for i in rows["val"]], truth=val_truth,
                          sample=(cache.images[rows["val"][sample]].astype(np.float32), val_truth[sample, ANY]),
                          loss_weights=spec.loss_weights, steps_per_epoch=len(batches["train"]),
                          batch_size=spec.batch_size, epoch_images=batches["train"].epoch_size,
                          best_so_far=best_so_far, prior=prior)
    clock = out / "train_seconds.partial"  # training time survives an interruption
    spent = float(clock.read_text()) if clock.exists() else 0.0
    start = time.perf_counter()
    try:
        # the monitor first (it keeps the best epoch's weights); the log and early stopping read the val_loss it
        # puts in the logs
        trainee.fit(batches["train"], epochs=spec.epochs, verbose=verbose,
                  callbacks=[monitor, keras.callbacks.CSVLogger(str(history), append=True),
                             keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience),
                             keras.callbacks.BackupAndRestore(str(out / "backup")), *(callbacks or [])])
    finally:
        clock.write_text(str(spent + time.perf_counter() - start))
    return float(clock.read_text())


def predict_test(model, cache, rows: np.ndarray, batches, out: Path, prior: tuple | None = None) -> float:
    """Predict the test split with the best weights and save it (with the level put back, for a ``prior``);
    returns seconds per image. (Validation was saved at its best epoch by the monitor.)"""
    from .levelprior import apply
    from .models import with_features

    start = time.perf_counter()
    probs, features = with_features(model).predict(batches, verbose=0)
    if prior is not None:
        probs = apply(probs, prior[1][rows], prior[0])
    seconds = (time.perf_counter() - start) / len(rows)
    ids = [cache.ids[i] for i in rows]
    runs.write_predictions(out, "test", ids, cache.labels[rows], probs)
    runs.write_features(out, "test", ids, features)
    return seconds
