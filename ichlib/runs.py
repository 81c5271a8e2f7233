"""A training run's folder: the run's settings and name, what the run writes there and how it is read back.

    <data>/runs/<source>/<run name>-<hash of its settings and backend>/
        config.json        the run's summary: its settings, backend, epochs, seconds, images per split
        timings.json       training seconds, test seconds per image
        best.weights.h5    the weights of the best epoch by validation loss
        history.csv        per epoch (Keras' CSVLogger); steps.csv, curve.csv: per step (ichlib.monitor)
        predictions_val.csv, predictions_test.csv   ID, true_<label>, prob_<label>
        features_val.npz, features_test.npz         each slice's pooled embedding (ichlib.sequence reads them)
        done.json          written last: the run is finished

Every other module reads and writes these through this one, so a run's layout has one owner.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import MODES, windows_for
from .labels import LABELS

PREDICTIONS = "predictions_{split}.csv"
FEATURES = "features_{split}.npz"


ARCHS = ("efficientnetb2", "resnet50", "densenet121")  # ichlib.models.ARCHITECTURES, named without Keras
VARIANTS = ("baseline", "optimised")
LR_SCHEDULES = ("constant", "cosine")
NEGATIVES = ("random", "level_matched")
# A run's start: from scratch, Keras' ImageNet backbone (downloaded; the paper's start), or the project's own
# backbone pretrained on this source's training split (ichlib.pretrain), shared by an architecture's runs: on the
# six labels ("pretrained"), or on the labels and the phantom's bleed masks ("masks").
WEIGHTS = ("none", "imagenet", "pretrained", "masks")
PRETRAINED = ("pretrained", "masks")  # the starts that ichlib.pretrain makes
SCORES_FROM = ("head", "mask")  # ichlib.models.SCORES_FROM, named without Keras
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
    test_fraction: float = 0.10  # patients in the test split (validation keeps the paper's 9 %): the split is data
    negatives: str = "random"  # or "level_matched": each epoch's negatives follow the positives' levels
    weights: str = "none"  # the start: one of WEIGHTS
    pretrain_images: int = 0  # images the pretrained backbone saw (ichlib.pretrain); 0 for the other starts
    mask_weight: float = 0.0  # weight of the bleed masks' loss beside the labels' (0: the paper's runs, labels only)
    score_from: str = "head"  # or "mask": `any` read from the mask head's largest cell (ichlib.models.Score)
    score_test: bool = True  # False: a run scored on validation only (a lever of ichlib.levers), no test pass

    @property
    def mask_head(self) -> bool:
        """Whether the run's network carries the mask head: trained on masks, scored from it, or started from a
        backbone that learnt it."""
        return self.mask_weight > 0 or self.score_from == "mask" or self.weights == "masks"

    @property
    def flips_in_data(self) -> bool:
        """Whether the optimised variant's flips are drawn on the batches (image and mask target together)
        instead of inside the network: a mask target must be flipped with its image, which a flip layer cannot
        do."""
        return self.variant == "optimised" and self.mask_weight > 0

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.preprocessing}-{self.variant}"

    def recipe(self) -> str:
        """The run's training recipe in words, for a page: start, negatives, input, length, batch, rate."""
        start = {"none": "random weights", "imagenet": "ImageNet weights",
                 "pretrained": f"a backbone pretrained on {self.pretrain_images:,} training images",
                 "masks": f"a backbone pretrained on {self.pretrain_images:,} training images and their bleed "
                          "masks"}[self.weights]
        negatives = "negatives at the positives' levels" if self.negatives == "level_matched" else "random negatives"
        images = f"{self.epoch_images:,} images" if self.epoch_images else "the whole training split"
        return (f"from {start}, {negatives}, {self.image_size} px{' cut to the head' if self.crop else ''}, "
                f"{self.epochs} epoch(s) of {images}, batch {self.batch_size}, Adam {self.learning_rate:g} "
                f"({self.lr_schedule})"
                + (f", the bleed masks' loss weighted {self.mask_weight:g}" if self.mask_weight else "")
                + (", `any` read from the predicted mask" if self.score_from == "mask" else ""))

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
        if not 0 < self.test_fraction < 0.9:
            raise ValueError(f"test_fraction must be in (0, 0.9), got {self.test_fraction}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"unknown negatives {self.negatives!r}; expected one of {NEGATIVES}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"unknown weights {self.weights!r}; expected one of {WEIGHTS}")
        if (self.weights in PRETRAINED) != (self.pretrain_images > 0):
            raise ValueError(f"weights={self.weights!r}: a pretrained start ({' or '.join(PRETRAINED)}) needs "
                             "pretrain_images > 0 (the backbone's training images), and pretrain_images is only for "
                             f"it; got pretrain_images={self.pretrain_images}")
        if not (isinstance(self.mask_weight, (int, float)) and 0 <= self.mask_weight < float("inf")):
            raise ValueError(f"mask_weight must be a finite number >= 0 (0: labels only), got {self.mask_weight!r}")
        if self.score_from not in SCORES_FROM:
            raise ValueError(f"unknown score_from {self.score_from!r}; expected one of {SCORES_FROM}")
        if self.score_from == "mask" and not (self.mask_weight > 0 or self.weights == "masks"):
            raise ValueError("score_from='mask' reads a mask head that learnt from the masks: it needs mask_weight > 0 "
                             "or weights='masks'")


