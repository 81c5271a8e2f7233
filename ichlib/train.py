"""Training the paper's models: the patient-level split, the input batches, the fit with its callbacks, artifacts.

Keras is imported inside the functions that train, so the split works without a deep-learning backend.

The paper split its 200,000 images 81 / 9 / 10 by image, so slices of one patient (near copies of each other)
could sit in both training and test. Here the split is by patient, as the top RSNA solutions did.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import MODES
from .preprocess import PAPER_WINDOWS
from .rsna import LABELS, SUBTYPES

SPLITS = ("train", "val", "test")
INFERENCE_BATCH = 64  # images per predict call: no gradients are kept, so a larger batch costs little memory
PAPER_FRACTIONS = (0.81, 0.09, 0.10)


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


# --------------------------------------------------------------------------------------------- fitting
VARIANTS = ("baseline", "optimised")
LR_SCHEDULES = ("constant", "cosine")
PREPROCESSINGS = MODES  # the cache's two inputs


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides one trained model (its artifact folder is named after it)."""

    arch: str
    preprocessing: str = "three_window"
    variant: str = "baseline"
    image_size: int = 128
    epochs: int = 10
    batch_size: int = 4
    learning_rate: float = 5e-4
    patience: int = 3
    seed: int = 0
    any_weight: float = 5.0  # the optimised variant's weight on `any`
    mixed_precision: bool = False
    bn_momentum: float = 0.99  # Keras' default; short from-scratch runs need faster-moving statistics (0.9)
    positive_fraction: float = 0.0  # share of each training epoch drawn from `any`-positive images; 0: as they come
    lr_schedule: str = "constant"  # or "cosine": a 5% linear warm-up, then cosine decay to 0 at the last epoch
    epoch_images: int = 0  # images per training epoch (drawn afresh each epoch); 0: the whole training split
    crop: bool = False  # each slice cut to its head's box before resizing (ichlib.preprocess.head_box)

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.preprocessing}-{self.variant}"

    @property
    def loss_weights(self) -> tuple[float, ...]:
        return (self.any_weight if self.variant == "optimised" else 1.0,) + (1.0,) * (len(LABELS) - 1)

    def check(self) -> None:
        from .models import ARCHITECTURES

        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {', '.join(ARCHITECTURES)}")
        if self.preprocessing not in PREPROCESSINGS:
            raise ValueError(f"unknown preprocessing {self.preprocessing!r}; expected one of {PREPROCESSINGS}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")
        if self.epoch_images < 0:
            raise ValueError(f"epoch_images must be 0 (the whole split) or more, got {self.epoch_images}")
        if not 0 <= self.positive_fraction < 1:
            raise ValueError(f"positive_fraction must be in [0, 1), got {self.positive_fraction}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; expected one of {LR_SCHEDULES}")
        if not 0 < self.bn_momentum < 1:
            raise ValueError(f"bn_momentum must be in (0, 1), got {self.bn_momentum}")


