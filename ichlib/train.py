"""Training the paper's models: the patient-level split, the input batches, the fit with its callbacks, artifacts.

Keras is imported inside the functions that train, so the split works without a deep-learning backend.

The paper split its 200,000 images 81 / 9 / 10 by image, so slices of one patient (near copies of each other)
could sit in both training and test. Here the split is by patient, as the top RSNA solutions did.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import runs
from .monitor import curve_sample, run_monitor
from .runs import RunSpec
from .preprocess import PAPER_WINDOWS
from .rsna import ANY, LABELS, SUBTYPES

SPLITS = ("train", "val", "test")
INFERENCE_BATCH = 64  # images per predict call: no gradients are kept, so a larger batch costs little memory
PAPER_FRACTIONS = (0.81, 0.09, 0.10)


def split_fractions(test_fraction: float = PAPER_FRACTIONS[2]) -> tuple[float, float, float]:
    """(train, validation, test) shares with the paper's 9 % validation and the given test share."""
    return (round(1 - PAPER_FRACTIONS[1] - test_fraction, 6), PAPER_FRACTIONS[1], test_fraction)


def split_by_patient(index: pd.DataFrame, seed: int, labels: pd.DataFrame | None = None,
                     fractions: tuple[float, float, float] = PAPER_FRACTIONS) -> pd.Series:
    """Assign every image to "train", "val" or "test" so that no patient is in two splits.

    Patients with a subtype are dealt out first, rarest subtype first: while a split has none of that subtype's
    patients it gets the next one (so every split has every subtype once there are three such patients), then
    each goes where it is furthest below its share. The other patients then fill the splits towards their
    shares of images. With three patients or more, no split is left empty.

    Args:
        index: indexed by image ID, with a ``patient`` column (``ichlib.rsna.index_dicoms``).
        seed: the only source of randomness: the same seed gives the same split.
        labels: ``ichlib.rsna.read_labels`` output, for stratifying by subtype; without it, patients are dealt
            by image counts alone.
        fractions: shares of images for train, val, test.

    Returns:
        Series indexed like ``index``, values in :data:`SPLITS`.
    """
    if len(fractions) != 3 or not np.isclose(sum(fractions), 1) or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive shares summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    patients = index.groupby("patient", sort=True).size()
    patients = patients.iloc[rng.permutation(len(patients))]
    target = np.asarray(fractions) * patients.sum()
    images = np.zeros(3)
    split_of: dict[str, int] = {}

    def assign(patient: str, split: int) -> None:
        split_of[patient] = split
        images[split] += patients[patient]

    if labels is not None:
        known = labels.loc[labels.index.intersection(index.index)]
        positive = known[list(SUBTYPES)].groupby(index.loc[known.index, "patient"]).max()
        for subtype in sorted(SUBTYPES, key=lambda s: positive[s].sum()):
            cases = [p for p in patients.index if p in positive.index and positive.at[p, subtype]]
            share = np.asarray(fractions) * len(cases)
            count = np.array([sum(split_of.get(p) == k for p in cases) for k in range(3)], float)
            for patient in cases:
                if patient in split_of:
                    continue
                empty = [k for k in (2, 1, 0) if count[k] == 0]  # the small splits first
                k = empty[0] if empty and len(cases) >= 3 else int(np.argmax(share - count))
                assign(patient, k)
                count[k] += 1
    if labels is not None:  # every split gets a patient with a bleed once there are three (a small download)
        _bleed_in_every_split(patients, positive, split_of, images, assign)
    for patient in patients.index:
        if patient not in split_of:
            assign(patient, int(np.argmax(target - images)))
    while len(patients) >= 3 and (images == 0).any():  # a tiny cohort: no split may stay empty
        members = [[p for p, k in split_of.items() if k == s] for s in range(3)]
        donor = int(np.argmax([len(m) for m in members]))
        moved = min(members[donor], key=lambda p: (patients[p], p))
        images[donor] -= patients[moved]
        assign(moved, int(np.flatnonzero(images == 0)[0]))
    return index["patient"].map(lambda p: SPLITS[split_of[p]]).rename("split")