# The settings a chapter or a profile sets: every field but the three a plan varies and score_test (a lever's run,
# ichlib.levers, is scored on validation only; the book's runs always score test).
RUN_SETTINGS = tuple(f for f in RunSpec.__dataclass_fields__ if f not in ("arch", "preprocessing", "variant",
                                                                           "score_test"))


def settings_in(namespace: dict) -> dict:
    """The run settings (every ``RunSpec`` field but the three the plan varies) found in ``namespace``: a chapter
    passes its parameters (``globals()``), so the list of settings is written once, here."""
    return {name: namespace[name] for name in RUN_SETTINGS if name in namespace}


def run_dir(src, spec: RunSpec) -> Path:
    """The folder of one run on a source (``ichlib.store.Source``): named after the run, keyed by every setting
    and the Keras backend."""
    from .backend import configure
    from .store import data_root

    # The backend is part of the key: the same seed gives the same numbers on one backend, not across them.
    settings = {**asdict(spec), "backend": configure()}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return data_root() / "runs" / src.key / f"{spec.name}-{digest}"


# ------------------------------------------------------------------------------------------- predictions
def prediction_frame(ids, truth: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """Predictions as a run saves them: ID, ``true_<label>``, ``prob_<label>``."""
    frame = pd.DataFrame({"ID": list(ids)})
    for j, label in enumerate(LABELS):
        frame[f"true_{label}"] = np.asarray(truth)[:, j]
    for j, label in enumerate(LABELS):
        frame[f"prob_{label}"] = np.asarray(probs)[:, j]
    return frame


def write_predictions(folder: str | os.PathLike, split: str, ids, truth: np.ndarray, probs: np.ndarray) -> Path:
    """Write one split's predictions (atomically: a reader never sees half a file)."""
    path = Path(folder) / PREDICTIONS.format(split=split)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    prediction_frame(ids, truth, probs).to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def load_predictions(folder: str | os.PathLike, split: str = "test") -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(image IDs, truth (n, 6), probabilities (n, 6)) of a run's split."""
    frame = pd.read_csv(Path(folder) / PREDICTIONS.format(split=split), index_col="ID")
    return (frame.index, frame[[f"true_{l}" for l in LABELS]].to_numpy(),
            frame[[f"prob_{l}" for l in LABELS]].to_numpy())


def write_features(folder: str | os.PathLike, split: str, ids, features: np.ndarray) -> Path:
    """One split's pooled embeddings (float16: they feed a series model, not a decision), atomically."""
    path = Path(folder) / FEATURES.format(split=split)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, ids=np.asarray(list(ids), dtype=str), features=np.asarray(features, np.float16))
    os.replace(tmp, path)
    return path


def load_features(folder: str | os.PathLike, split: str) -> tuple[pd.Index, np.ndarray]:
    """(image IDs, embeddings (n, d) as float32) of a run's split; FileNotFoundError where none were saved."""
    with np.load(Path(folder) / FEATURES.format(split=split)) as saved:
        return pd.Index(saved["ids"], name="ID"), saved["features"].astype(np.float32)