def epoch_order(rows: np.ndarray, positive: np.ndarray, positive_fraction: float,
                rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """One training epoch's rows, shuffled: ``size`` of them (default: as many as ``rows``).

    With ``positive_fraction`` > 0, that share is drawn from the positive rows (cycling through them,
    reshuffled, as often as needed) and the rest from the negative rows, without repeats while they last, so a
    rare label is seen often enough in a short run.
    """
    rows = np.asarray(rows)
    size = len(rows) if not size else int(size)

    def draw(pool: np.ndarray, n: int) -> np.ndarray:
        cycles = -(-n // len(pool))
        return np.concatenate([rng.permutation(pool) for _ in range(cycles)])[:n]

    pos, neg = rows[positive], rows[~positive]
    if positive_fraction <= 0 or len(pos) == 0 or len(neg) == 0:
        return draw(rows, size)
    n_pos = min(max(1, int(round(positive_fraction * size))), size - 1)
    return rng.permutation(np.concatenate([draw(pos, n_pos), draw(neg, size - n_pos)]))


def _dataset_class():
    import keras

    class CacheBatches(keras.utils.PyDataset):
        """Batches of cached images and labels; reshuffled each epoch from the seed; read ahead by a thread."""

        def __init__(self, images, labels, rows, batch_size, shuffle, seed, positive_fraction=0.0, epoch_size=0,
                     **kwargs):
            super().__init__(**kwargs)
            self.images, self.labels, self.rows = images, labels, np.asarray(rows)
            self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
            self.positive_fraction = positive_fraction
            self.epoch_size = (epoch_size or len(self.rows)) if shuffle else len(self.rows)
            self._order = self._make_order()

        def _make_order(self):
            if not self.shuffle:
                return self.rows
            return epoch_order(self.rows, self.labels[self.rows, 0] > 0, self.positive_fraction,
                               np.random.default_rng([self.seed, self.epoch]), self.epoch_size)

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
                callbacks: list | None = None) -> dict:
    """Train one model on a cache and save everything later chapters need in ``out_dir``.

    Saved: ``best.weights.h5`` (the best epoch by validation loss), ``history.csv``, ``config.json``,
    ``timings.json`` (training seconds, test seconds per image), ``predictions_val.csv`` and
    ``predictions_test.csv`` (ID, true_<label>, prob_<label>), and last ``done.json``. A folder with
    ``done.json`` is returned as it is; an interrupted run resumes from its last finished epoch
    (``keras.callbacks.BackupAndRestore``).

    Args:
        spec: the run.
        cache: an ``ichlib.cache.Cache`` with labels.
        split: ``split_by_patient`` output (train / val / test per image ID).
        out_dir: the run's artifact folder.
        verbose: Keras fit verbosity.
        callbacks: extra Keras callbacks (tests use one to interrupt a run).
    """
    import keras

    from .losses import RSNALogLoss, WeightedBCE

    spec.check()
    out = Path(out_dir)
    if (out / "done.json").exists():
        return json.loads((out / "done.json").read_text())
    if cache.labels is None:
        raise ValueError("the cache has no labels; build it with labels to train on it")
    out.mkdir(parents=True, exist_ok=True)
    set_determinism(spec.seed)
    if spec.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")

    where = split.reindex(cache.ids)
    rows = {name: np.flatnonzero((where == name).to_numpy()) for name in SPLITS}
    for name, r in rows.items():
        if len(r) == 0:
            raise ValueError(f"the {name} split is empty for this cache")
    Batches = _dataset_class()
    batches = {name: Batches(cache.images, cache.labels, r, spec.batch_size if name == "train" else INFERENCE_BATCH,
                             name == "train", spec.seed,
                             positive_fraction=spec.positive_fraction if name == "train" else 0.0,
                             epoch_size=spec.epoch_images if name == "train" else 0,
                             workers=2, use_multiprocessing=False, max_queue_size=8) for name, r in rows.items()}

    with distribution_scope():
        model = model_for(spec)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate(spec, spec.epochs * len(batches["train"]))),
                      loss=WeightedBCE(spec.loss_weights),
                      metrics=[RSNALogLoss(),
                               keras.metrics.AUC(multi_label=True, num_labels=len(LABELS), name="auc")])
        best = out / "best.weights.h5"
        clock = out / "train_seconds.partial"  # training time survives an interruption
        spent = float(clock.read_text()) if clock.exists() else 0.0
        start = time.perf_counter()
        try:
            model.fit(batches["train"], validation_data=batches["val"], epochs=spec.epochs, verbose=verbose,
                      callbacks=[keras.callbacks.BackupAndRestore(str(out / "backup")),
                                 keras.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True,
                                                                 save_weights_only=True),
                                 keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
                                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience),
                                 *(callbacks or [])])
        finally:
            clock.write_text(str(spent + time.perf_counter() - start))
        train_seconds = float(clock.read_text())
        model.load_weights(str(best))

        predictions = {}
        for name in ("val", "test"):
            start = time.perf_counter()
            probs = model.predict(batches[name], verbose=0)
            predictions[name] = (probs, (time.perf_counter() - start) / len(rows[name]))
            frame = pd.DataFrame({"ID": [cache.ids[i] for i in rows[name]]})
            for j, label in enumerate(LABELS):
                frame[f"true_{label}"] = cache.labels[rows[name], j]
            for j, label in enumerate(LABELS):
                frame[f"prob_{label}"] = probs[:, j]
            frame.to_csv(out / f"predictions_{name}.csv", index=False)
        _keep_weights_only(spec, model, best)
    history = pd.read_csv(out / "history.csv")
    summary = dict(
        name=spec.name, spec=asdict(spec), parameters=int(model.count_params()), epochs_run=int(len(history)),
        best_epoch=int(history["val_loss"].idxmin()), train_seconds=round(train_seconds, 1),
        test_seconds_per_image=predictions["test"][1], backend=keras.backend.backend(), keras=keras.__version__,
        cache=cache.meta, images={name: int(len(r)) for name, r in rows.items()})
    (out / "config.json").write_text(json.dumps(summary, indent=1))
    (out / "timings.json").write_text(json.dumps({"train_seconds": summary["train_seconds"],
                                                   "test_seconds_per_image": summary["test_seconds_per_image"]}))
    if spec.mixed_precision:
        keras.mixed_precision.set_global_policy("float32")
    tmp = out / "done.json.part"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, out / "done.json")
    return summary


