"""The reader app's service: per-slice and per-study probabilities of a received series (``ichlib.app.upload``),
Grad-CAM, the models' scores.

The app's logic lives here and in ``upload`` (tested without a browser); ``ichlib.app.pages`` only draws it.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import ensemble, levelprior, runs
from ..batches import INFERENCE_BATCH
from ..cache import BRAIN_CHANNEL, series_images
from ..labels import LABELS
from ..metrics import choose_thresholds, flags, per_label_auc
from ..preprocess import PAPER_WINDOWS
from .upload import InputError, Series, in_use


@dataclass
class Report:
    """The result of one analysis."""

    ids: list[str]
    z: np.ndarray
    probs: np.ndarray            # (slices, 6)
    thresholds: np.ndarray       # (6,), chosen on the models' validation slices: a slice's decision
    models: list[str]
    seconds: float
    details: dict
    study_thresholds: np.ndarray | None = None  # (6,), chosen on their validation studies: the study's decision

    @property
    def study_probs(self) -> pd.Series:
        """A study's probability of each label: its highest slice's."""
        return pd.Series(self.probs.max(axis=0), index=list(LABELS))

    @property
    def flagged(self) -> pd.DataFrame:
        """Slices flagged per label (bool, slices x 6): at or above the threshold, a subtype only where `any` is
        flagged too (``ichlib.metrics.flags``)."""
        return pd.DataFrame(flags(self.probs, self.thresholds), index=self.ids, columns=list(LABELS))

    @property
    def study_cutoffs(self) -> np.ndarray:
        """The thresholds a study is decided with: chosen on validation studies where they could be, else the
        slice thresholds (a model whose data's index is not at hand)."""
        return self.thresholds if self.study_thresholds is None else self.study_thresholds

    @property
    def study_slices(self) -> pd.Series:
        """Per label, the slices at or above the study's threshold (a subtype only where `any` is too): the
        slices behind the study's decision."""
        return pd.Series(flags(self.probs, self.study_cutoffs).sum(axis=0), index=list(LABELS))

    @property
    def study_flagged(self) -> pd.Series:
        """The study's decision per label: some slice at or above the study's threshold (so the Study table's
        "positive" and its slice count never disagree)."""
        return self.study_slices > 0

    def table(self) -> pd.DataFrame:
        """Per slice: z and the six probabilities."""
        frame = pd.DataFrame(self.probs, index=pd.Index(self.ids, name="ID"), columns=list(LABELS))
        frame.insert(0, "z (mm)", self.z)
        return frame


# ---------------------------------------------------------------------------------------------- models
def available_runs(runs_root: str | Path) -> pd.DataFrame:
    """Finished runs under a folder (``ichlib.runs.finished_runs``), with ``phantom``: trained on the phantom."""
    from ..store import source_is_phantom

    table = runs.finished_runs(runs_root)
    table["phantom"] = [runs.read_summary(f).get("source", {}).get("phantom", source_is_phantom(key))
                        for f, key in zip(table["folder"], table["source"])]
    return table


def trained_on(folders) -> str:
    """What the given runs were trained on, in words for a page: "synthetic (phantom) data", "real data" or
    both (from each run's own record of its data)."""
    from ..store import source_is_phantom

    kinds = set()
    for folder in folders:
        source = runs.read_summary(folder).get("source", {})
        kinds.add(source.get("phantom", source_is_phantom(Path(folder).parent.name)))
    words = {True: "synthetic (phantom) data", False: "real data"}
    return " and ".join(words[k] for k in sorted(kinds, reverse=True)) or "unknown data"


def model_scores(table: pd.DataFrame) -> pd.DataFrame:
    """What the About page shows of each model: its data and its test ``any`` AUC on its own test patients."""
    rows = []
    for run in table.itertuples():
        _, truth, probs = runs.load_predictions(run.folder, "test")
        rows.append({"model": run.run, "trained on": "synthetic phantom" if run.phantom else "real data",
                     "test AUC any": per_label_auc(truth, probs)["any"], "test images": len(truth)})
    return pd.DataFrame(rows, columns=["model", "trained on", "test AUC any", "test images"])


def opened(folder: str | Path) -> runs.Run:
    """A finished run, opened once per process: its settings read once, its model, level correction and Grad-CAM
    loaded on first use and kept with it (the most recent few runs)."""
    return _opened(str(Path(folder).resolve()))


@functools.lru_cache(maxsize=16)
def _opened(folder: str) -> runs.Run:
    return runs.Run.open(folder)


def inputs(series: Series, folder: str | Path, windows: tuple = PAPER_WINDOWS) -> np.ndarray:
    """The series preprocessed for one run, exactly as its training cache was: (slices, size, size, 3) uint8.

    Kept on the series per run and windows: the viewer asks for one slice's heatmap at every move.
    """
    key = (str(folder), tuple(windows))
    in_use(series)
    if key not in series.prepared:
        series.prepared[key] = _prepare(series, folder, windows)
    return series.prepared[key]


def _prepare(series: Series, folder: str | Path, windows: tuple) -> np.ndarray:
    run = opened(folder)
    done, failures = series_images(list(series.slices["path"]), run.spec.preprocessing, run.spec.image_size,
                                   run.windows(windows), crop=run.spec.crop)
    if failures:
        path, reason = failures[0]
        name = series.slices.set_index("path").at[path, "name"]
        raise InputError(f"{name}: its pixels cannot be read ({reason.replace(path, name)})")
    series.boxes[str(folder)] = [box for _, _, box in done]  # where each input lies in its slice
    return np.stack([image for _, image, _ in done])


def series_model_for(folders: list) -> Path | None:
    """The folder of a series model (``ichlib.sequence``, trained by the book's series chapter) that reads
    exactly these runs' features, if there is one."""
    from ..sequence import find
    from ..store import data_root

    return find(data_root() / "series", [str(f) for f in folders]) if folders else None


def analyse_series(series: Series, folders: list, windows: tuple = PAPER_WINDOWS) -> Report:
    """As :func:`analyse`, but read by the series model of these runs: each slice's embedding from every run,
    side by side, through the bidirectional GRU; thresholds from the series model's validation predictions."""
    from .. import sequence
    from ..models import with_features

    found = series_model_for(folders)
    if found is None:
        raise InputError("no series model was trained for these models (the book's series chapter trains them)")
    start = time.perf_counter()
    features = [with_features(opened(f).model).predict(inputs(series, f, windows).astype(np.float32),
                                                batch_size=INFERENCE_BATCH, verbose=0)[1] for f in folders]
    probs = sequence.predict(_series_model(found), [np.concatenate(features, axis=1)])[0]
    ids, truth, val_probs = runs.load_predictions(found, "val")
    studies = study_of(folders[0])
    per_study = ensemble.study_thresholds(ids, truth, val_probs, studies) if studies is not None else None
    return Report(list(series.slices["ID"]), series.slices["z"].to_numpy(), probs,
                  choose_thresholds(truth, val_probs), [Path(f).name for f in folders] + ["series model"],
                  time.perf_counter() - start, series.details, per_study)


@functools.lru_cache(maxsize=4)
def _series_model(folder: Path):
    from ..sequence import load

    return load(folder)


def analyse(series: Series, folders: list, windows: tuple = PAPER_WINDOWS) -> Report:
    """Per-slice probabilities of the six labels from one run or the average of several.

    Thresholds per label come from the same models' (averaged) validation predictions, maximising F1 there
    (models trained on different data: the mean of each one's thresholds).
    """
    if not folders:
        raise ValueError("choose at least one trained model")
    start = time.perf_counter()
    probs, val = [], []
    for folder in folders:
        x = inputs(series, folder, windows).astype(np.float32)
        run = opened(folder)
        raw = run.model.predict(x, batch_size=INFERENCE_BATCH, verbose=0)
        # a run on level-matched negatives gets the level put back, as its saved predictions had it
        probs.append(levelprior.apply(raw, levelprior.series_strata(len(x)), run.level_prior))
        val.append(runs.load_predictions(folder, "val"))
    studies = [study_of(f) for f in folders]
    if all(v[0].equals(val[0][0]) for v in val):  # one data set: threshold the ensemble's own validation output
        mean = np.mean([v[2] for v in val], axis=0)
        thresholds = choose_thresholds(val[0][1], mean)
        per_study = (ensemble.study_thresholds(val[0][0], val[0][1], mean, studies[0])
                     if studies[0] is not None else None)
    else:  # models of different data sets: the mean of their own thresholds
        thresholds = np.mean([choose_thresholds(v[1], v[2]) for v in val], axis=0)
        per_study = (np.mean([ensemble.study_thresholds(v[0], v[1], v[2], s) for v, s in zip(val, studies)], axis=0)
                     if all(s is not None for s in studies) else None)
    return Report(list(series.slices["ID"]), series.slices["z"].to_numpy(), np.mean(probs, axis=0), thresholds,
                  [Path(f).name for f in folders], time.perf_counter() - start, series.details, per_study)


def study_of(folder) -> pd.Series | None:
    """Image ID -> study of the data a run was trained on (its saved index), or None where it is not at hand."""
    from ..store import data_root, read_index

    path = data_root() / "index" / Path(folder).parent.name / "index.csv"
    try:
        return read_index(path)["study"]
    except (OSError, KeyError, ValueError):
        return None


def slice_heatmap(series: Series, folders: list, slice_index: int, label: str, shape: tuple[int, int]) -> np.ndarray:
    """The models' mean Grad-CAM heatmap of one slice in the slice's own frame (``shape``): each model's map put
    back through the box its input was cut to (``ichlib.preprocess.place``), to be drawn over the whole slice."""
    from ..preprocess import place

    maps = []
    for folder in folders:
        x = inputs(series, folder)[slice_index:slice_index + 1]
        box = series.boxes[str(folder)][slice_index]
        maps.append(place(opened(folder).gradcam(x, label)[0], box, shape))
    return np.mean(maps, axis=0)


def heatmap(series: Series, folders: list, slice_index: int, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(the slice in the brain window at the network's size, the models' mean Grad-CAM heatmap) for one slice."""
    maps, shown = [], None
    for folder in folders:
        run = opened(folder)
        x = inputs(series, folder)[slice_index:slice_index + 1]
        maps.append(run.gradcam(x, label)[0])
        if shown is None:
            shown = x[0, ..., BRAIN_CHANNEL[run.spec.preprocessing]]
    return shown, np.mean(maps, axis=0)
