"""Reading the whole series: a bidirectional GRU over each slice's CNN embedding, one prediction per slice.

The paper classifies every slice alone (its adjacent-slice input sees one neighbour each side). The RSNA 2019
winners gained most from a second stage that reads the series: the 1st place ran a bidirectional GRU over
per-slice CNN features, the 2nd place a bidirectional LSTM over the pooled embeddings and their differences to
the neighbouring slices. This module is that second stage, small enough to teach:

    slice embeddings (slices, d) -> dense projection -> bidirectional GRU over the slices
                                 -> [GRU output, the projection itself] -> six sigmoids per slice

The slice's own projected features are added back beside the GRU's output, so the model can keep what the CNN
saw in the slice and add what its neighbours say. Series of different lengths are padded and masked (the GRU
skips padded steps and the loss ignores them). ``fit`` early-stops on the validation series and is seeded.

``series_of`` turns per-slice arrays into per-series ones (z order, from the index); ``series_features`` gets
a trained run's embeddings for a split: saved at training time for validation and test
(``ichlib.runs.load_features``), computed and cached for a sample of training studies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .labels import ANY, LABELS

GRU_SETTINGS = dict(units=64, dropout=0.3, epochs=40, batch_size=16, learning_rate=1e-3, patience=5)
# A CNN whose `any` AUC on sampled training slices exceeds validation by less than this is taken not to have
# memorised them (confidence_gap): about the half-width of the test intervals on the cpu profile.
TRUSTED_GAP = 0.05


def series_of(ids, index: pd.DataFrame, *arrays: np.ndarray) -> tuple[list[str], list[list[np.ndarray]]]:
    """Group per-slice rows into series in z order.

    Args:
        ids: the image ID of each row of ``arrays``.
        index: the header index (``series`` and ``z`` per image ID).
        arrays: per-slice arrays (rows aligned with ``ids``), e.g. features and labels.

    Returns:
        (series UIDs, for each array the list of its per-series blocks, rows in z order) and, as the last list,
        the image IDs of each series.
    """
    frame = index.loc[list(ids), ["series", "z"]].copy()
    frame["row"] = np.arange(len(frame))
    frame = frame.sort_values(["series", "z"], kind="stable")
    names, blocks = [], [[] for _ in range(len(arrays) + 1)]
    for name, group in frame.groupby("series", sort=True):
        names.append(str(name))
        rows = group["row"].to_numpy()
        for k, array in enumerate(arrays):
            blocks[k].append(np.asarray(array)[rows])
        blocks[-1].append(group.index.to_numpy())
    return names, blocks


def pad(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(padded array (n, longest, ...), mask (n, longest): True on real slices)."""
    longest = max(len(s) for s in series)
    out = np.zeros((len(series), longest, *series[0].shape[1:]), np.float32)
    mask = np.zeros((len(series), longest), bool)
    for i, s in enumerate(series):
        out[i, :len(s)] = s
        mask[i, :len(s)] = True
    return out, mask


def _flip_layer():
    import keras

    class Flip(keras.layers.Layer):
        """Reverse the slice axis (and its mask)."""

        def call(self, x, mask=None):
            return keras.ops.flip(x, axis=1)

        def compute_mask(self, x, mask=None):
            return None if mask is None else keras.ops.flip(mask, axis=1)

    return Flip


def build(d: int, units: int = 64, dropout: float = 0.3, seed: int = 0):
    """The series model for embeddings of size ``d`` (inputs: features (batch, slices, d), mask (batch, slices))."""
    import keras

    Flip = _flip_layer()
    features = keras.Input((None, d), name="features")
    mask = keras.Input((None,), dtype="bool", name="mask")
    x = keras.layers.Dropout(dropout, seed=seed, name="input_dropout")(features)
    x = keras.layers.Dense(units, activation="relu", name="projection")(x)
    # Both directions by hand, as keras.layers.Bidirectional does (that wrapper serialises its layer, which makes
    # Keras import TensorFlow, whatever the backend): the backward GRU's outputs are flipped back into z order.
    forward = keras.layers.GRU(units, return_sequences=True, seed=seed, name="gru_forward")(x, mask=mask)
    backward = keras.layers.GRU(units, return_sequences=True, go_backwards=True, seed=seed + 2,
                                name="gru_backward")(x, mask=mask)
    backward = Flip(name="gru_backward_in_z_order")(backward)
    h = keras.layers.Concatenate(name="with_own_slice")([forward, backward, x])  # the slice's own features too
    h = keras.layers.Dropout(dropout, seed=seed + 1, name="head_dropout")(h)
    outputs = keras.layers.Dense(len(LABELS), activation="sigmoid", name="labels")(h)
    return keras.Model([features, mask], outputs, name="series_gru")


def _standardise(train: list, mean=None, std=None):
    stacked = np.concatenate([f for f, _ in train]) if mean is None else None
    mean = stacked.mean(axis=0) if mean is None else mean
    std = stacked.std(axis=0) + 1e-6 if std is None else std
    return mean.astype(np.float32), std.astype(np.float32)


