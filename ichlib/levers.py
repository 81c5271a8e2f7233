"""The recipe's levers, each measured on validation: a lever is a change of one run's settings
(``{"mask_weight": 0, "score_from": "head"}``), trained as the book trains every run (``ichlib.plan.train_runs``: the
book's data, split and caches; finished runs are kept, so a lever equal to the book's own recipe costs nothing).

Each lever is scored where the recipe is chosen, on the validation patients, never on test:

- ``val AUC any`` and ``val matched``, its level-matched `any` AUC (each positive against the negatives of its
  own tenth of the series, ``ichlib.metrics.matched_auc``: what the network adds to the level);
- ``val pointing``: on a sample of validation slices whose bleed covers at least ``targets.VISIBLE_PX`` px
  at the input, the share where the `any` Grad-CAM's peak falls on the bleed (``ichlib.localisation``, tolerance
  1 px); ``val mask pointing`` the same for the network's own predicted mask, where it has a mask head;
- ``train s`` (the run's training, its validation passes included) and ``start s`` (its pretrained start,
  paid once per architecture and shared by the architecture's runs).

A lever's run predicts the validation split only (``RunSpec.score_test`` False): choosing a recipe never looks
at test, and the test pass would cost as much as a third of the run.

A network with a mask head that scores `any` from its mask is read a second way too, from its classifier head:
the same weights, so the difference is the reading alone. The trivial pointers (``ichlib.pointers``: the
brightest place and a random pixel inside the head) are scored on the same slices, the floor any heatmap is
read against. Real data has no masks: the pointing columns are empty and levers that train on masks are skipped,
saying so.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import yaml

from .runs import RUN_SETTINGS, RunSpec

COLUMNS = ["lever", "val AUC any", "val matched", "val pointing", "val mask pointing", "train s", "start s"]


def changes(lever: dict | str) -> dict:
    """A lever's changes: a dict of run settings (as a chapter's parameters and the profiles write them), or
    ``"KEY=VALUE ..."`` (as the sweep's command line does, values read as YAML reads them); ValueError naming an
    unknown setting."""
    if isinstance(lever, dict):
        unknown = [key for key in lever if key not in RUN_SETTINGS]
        if unknown:
            raise ValueError(f"lever {lever!r}: {', '.join(map(repr, unknown))} is not a run setting "
                             f"({', '.join(RUN_SETTINGS)})")
        return dict(lever)
    out = {}
    for change in str(lever).split():
        key, sep, value = change.partition("=")
        if not sep or key not in RUN_SETTINGS:
            raise ValueError(f"lever {lever!r}: {change!r} is not KEY=VALUE with KEY a run setting "
                             f"({', '.join(RUN_SETTINGS)})")
        out[key] = yaml.safe_load(value)
    return out


def lever_spec(base: RunSpec, lever: dict | str) -> RunSpec:
    """``base`` with a lever's changes, checked (a ValueError names what the run cannot take). A lever that
    changes the run is scored on validation only (``score_test`` False: no test pass, which the levers never
    read); one that changes nothing is the book's own run."""
    spec = replace(base, **changes(lever))
    spec.check()
    return spec if spec == base else replace(spec, score_test=False)


def lever_name(lever: dict | str) -> str:
    """``mask_weight=0 score_from=head``; "the book's recipe" for no change."""
    return " ".join(f"{key}={value}" for key, value in changes(lever).items()) or "the book's recipe"


def base_spec(run: str, settings: dict) -> RunSpec:
    """The run ``arch-preprocessing-variant`` with the book's run settings."""
    parts = run.split("-")
    if len(parts) != 3:
        raise ValueError(f"lever run {run!r}: expected architecture-preprocessing-variant, "
                         "e.g. densenet121-three_window-optimised")
    spec = RunSpec(*parts, **settings)
    spec.check()
    return spec


def visible_slices(src, cache, ids, n: int, seed: int) -> tuple[list, dict]:
    """(up to ``n`` of ``ids`` whose bleed covers at least ``targets.VISIBLE_PX`` px at the input, drawn from the
    seed; each one's union mask in the input's frame, at the slice's full resolution: every lever's input size
    is cut from it). Empty for data without masks."""
    from .localisation import input_area, sample_slices
    from .masktargets import frame_masks
    from .targets import VISIBLE_PX

    masks = frame_masks(src, ids, cache)
    size = cache.images.shape[1]
    unions = {i: np.logical_or.reduce(list(parts.values())) for i, parts in masks.items() if parts}
    visible = [i for i in ids if i in unions and input_area(unions[i], size) >= VISIBLE_PX]
    chosen = sample_slices(visible, n, seed)
    return chosen, {i: unions[i] for i in chosen}


def pointing_share(maps: np.ndarray, masks: list, tolerance: int = 1) -> float:
    """The pointing game's hit rate of ``maps`` against ``masks`` (NaN with no slice)."""
    from .localisation import pointing_game

    hits = [pointing_game(h, m, tolerance) for h, m in zip(maps, masks)]
    return float(np.mean(hits)) if hits else np.nan


def head_reading(folder, model, cache, rows: np.ndarray, strata_rows: np.ndarray) -> np.ndarray:
    """The validation probabilities a mask-scored network's classifier head gives (the level put back as the
    run puts it back): the same weights, read the other way."""
    import keras

    from .levelprior import apply, read

    head = keras.Model(model.inputs, model.get_layer("labels").output)
    probs = head.predict(cache.images[rows].astype(np.float32), batch_size=64, verbose=0)
    return apply(probs, strata_rows, read(folder))


def measure_levers(src, base: RunSpec, levers: list, seed: int, strata: pd.Series, n_slices: int = 100,
                   workers: int | None = None, phantom=None, log=None) -> pd.DataFrame:
    """One row per lever (see the module doc), the mask-scored ones read from their head too, then the density
    and random pointers on the same validation slices."""
    from . import plan, pointers, store
    from .masktargets import mask_to
    from .runs import load_predictions

    specs, skipped = [], []
    for lever in levers:
        spec = lever_spec(base, lever)
        if spec.mask_weight > 0 and not getattr(src, "phantom", False):
            skipped.append(lever)  # real data has no masks to train on
            continue
        specs.append((lever, spec))
    if not specs:  # no lever, or none this data can train: nothing to score, the skipped ones named
        out = pd.DataFrame([{"lever": f"{lever_name(lever)} (skipped: this data has no masks)"} for lever in skipped],
                           columns=COLUMNS).set_index("lever")
        out.attrs["slices"] = 0
        return out
    table = plan.train_runs(src, [s for _, s in specs], seed, workers=workers, log=log, phantom=phantom)
    cache = store.run_cache(src, base, workers=workers)
    val_ids = [i for i in load_predictions(table["folder"].iloc[0], "val")[0]]
    slices, masks = visible_slices(src, cache, val_ids, n_slices, seed)
    shown = [masks[i] for i in slices]
    rows = []
    for k, (lever, spec) in enumerate(specs):
        rows += _lever_rows(src, lever, spec, table["folder"].iloc[k], float(table["train s"].iloc[k]), strata,
                            slices, shown, workers, phantom)
    if slices:
        from .cache import BRAIN_CHANNEL

        channels = np.stack([cache.image(i) for i in slices])[..., BRAIN_CHANNEL[base.preprocessing]]
        shown = [mask_to(union, channels.shape[1]) for union in shown]
        for name, maps in (("density pointer (brightest place in the head)", pointers.density_maps(channels)),
                           ("random pointer (a pixel inside the head)", pointers.random_maps(channels, seed))):
            rows.append({"lever": name, "val pointing": pointing_share(maps, shown)})
    for lever in skipped:
        rows.append({"lever": f"{lever_name(lever)} (skipped: this data has no masks)"})
    out = pd.DataFrame(rows, columns=COLUMNS).set_index("lever")
    out.attrs["slices"] = len(slices)
    return out


def _lever_rows(src, lever: str, spec: RunSpec, folder, train_s: float, strata: pd.Series, slices: list,
                shown: list, workers, phantom) -> list[dict]:
    """A trained lever's row (and, for a mask-scored network, the row of its head's reading)."""
    from . import pointers, store
    from .gradcam import gradcam
    from .labels import ANY
    from .levelprior import aligned_strata
    from .masktargets import mask_to
    from .metrics import auc_or_nan, matched_auc
    from .pretrain import backbone_dir, read_summary, teacher
    from .runs import PRETRAINED, load_model, load_predictions

    ids, truth, probs = load_predictions(folder, "val")
    level = strata.reindex(ids).to_numpy()
    row = {"lever": lever_name(lever), "val AUC any": auc_or_nan(truth[:, ANY], probs[:, ANY]),
           "val matched": matched_auc(truth[:, ANY], probs[:, ANY], level),
           "val pointing": np.nan, "val mask pointing": np.nan, "train s": train_s,
           "start s": (float(read_summary(backbone_dir(teacher(src, spec, phantom), spec))["seconds"])
                          if spec.weights in PRETRAINED else 0.0)}
    model = load_model(folder, spec) if slices or spec.score_from == "mask" else None
    data = store.run_cache(src, spec, workers=workers)
    if slices:
        images = np.stack([data.image(i) for i in slices])
        shown = [mask_to(union, images.shape[1]) for union in shown]  # the bleed at this lever's input size
        row["val pointing"] = pointing_share(gradcam(model, images, "any"), shown)
        if spec.mask_head:
            row["val mask pointing"] = pointing_share(pointers.mask_maps(model, images), shown)
    if spec.score_from != "mask":
        return [row]
    at = np.array([data.row(i) for i in ids])
    head = head_reading(folder, model, data, at, aligned_strata(strata, data.ids)[at])
    return [row, {**row, "lever": f"{lever_name(lever)}, any read from the head",
                  "val AUC any": auc_or_nan(truth[:, ANY], head[:, ANY]),
                  "val matched": matched_auc(truth[:, ANY], head[:, ANY], level)}]


def lever_starts(src, base: RunSpec, levers: list, phantom=None) -> pd.DataFrame:
    """The pretrained starts the levers used, one row each (``ichlib.pretrain.summaries``: images, seconds, and
    for a masks start its mask head's own validation scores)."""
    from .pretrain import summaries

    specs = [lever_spec(base, lever) for lever in levers]
    return summaries(src, [s for s in specs if s.mask_weight == 0 or getattr(src, "phantom", False)], phantom)