def _bleed_in_every_split(patients: pd.Series, positive: pd.DataFrame, split_of: dict, images: np.ndarray,
                          assign) -> None:
    """Move a patient with a bleed into validation, then test, where either has none and there are three such
    patients or more: the one with the fewest images from the split that holds the most of them."""
    sick = [p for p in patients.index if p in positive.index and positive.loc[p].any()]
    for k in (2, 1):
        holders = [[p for p in sick if split_of.get(p) == s] for s in range(3)]
        if len(sick) >= 3 and not holders[k]:
            donor = int(np.argmax([len(h) for h in holders]))
            moved = min(holders[donor], key=lambda p: (patients[p], p))
            images[donor] -= patients[moved]
            assign(moved, k)


# --------------------------------------------------------------------------------------------- fitting
def epoch_order(rows: np.ndarray, positive: np.ndarray, positive_fraction: float,
                rng: np.random.Generator, size: int | None = None, strata: np.ndarray | None = None) -> np.ndarray:
    """One training epoch's rows, shuffled: ``size`` of them (default: as many as ``rows``).

    With ``positive_fraction`` > 0, that share is drawn from the positive rows (cycling through them,
    reshuffled, as often as needed) and the rest from the negative rows, without repeats while they last, so a
    rare label is seen often enough in a short run.

    With ``strata`` (one level stratum per row, ``ichlib.baselines.levels``), the negatives are drawn with the
    positives' distribution over the strata: as many negatives from each tenth of the series as that tenth's
    share of the positives asks for. The level then no longer tells a positive from a negative in training, so
    a model can only lower its loss by looking at the slice. A stratum with positives and no negative gives its
    share to the negatives at large. (Without ``positive_fraction``, positives keep their natural share.)
    """
    rows = np.asarray(rows)
    size = len(rows) if not size else int(size)

    def draw(pool: np.ndarray, n: int) -> np.ndarray:
        if n <= 0:
            return pool[:0]
        cycles = -(-n // len(pool))
        return np.concatenate([rng.permutation(pool) for _ in range(cycles)])[:n]

    pos, neg = rows[positive], rows[~positive]
    if len(pos) == 0 or len(neg) == 0 or (positive_fraction <= 0 and strata is None):
        return draw(rows, size)
    share = positive_fraction if positive_fraction > 0 else len(pos) / len(rows)
    n_pos = min(max(1, int(round(share * size))), size - 1)
    if strata is None:
        negatives = draw(neg, size - n_pos)
    else:
        negatives = level_matched(neg, np.asarray(strata)[~positive], np.asarray(strata)[positive], size - n_pos,
                                  draw)
    return rng.permutation(np.concatenate([draw(pos, n_pos), negatives]))


def level_matched(neg: np.ndarray, neg_strata: np.ndarray, pos_strata: np.ndarray, n: int, draw) -> np.ndarray:
    """``n`` negative rows drawn so their strata follow the positives' (largest remainders round the counts)."""
    kinds, counts = np.unique(pos_strata, return_counts=True)
    want = counts / counts.sum() * n
    take = np.floor(want).astype(int)
    take[np.argsort(take - want)[:n - take.sum()]] += 1  # the largest remainders get the rounding
    parts, left = [], 0
    for kind, k in zip(kinds, take):
        pool = neg[neg_strata == kind]
        if len(pool):
            parts.append(draw(pool, k))
        else:
            left += k
    parts.append(draw(neg, left))
    return np.concatenate(parts)


def _dataset_class():
    import keras

    class CacheBatches(keras.utils.PyDataset):
        """Batches of cached images and labels; reshuffled each epoch from the seed; read ahead by a thread."""

        def __init__(self, images, labels, rows, batch_size, shuffle, seed, positive_fraction=0.0, epoch_size=0,
                     strata=None, **kwargs):
            super().__init__(**kwargs)
            self.strata = None if strata is None else np.asarray(strata)[np.asarray(rows)]  # per cache row given
            self.images, self.labels, self.rows = images, labels, np.asarray(rows)
            self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
            self.positive_fraction = positive_fraction
            self.epoch_size = (epoch_size or len(self.rows)) if shuffle else len(self.rows)
            self._order = self._make_order()

        def _make_order(self):
            if not self.shuffle:
                return self.rows
            return epoch_order(self.rows, self.labels[self.rows, ANY] > 0, self.positive_fraction,
                               np.random.default_rng([self.seed, self.epoch]), self.epoch_size, self.strata)

        def __len__(self):
            return int(np.ceil(self.epoch_size / self.batch_size))

        def __getitem__(self, i):
            rows = np.sort(self._order[i * self.batch_size:(i + 1) * self.batch_size])  # sorted: memmap reads in order
            return self.images[rows].astype(np.float32), self.labels[rows].astype(np.float32)

        def on_epoch_end(self):
            self.epoch += 1
            self._order = self._make_order()

    return CacheBatches


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


def accelerators() -> list:
    """The GPUs the Keras backend sees (TensorFlow's physical devices, or JAX's), empty on a CPU machine."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.list_physical_devices("GPU")
    if keras.backend.backend() == "jax":
        import jax

        return [d for d in jax.devices() if d.platform == "gpu"]
    if keras.backend.backend() == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return []


@contextlib.contextmanager
def distribution_scope(devices: list[str] | None = None):
    """Build and compile a model inside this so that training uses every device, by the backend's own means.

    TensorFlow: a ``tf.distribute.MirroredStrategy`` scope over ``devices`` (default: every GPU) when there are
    two or more; JAX: ``keras.distribution.DataParallel`` over them, set for the duration; one device or none,
    or torch (Keras has no data-parallel distribution for it): no change. Keras' ``fit`` then splits each batch
    across the replicas, so the batch size is the global one.
    """
    import keras

    if devices is None:
        devices = [getattr(d, "name", str(d)).replace("/physical_device:", "/") for d in accelerators()]
    if len(devices) < 2 or keras.backend.backend() == "torch":  # Keras offers torch no data parallelism: one GPU
        yield None
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            yield strategy
    else:
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        try:
            yield keras.distribution.distribution()
        finally:
            keras.distribution.set_distribution(previous)


def set_determinism(seed: int) -> None:
    """One seed for Python, NumPy and the backend; deterministic kernels where TensorFlow offers them."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        return
    try:  # what keras.utils.set_random_seed does, less importing TensorFlow (seconds, and its log lines)
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    except ImportError:  # another Keras layout: the public call, TensorFlow and all
        keras.utils.set_random_seed(seed)
    else:
        global_state.set_global_attribute("global_random_seed", seed)
        global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)  # recreated from the seed
        random.seed(seed)
        np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)  # CPU kernels are; this guards the GPU ones