def fit(train: list[tuple[np.ndarray, np.ndarray]], val: list[tuple[np.ndarray, np.ndarray]], seed: int = 0,
        verbose: int = 0, **settings):
    """Train a series model; returns it as a :class:`SeriesModel` (the best validation epoch's weights, with the
    feature scaling and the settings it was trained with).

    Args:
        train, val: one ``(features (slices, d), labels (slices, 6))`` per series, slices in z order.
        seed: drives the initial weights, dropout and the order of series.
        settings: any of ``GRU_SETTINGS`` (units, dropout, epochs, batch_size, learning_rate, patience).
    """
    import keras

    from .devices import set_determinism

    unknown = set(settings) - set(GRU_SETTINGS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; expected some of {sorted(GRU_SETTINGS)}")
    if not train or not val:
        raise ValueError("fit needs at least one training and one validation series")
    s = {**GRU_SETTINGS, **settings}
    set_determinism(seed)
    mean, std = _standardise(train)
    (x, mask), y = pad([(f - mean) / std for f, _ in train]), pad([l for _, l in train])[0]
    (xv, mask_v), yv = pad([(f - mean) / std for f, _ in val]), pad([l for _, l in val])[0]
    model = build(x.shape[-1], s["units"], s["dropout"], seed)
    model.compile(optimizer=keras.optimizers.Adam(s["learning_rate"]), loss="binary_crossentropy")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=s["patience"], restore_best_weights=True)
    # The masks weight the loss: padded slices count for nothing.
    history = model.fit([x, mask], y, sample_weight=mask.astype(np.float32),
                        validation_data=([xv, mask_v], yv, mask_v.astype(np.float32)), epochs=s["epochs"],
                        batch_size=s["batch_size"], shuffle=True, callbacks=[stop], verbose=verbose)
    return SeriesModel(model, (mean, std), {**s, "seed": seed, "d": int(x.shape[-1])},
                       epochs_run=len(history.history["loss"]))


@dataclass
class SeriesModel:
    """A series model and what reading with it needs: the GRU network, the feature scaling (mean, std) it was
    trained with, its settings, and (once saved or loaded) the run folders whose features it reads."""

    network: object
    scaling: tuple
    settings: dict
    members: list = field(default_factory=list)
    epochs_run: int = 0  # epochs trained before early stopping (0: loaded, not trained here)


def predict(model: SeriesModel, series: list[np.ndarray]) -> list[np.ndarray]:
    """Per-slice probabilities (slices, 6) for each series of features (slices, d)."""
    if not series:
        return []
    mean, std = model.scaling
    x, mask = pad([(np.asarray(f, np.float32) - mean) / std for f in series])
    probs = model.network.predict([x, mask], batch_size=64, verbose=0)
    return [probs[i, :len(s)] for i, s in enumerate(series)]


def slice_table(probs: list[np.ndarray], ids: list[np.ndarray], wanted) -> np.ndarray:
    """Per-series predictions put back as one (images, 6) array in the order of ``wanted`` image IDs."""
    frame = pd.DataFrame(np.concatenate(probs), index=np.concatenate(ids))
    out = frame.reindex(list(wanted))
    if out.isna().any().any():
        raise KeyError(f"no series prediction for {out.index[out.isna().any(axis=1)][:3].tolist()}")
    return out.to_numpy()


def fit_on_split(folders: list[str], split: pd.Series, index: pd.DataFrame, labels: pd.DataFrame,
                 train_ids, seed: int = 0, caches: dict | None = None, **settings):
    """Fit a series model on the features of ``folders`` (one run, or an ensemble's members side by side):
    trained on the training studies of ``train_ids``, early-stopped on the validation split. Returns
    (model, {"val": table, "test": table}): each slice's six probabilities, indexed by image ID."""
    sets = {}
    for name, ids in (("train_sample", train_ids), ("val", None), ("test", None)):
        kwargs = {"cache": caches, "ids": ids} if ids is not None else {}
        sets[name] = joined_features(folders, name, **kwargs)
    blocks = {}
    for name, (ids, features) in sets.items():
        truth = labels.loc[list(ids), list(LABELS)].to_numpy(np.float32)
        _, (feats, truths, sids) = series_of(ids, index, features, truth)
        blocks[name] = (list(zip(feats, truths)), sids)
    model = fit(blocks["train_sample"][0], blocks["val"][0], seed=seed, **settings)
    out = {}
    for name in ("val", "test"):
        series, sids = blocks[name]
        probs = predict(model, [f for f, _ in series])
        out[name] = pd.DataFrame(slice_table(probs, sids, sets[name][0]), index=sets[name][0], columns=list(LABELS))
    return model, out


# ------------------------------------------------------------------------------------------- features
def training_studies(split: pd.Series, index: pd.DataFrame, labels: pd.DataFrame, n: int, seed: int) -> list[str]:
    """Image IDs of ``n`` training studies (drawn from ``seed``, half of them with a bleed where there are
    enough): the series model's training data, a sample so that its features cost seconds, not minutes."""
    from .monitor import half_positive

    train = index.loc[split.index[split == "train"]]
    positive = labels.loc[train.index, "any"].groupby(train["study"]).max()
    rng = np.random.default_rng([seed, 11])
    pos, neg = sorted(positive.index[positive == 1]), sorted(positive.index[positive == 0])
    chosen_pos, chosen_neg = half_positive(pos, neg, n, rng)
    return list(train.index[train["study"].isin(set(chosen_pos) | set(chosen_neg))])