# ------------------------------------------------------------------------------------- summary, models
def write_summary(folder: str | os.PathLike, summary: dict) -> None:
    """``config.json`` and ``timings.json``, then ``done.json`` last (atomically): the run is finished."""
    folder = Path(folder)
    (folder / "config.json").write_text(json.dumps(summary, indent=1))
    (folder / "timings.json").write_text(json.dumps({k: summary[k] for k in ("train_seconds",
                                                                              "test_seconds_per_image")}))
    tmp = folder / "done.json.part"
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, folder / "done.json")


def is_finished(folder: str | os.PathLike) -> bool:
    return (Path(folder) / "done.json").exists()


def read_summary(folder: str | os.PathLike) -> dict:
    """A finished run's summary (``done.json``); FileNotFoundError names the folder where the run is not done."""
    folder = Path(folder)
    if not is_finished(folder):
        raise FileNotFoundError(f"{folder}: not a finished run (no done.json)")
    return json.loads((folder / "done.json").read_text())


def read_spec(folder: str | os.PathLike) -> RunSpec:
    """The settings a finished run was trained with."""
    return RunSpec(**read_summary(folder)["spec"])


def model_for(spec: RunSpec):
    """A new, untrained model of a run: its backbone, size, flips (optimised variant; on the batches instead
    where it trains on masks, ``RunSpec.flips_in_data``), mask head, seed and BN momentum."""
    from .models import build_model

    return build_model(spec.arch, spec.image_size, flips=spec.variant == "optimised" and not spec.flips_in_data,
                       seed=spec.seed, bn_momentum=spec.bn_momentum, mask_head=spec.mask_head,
                       score_from=spec.score_from)


def load_model(folder: str | os.PathLike, spec: RunSpec | None = None):
    """The trained model of a finished run: rebuilt from its settings (``spec``, read from the folder when not
    given), with its best weights."""
    model = model_for(spec or read_spec(folder))
    model.load_weights(str(Path(folder) / "best.weights.h5"))
    return model


@dataclass(eq=False)
class Run:
    """A finished run, opened once: its folder and settings, and, loaded on first use and then kept, its model,
    its level correction and its Grad-CAM. Where a folder would be read again at every step (the app reads a
    series slice by slice), pass this instead of the folder.

        run = Run.open(folder)
        probs = run.model.predict(x)
        heat = run.gradcam(x, "subdural")
    """

    folder: Path
    spec: RunSpec

    @classmethod
    def open(cls, folder: str | os.PathLike) -> Run:
        return cls(Path(folder), read_spec(folder))

    @property
    def name(self) -> str:
        return self.folder.name

    @functools.cached_property
    def model(self):
        return load_model(self.folder, self.spec)

    @functools.cached_property
    def level_prior(self):
        """The run's level correction (``ichlib.levelprior``), or None for a run on random negatives."""
        from .levelprior import read

        return read(self.folder)

    @functools.cached_property
    def gradcam(self):
        """The run's :class:`ichlib.gradcam.GradCAM` (its compiled functions kept with the run)."""
        from .gradcam import GradCAM

        return GradCAM(self.model)

    def windows(self, windows: tuple) -> tuple:
        """The windows this run's input uses out of ``windows`` (:func:`windows_for`)."""
        return windows_for(self.spec.preprocessing, windows)

    def predictions(self, split: str = "test") -> tuple[pd.Index, np.ndarray, np.ndarray]:
        return load_predictions(self.folder, split)


def finished_runs(root: str | os.PathLike) -> pd.DataFrame:
    """Finished runs under a runs folder (``<data>/runs``): run, source, arch, preprocessing, variant, image size,
    folder, finished (time); newest first."""
    columns = ["run", "source", "arch", "preprocessing", "variant", "image size", "folder", "finished"]
    rows = []
    for done in Path(root).glob("*/*/done.json"):
        spec = RunSpec(**json.loads(done.read_text())["spec"])
        rows.append({"run": spec.name, "source": done.parent.parent.name, "arch": spec.arch,
                     "preprocessing": spec.preprocessing, "variant": spec.variant, "image size": spec.image_size,
                     "folder": str(done.parent), "finished": done.stat().st_mtime})
    return pd.DataFrame(rows, columns=columns).sort_values("finished", ascending=False).reset_index(drop=True)