def train_model(spec: RunSpec, cache, split: pd.Series, out_dir: str | os.PathLike, verbose: int = 0,
                callbacks: list | None = None, source=None, strata: pd.Series | None = None) -> dict:
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
        strata: each image ID's level stratum (``ichlib.baselines.levels``): needed for level-matched negatives.
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
    rows, batches = split_batches(spec, cache, split, strata)
    prior = level_prior(spec, cache, rows, strata, out)
    policy = keras.mixed_precision.global_policy()
    try:
        if spec.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        with distribution_scope():
            model = compile_model(spec, len(batches["train"]), source)
            train_seconds = fit(spec, model, cache, rows, batches, out, verbose, callbacks, prior)
            model.load_weights(str(out / "best.weights.h5"))
            test_seconds = predict_test(model, cache, rows["test"], batches["test"], out, prior)
            _keep_weights_only(spec, model, out / "best.weights.h5")
    finally:  # an interrupted mixed-precision run must not leave the process in float16
        keras.mixed_precision.set_global_policy(policy)
    history = pd.read_csv(out / "history.csv")
    summary = dict(
        name=spec.name, spec=asdict(spec), parameters=int(model.count_params()), epochs_run=int(len(history)),
        best_epoch=int(history["val_loss"].idxmin()), train_seconds=round(train_seconds, 1),
        test_seconds_per_image=test_seconds, backend=keras.backend.backend(), keras=keras.__version__,
        cache=cache.meta, images={name: int(len(r)) for name, r in rows.items()},
        **({"source": {"key": source.key, "phantom": source.phantom}} if source is not None else {}))
    runs.write_summary(out, summary)
    return summary


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