def run_features(folder: str | os.PathLike, split: str, cache=None, ids=None,
                 strata: pd.Series | None = None) -> tuple[pd.Index, np.ndarray]:
    """A run's pooled embeddings for a split: those saved at training time (validation, test), or, for another
    split name, computed for ``ids`` from ``cache`` once and kept in the run folder. Its probabilities are saved
    beside them as the run's own are: with the level put back for a run on level-matched negatives, from each
    image's level stratum in ``strata`` (``ichlib.level.slice_levels``), which such a run needs."""
    from . import levelprior, runs
    from .models import with_features
    from .batches import INFERENCE_BATCH

    try:
        return runs.load_features(folder, split)
    except FileNotFoundError:
        if cache is None or ids is None:
            raise FileNotFoundError(f"{folder}: no {split} features saved; pass the cache and the image IDs") from None
    rows = [cache.row(i) for i in ids]
    model = with_features(runs.load_model(folder))
    probs, features = model.predict(cache.images[rows].astype(np.float32), batch_size=INFERENCE_BATCH, verbose=0)
    table = levelprior.read(folder)
    if table is not None:
        if strata is None:
            raise ValueError(f"{folder}: a run on level-matched negatives needs each image's level (strata=)")
        probs = levelprior.apply(probs, levelprior.aligned_strata(strata, ids), table)
    runs.write_predictions(folder, split, ids, cache.labels[rows], probs)  # for the over-confidence check
    runs.write_features(folder, split, ids, features)
    return runs.load_features(folder, split)


def confidence_gap(folders: dict[str, str], split: str = "train_sample") -> pd.DataFrame:
    """Per run: its `any` AUC on the sampled training slices beside validation. A CNN that memorised its
    training slices scores far higher there, and its embeddings would mislead a series model trained on them."""
    from . import runs
    from .metrics import auc_or_nan

    rows = {}
    for name, folder in folders.items():
        scores = {}
        for part in (split, "val"):
            _, truth, probs = runs.load_predictions(folder, part)
            scores[part] = auc_or_nan(truth[:, ANY], probs[:, ANY])
        rows[name] = {"any AUC, sampled training slices": scores[split], "any AUC, validation": scores["val"],
                      "gap": scores[split] - scores["val"]}
    return pd.DataFrame(rows).T


def joined_features(folders: list[str], split: str, cache=None, ids=None) -> tuple[pd.Index, np.ndarray]:
    """Several runs' embeddings side by side (an ensemble's members), rows aligned by image ID; ``cache`` may
    be one cache or a mapping run folder -> cache (members of different inputs)."""
    parts = [run_features(f, split, cache.get(f) if isinstance(cache, dict) else cache, ids) for f in folders]
    ids = parts[0][0]
    aligned = [pd.DataFrame(x, index=i).reindex(ids).to_numpy(np.float32) for i, x in parts]
    return ids, np.concatenate(aligned, axis=1)


# ------------------------------------------------------------------------------------------- saving
def save(model: SeriesModel, folder: str | os.PathLike, members: list[str], validation: tuple | None = None) -> Path:
    """Keep a fitted series model with its scaling, its settings, the runs whose features it reads and, given
    ``validation`` = (image IDs, truth, probabilities), its validation predictions (the app's thresholds)."""
    from .runs import write_predictions

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if validation is not None:
        write_predictions(folder, "val", *validation)
    model.network.save_weights(str(folder / "series.weights.h5"))
    mean, std = model.scaling
    np.savez(folder / "scaling.npz", mean=mean, std=std)
    tmp = folder / "series.json.part"
    tmp.write_text(json.dumps({"settings": model.settings, "members": list(members)}, indent=1))
    os.replace(tmp, folder / "series.json")  # last: the folder is complete
    return folder


def load(folder: str | os.PathLike) -> SeriesModel:
    """A saved series model, ready for :func:`predict` (``members``: the run folders its features come from)."""
    folder = Path(folder)
    meta = json.loads((folder / "series.json").read_text())
    s = meta["settings"]
    network = build(s["d"], s["units"], s["dropout"], s["seed"])
    network.load_weights(str(folder / "series.weights.h5"))
    with np.load(folder / "scaling.npz") as saved:
        scaling = (saved["mean"], saved["std"])
    return SeriesModel(network, scaling, s, list(meta["members"]))


def find(root: str | os.PathLike, folders: list[str]) -> Path | None:
    """The saved series model under ``root`` that reads exactly these runs' features (in this order), if any."""
    wanted = [str(Path(f).resolve()) for f in folders]
    for meta in sorted(Path(root).rglob("series.json")):
        members = json.loads(meta.read_text())["members"]
        if [str(Path(m).resolve()) for m in members] == wanted:
            return meta.parent
    return None
