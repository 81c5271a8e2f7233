"""What a run records while it trains: its validation score and its learning curve.

- **Validation once per epoch.** The whole validation split is predicted once at each epoch's end; that
  prediction gives the epoch's ``val_loss`` (the run's own weighted cross-entropy, which picks the checkpoint and
  stops the run) and, when it is the best so far, is written as the run's ``predictions_val.csv`` with each
  slice's pooled embedding (``features_val.npz``, from the same pass). Keras' ``validation_data`` would predict
  the split once more after training, for the same numbers.
- **The best epoch kept.** When an epoch's ``val_loss`` is the best so far, the run's model is saved as
  ``best.weights.h5`` (the model, not what is fitted: a run trained on masks fits the same layers with a second
  output, and its checkpoint must load into the run's model).
- **Its own seconds.** The validation passes and the curve's checks are timed and kept in ``monitor.json``
  (summed over an interrupted run's parts), so a run's training time splits into learning and scoring.
- **A curve with points in it.** The training loss of every step (``steps.csv``) and the validation ``any`` AUC
  at ``CURVE_POINTS`` evenly spaced steps of each epoch on a fixed sample of the validation split
  (``curve.csv``), so a one-epoch run still has a learning curve. The sample is small (``CURVE_IMAGES``) and
  holds every positive it can, up to half, so its AUC moves with the model and costs seconds.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .labels import ANY
from .metrics import auc_or_nan, weighted_log_loss
from .models import with_features
from .runs import write_features, write_predictions

CURVE_POINTS = 3  # validation AUC checks within each epoch, besides its end
CURVE_IMAGES = 96  # images in the fixed validation sample scored at those checks (half positive: AUC SE ~0.05)


def curve_sample(positive: np.ndarray, n: int = CURVE_IMAGES, seed: int = 0) -> np.ndarray:
    """Sorted positions of a fixed sample of ``n`` validation images: up to half of them positive for ``any``
    (every positive when there are fewer), the rest negative, drawn from ``seed``."""
    positive = np.asarray(positive, bool)
    rng = np.random.default_rng([seed, 7])
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    return np.sort(np.concatenate(half_positive(pos, neg, n, rng)))


def half_positive(pos, neg, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` items drawn without replacement, half of them from ``pos`` where it has enough (all of it where it
    has fewer), the rest from ``neg``: (chosen positives, chosen negatives). The curve's sample and the series
    model's training studies are both drawn so."""
    n = min(int(n), len(pos) + len(neg))
    n_pos = min(len(pos), max(n // 2, n - len(neg)))
    return rng.choice(pos, n_pos, replace=False), rng.choice(neg, n - n_pos, replace=False)


def _append(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


MONITOR_SECONDS = "monitor.json"


def read_monitor_seconds(folder: str | os.PathLike) -> dict:
    """The seconds a run's monitor spent: ``{"validation": ..., "curve": ...}`` (zeros before it ran)."""
    path = Path(folder) / MONITOR_SECONDS
    saved = json.loads(path.read_text()) if path.exists() else {}
    return {"validation": float(saved.get("validation", 0.0)), "curve": float(saved.get("curve", 0.0))}


def _add_seconds(folder: Path, kind: str, seconds: float) -> None:
    spent = read_monitor_seconds(folder)
    spent[kind] += seconds
    tmp = folder / (MONITOR_SECONDS + ".part")
    tmp.write_text(json.dumps(spent))
    os.replace(tmp, folder / MONITOR_SECONDS)


def _keep_best(out: Path, model, ids, truth: np.ndarray, probs: np.ndarray, features: np.ndarray) -> None:
    """The best epoch so far: its validation predictions, embeddings and weights."""
    write_predictions(out, "val", ids, truth, probs)
    write_features(out, "val", ids, features)
    tmp = out / "best.part.weights.h5"  # a reader (or a resumed run) never meets half a file
    model.save_weights(str(tmp))
    os.replace(tmp, out / "best.weights.h5")


def run_monitor(out: Path, model, *, batches, ids, truth: np.ndarray, sample: tuple, loss_weights, steps_per_epoch: int,
                batch_size: int, epoch_images: int, best_so_far: float = np.inf, prior: tuple | None = None):
    """The Keras callback that scores validation for a run writing to ``out`` (see the module doc); ``model`` is
    the run's model: the network that is scored and saved, whatever is fitted.

    ``batches`` are the validation split's batches, in the order of ``ids`` and ``truth`` (its labels);
    ``sample`` is the curve's fixed sample as (images, ``any`` labels). ``best_so_far`` is the best ``val_loss``
    of the epochs finished before an interruption. A step re-run after an interruption is appended again to
    ``steps.csv`` and ``curve.csv``: readers keep its last row. ``prior``: (correction, validation strata,
    sample strata) of a run on level-matched negatives (``ichlib.levelprior``): its output is scored, kept and
    saved with the level put back.
    """
    import keras

    from .levelprior import apply

    table, val_strata, sample_strata = prior if prior is not None else (None, None, None)
    sample_x, sample_any = sample
    checks = set(np.linspace(0, steps_per_epoch, CURVE_POINTS + 2).round().astype(int)[1:-1] - 1)

    class Monitor(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.epoch, self.seen, self.mean = best_so_far, 0, 0, 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.seen, self.mean = epoch, 0, 0.0

        def on_train_batch_end(self, batch, logs=None):
            # Keras reports the epoch's running mean, weighted by batch size; the step's own loss follows from it.
            size = min(batch_size, epoch_images - batch * batch_size)
            mean = float(logs["loss"])
            step_loss = (mean * (self.seen + size) - self.mean * self.seen) / size
            self.seen, self.mean = self.seen + size, mean
            step = self.epoch * steps_per_epoch + batch + 1
            _append(out / "steps.csv", {"step": step, "epoch": self.epoch + 1, "loss": round(step_loss, 6)})
            if batch in checks:
                start = time.perf_counter()
                probs = apply(model.predict(sample_x, batch_size=64, verbose=0), sample_strata, table)
                self._curve(step, auc_or_nan(sample_any, probs[:, ANY]), "validation sample")
                _add_seconds(out, "curve", time.perf_counter() - start)

        def _curve(self, step, auc, where):
            _append(out / "curve.csv", {"step": step, "epoch": self.epoch + 1, "val AUC any": round(auc, 5),
                                        "scored on": where})

        def on_epoch_end(self, epoch, logs=None):
            start = time.perf_counter()
            probs, features = with_features(model).predict(batches, verbose=0)
            probs = apply(probs, val_strata, table)
            loss = weighted_log_loss(truth, probs, loss_weights)  # the training loss, in NumPy
            logs["val_loss"] = loss
            logs["val_auc_any"] = auc_or_nan(truth[:, ANY], probs[:, ANY])
            self._curve((epoch + 1) * steps_per_epoch, logs["val_auc_any"], "validation split")
            if loss < self.best:
                self.best = loss
                _keep_best(out, model, ids, truth, probs, features)
            _add_seconds(out, "validation", time.perf_counter() - start)

    return Monitor()


def read_curve(folder: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's (steps, curve) tables, the last row kept for a step recorded twice (an interrupted epoch)."""
    folder = Path(folder)
    steps, curve = (pd.read_csv(folder / name).drop_duplicates("step", keep="last").sort_values("step")
                    for name in ("steps.csv", "curve.csv"))
    return steps.reset_index(drop=True), curve.reset_index(drop=True)