def split_batches(spec: RunSpec, cache, split: pd.Series, strata: pd.Series | None = None) -> tuple[dict, dict]:
    """(cache rows, batches) of each split: training batches drawn afresh each epoch, the others in order."""
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
    Batches = _dataset_class()
    batches = {name: Batches(cache.images, cache.labels, r, spec.batch_size if name == "train" else INFERENCE_BATCH,
                             name == "train", spec.seed,
                             positive_fraction=spec.positive_fraction if name == "train" else 0.0,
                             epoch_size=spec.epoch_images if name == "train" else 0,
                             strata=strata if name == "train" else None,
                             workers=2, use_multiprocessing=False, max_queue_size=8) for name, r in rows.items()}
    return rows, batches


def compile_model(spec: RunSpec, steps_per_epoch: int, source=None):
    """The run's model at its start (``spec.weights``) with its optimizer (Adam at the run's schedule), its loss
    and the RSNA metric. A ``"pretrained"`` start needs the ``source`` its backbone was pretrained on."""
    import keras

    from .losses import RSNALogLoss, WeightedBCE

    if spec.weights == "imagenet":
        from .models import build_model

        model = build_model(spec.arch, spec.image_size, weights="imagenet", flips=spec.variant == "optimised",
                            seed=spec.seed, bn_momentum=spec.bn_momentum)
    else:
        model = runs.model_for(spec)
    if spec.weights == "pretrained":
        from .pretrain import start_from

        if source is None:
            raise ValueError(f"{spec.name}: a pretrained start needs the source its backbone was pretrained on")
        start_from(model, source, spec)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(spec, spec.epochs * steps_per_epoch)),
                  loss=WeightedBCE(spec.loss_weights), metrics=[RSNALogLoss()])
    return model


def fit(spec: RunSpec, model, cache, rows: dict, batches: dict, out: Path, verbose: int = 0,
        callbacks: list | None = None, prior: tuple | None = None) -> float:
    """Fit with the run's callbacks; returns the training seconds, interruptions included (kept in a file).
    ``prior``: (correction, strata per cache row) where the run's output gets the level put back."""
    import keras

    val_truth = cache.labels[rows["val"]].astype(np.float32)
    sample = curve_sample(val_truth[:, ANY] > 0, seed=spec.seed)
    if prior is not None:
        table, row_strata = prior
        prior = (table, row_strata[rows["val"]], row_strata[rows["val"][sample]])
    history = out / "history.csv"
    best_so_far = pd.read_csv(history)["val_loss"].min() if history.exists() else np.inf
    monitor = run_monitor(out, batches["val"], [cache.ids[i] for i in rows["val"]], val_truth,
                          (cache.images[rows["val"][sample]].astype(np.float32), val_truth[sample, ANY]),
                          spec.loss_weights, len(batches["train"]), spec.batch_size, batches["train"].epoch_size,
                          best_so_far, prior)
    checkpoint = keras.callbacks.ModelCheckpoint(  # a resumed run keeps the best epoch it had
        str(out / "best.weights.h5"), monitor="val_loss", save_best_only=True, save_weights_only=True,
        initial_value_threshold=best_so_far if np.isfinite(best_so_far) else None)
    clock = out / "train_seconds.partial"  # training time survives an interruption
    spent = float(clock.read_text()) if clock.exists() else 0.0
    start = time.perf_counter()
    try:
        # the monitor first: the checkpoint, the log and early stopping read the val_loss it puts in the logs
        model.fit(batches["train"], epochs=spec.epochs, verbose=verbose,
                  callbacks=[monitor, checkpoint, keras.callbacks.CSVLogger(str(history), append=True),
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


def _keep_weights_only(spec: RunSpec, model, path: Path) -> None:
    """Rewrite the checkpoint without the optimizer's state: Adam keeps two numbers per weight, which tripled the
    file, and nothing reads them once the run is finished."""
    plain = runs.model_for(spec)
    plain.set_weights(model.get_weights())
    tmp = path.with_name("slim." + path.name)
    plain.save_weights(str(tmp))
    os.replace(tmp, path)


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
    from .baselines import levels
    from .metrics import per_label_auc, weighted_log_loss
    from .pretrain import backbones

    table, _ = store.index(src, workers=workers, progress=False)
    shares = {spec.test_fraction for spec in specs}
    if len(shares) > 1:
        raise ValueError(f"runs of one book share one split; got test fractions {sorted(shares)}")
    split = split_by_patient(table, seed, src.labels(), split_fractions(shares.pop() if shares else PAPER_FRACTIONS[2]))
    strata = levels(table)["stratum"]
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
