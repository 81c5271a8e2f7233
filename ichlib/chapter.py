"""Where every chapter after training starts, in one call: the data, its index and labels, the patient split,
the planned runs (trained first where a run is missing) and their saved predictions.

    setup = chapter.trained(globals())     # the chapter's parameters cell holds what it needs
    src, index, runs = setup.src, setup.index, setup.runs

Chapters 4, 5, 6 and 8 each began with the same eight lines; here they are written once, in the order a
reader would take them, and a chapter keeps only what is its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

NEEDED = ("data_dir", "studies", "seed", "matrix", "workers", "archs", "preprocessings", "variants",
          "test_fraction")


@dataclass
class Trained:
    """A chapter's starting point (see the module's doc)."""

    src: object            # ichlib.store.Source: the data
    kind: str              # "phantom" or "real data", from the data itself: every caption says it
    index: pd.DataFrame    # one row per image (ichlib.store.index)
    labels: pd.DataFrame   # image ID -> the six labels
    split: pd.Series       # image ID -> "train" / "val" / "test", by patient
    specs: list            # the planned runs (ichlib.runs.RunSpec), in the paper's order
    runs: pd.DataFrame     # one row per finished run (ichlib.plan.train_runs)
    val: object            # the runs' validation predictions (ichlib.tables.load)
    test: object           # and test predictions


def trained(params: dict) -> Trained:
    """The data, split and trained runs a chapter's parameters (its ``globals()``) describe; runs already
    trained are read back, missing ones trained first."""
    from . import plan, present, store, tables
    from .runs import settings_in
    from .split import split_by_patient, split_fractions

    missing = [name for name in NEEDED if name not in params]
    if missing:
        raise KeyError(f"the chapter's parameters lack {', '.join(missing)}")
    seed, workers = params["seed"], params["workers"]
    src = store.source(params["data_dir"], params["studies"], seed, params["matrix"], workers=workers,
                       progress=True)
    index, _ = store.index(src, workers=workers, progress=False)
    labels = src.labels()
    split = split_by_patient(index, seed, labels, split_fractions(params["test_fraction"]))
    specs = plan.plan_runs(params["archs"], params["preprocessings"], params["variants"], **settings_in(params))
    phantom = plan.phantom_for(src, specs, params["studies"], seed, params["matrix"], workers)
    runs = plan.train_runs(src, specs, seed, workers=workers, log=None, phantom=phantom)
    return Trained(src, present.data_kind(src), index, labels, split, specs, runs, tables.load(runs, "val"),
                   tables.load(runs, "test"))