def model_for(spec: RunSpec):
    """A new, untrained model of a run: its backbone, size, flips (optimised variant), seed and BN momentum."""
    from .models import build_model

    return build_model(spec.arch, spec.image_size, flips=spec.variant == "optimised", seed=spec.seed,
                       bn_momentum=spec.bn_momentum)


def _keep_weights_only(spec: RunSpec, model, path: Path) -> None:
    """Rewrite the checkpoint without the optimizer's state: Adam keeps two numbers per weight, which tripled the
    file, and nothing reads them once the run is finished."""
    plain = model_for(spec)
    plain.set_weights(model.get_weights())
    tmp = path.with_name("slim." + path.name)
    plain.save_weights(str(tmp))
    os.replace(tmp, path)


def load_predictions(run_dir: str | os.PathLike, split: str = "test") -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(image IDs, truth (n, 6), probabilities (n, 6)) of a finished run."""
    frame = pd.read_csv(Path(run_dir) / f"predictions_{split}.csv", index_col="ID")
    return (frame.index, frame[[f"true_{l}" for l in LABELS]].to_numpy(),
            frame[[f"prob_{l}" for l in LABELS]].to_numpy())


def load_model(run_dir: str | os.PathLike):
    """The trained model of a finished run: rebuilt from its ``config.json``, with its best weights."""
    folder = Path(run_dir)
    if not (folder / "done.json").exists():
        raise FileNotFoundError(f"{folder}: not a finished run (no done.json)")
    spec = RunSpec(**json.loads((folder / "config.json").read_text())["spec"])
    model = model_for(spec)
    model.load_weights(str(folder / "best.weights.h5"))
    return model


def plan_runs(archs, preprocessings, variants, **settings) -> list[RunSpec]:
    """Every combination, in the paper's order (backbone, then input, then variant); each checked."""
    specs = [RunSpec(a, p, v, **settings) for p in preprocessings for a in archs for v in variants]
    for spec in specs:
        spec.check()
    return specs


def split_table(split: pd.Series, index: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Patients, images and positive images per label in each split."""
    known = labels.reindex(split.index)
    rows = {}
    for name in SPLITS:
        members = split.index[split == name]
        rows[name] = {"patients": index.loc[members, "patient"].nunique(), "images": len(members),
                      **{label: int(known.loc[members, label].sum()) for label in LABELS}}
    return pd.DataFrame(rows).T


def best_run(runs: pd.DataFrame, column: str = "val AUC any") -> str | None:
    """The run with the highest value in ``column``, or None where it is undefined for every run."""
    values = runs[column].dropna()
    return None if values.empty else str(values.idxmax())


def timing_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Training seconds and test seconds per image of each run, beside the paper's Tables 4 and 5 (quoted)."""
    from .paper import TABLE4_WINDOWED, TABLE5_ASIP

    quoted = {"three_window": TABLE4_WINDOWED, "adjacent": TABLE5_ASIP}
    table = runs[["arch", "preprocessing", "variant", "train s", "test s/image"]].copy()
    pairs = [quoted[r.preprocessing][f"{r.arch}-{r.variant}"] for r in table.itertuples()]
    table["paper train s"] = [train_s for train_s, _ in pairs]
    table["paper test s/image"] = [test_s for _, test_s in pairs]
    return table


def train_runs(src, specs: list, seed: int, windows: tuple = PAPER_WINDOWS, workers: int | None = None,
               log=print) -> pd.DataFrame:
    """Train every run (finished ones are kept, interrupted ones resume) and return one summary row per run.

    The split is by patient from ``seed``; the inputs come from the cache of each run's preprocessing and size.
    ``log`` receives one line per run and result (None: silent).
    """
    log = log or (lambda line: None)
    from . import store
    from .metrics import per_label_auc, weighted_log_loss

    table, _ = store.index(src, workers=workers, progress=False)
    split = split_by_patient(table, seed, src.labels())
    rows = []
    for i, spec in enumerate(specs, 1):
        data = store.run_cache(src, spec, windows, workers=workers)
        folder = store.run_dir(src, spec)
        done = (folder / "done.json").exists()
        log(f"[{i}/{len(specs)}] {spec.name}: {'finished earlier' if done else 'training'}")
        summary = train_model(spec, data, split, folder)
        _, truth, probs = load_predictions(folder, "test")
        auc = per_label_auc(truth, probs)
        val_auc = per_label_auc(*load_predictions(folder, "val")[1:])
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
