"""How much training alone moves a result: the best run retrained with other seeds, on the same split.

One seed fixes everything (the split, the weights' start, the batches, the flips), and the same seed reproduces a
run bit for bit on the same machine with the same library versions. On another CPU the kernels round differently,
the runs drift apart over thousands of steps and the same seed gives another model: the spread measured here
(the range of the test AUC over seeds) is the size of that drift. A paired verdict whose difference is no larger
than the spread could be flipped by retraining, so it is reported as "cannot tell".
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .metrics import auc_or_nan, matched_auc
from .labels import LABELS
from .runs import RunSpec, load_predictions

SEED_FLIPPABLE = "cannot tell (within the seed spread)"


def reseeded(spec: RunSpec, extra: int) -> list[RunSpec]:
    """``spec`` with ``extra`` other training seeds (seed + 1, seed + 2, ...); the split stays the book's."""
    if extra < 0:
        raise ValueError(f"the number of extra seeds must be 0 or more, got {extra}")
    return [replace(spec, seed=spec.seed + k) for k in range(1, extra + 1)]


def spread_table(folders: dict[int, str], strata: pd.Series, label: str = "any") -> pd.DataFrame:
    """Per training seed, the run's test AUC of ``label`` and its level-matched AUC (``strata``: each image's
    level stratum, ``ichlib.level.slice_levels``), then rows "range" (max - min) and "sd" over the seeds."""
    j = LABELS.index(label)
    rows = {}
    for seed, folder in folders.items():
        ids, truth, probs = load_predictions(folder, "test")
        rows[f"seed {seed}"] = {f"test AUC {label}": auc_or_nan(truth[:, j], probs[:, j]),
                                "level-matched AUC": matched_auc(truth[:, j], probs[:, j], strata.loc[ids].to_numpy())}
    table = pd.DataFrame(rows).T
    table.loc["range"] = table.max() - table.min()
    table.loc["sd"] = table.iloc[:-1].std(ddof=1) if len(folders) > 1 else np.nan
    return table


def with_spread(verdict: str, difference: float, spread: float) -> str:
    """A paired verdict read against the seed spread: "better" or "worse" by no more than the spread becomes
    :data:`SEED_FLIPPABLE`; everything else is kept (an unknown spread changes nothing)."""
    if verdict in ("better", "worse") and np.isfinite(spread) and abs(difference) <= spread:
        return SEED_FLIPPABLE
    return verdict


def measure(src, runs: pd.DataFrame, spec: RunSpec, extra: int, seed: int, strata: pd.Series,
            workers: int | None = None, phantom=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed spread of one trained run: ``spec`` retrained (or found finished) with ``extra`` more seeds on
    the book's split (drawn from ``seed``, as every run's), then :func:`spread_table` over all its seeds.

    Returns ``(spread table, the extra runs' rows)`` (rows as ``ichlib.plan.train_runs`` gives them; none
    for ``extra`` = 0). ``phantom``: where a ``"masks"`` start on real data is pretrained (``ichlib.plan``).
    """
    from .plan import train_runs

    more = reseeded(spec, extra)
    extra_runs = (train_runs(src, more, seed, workers=workers, log=None, phantom=phantom) if more
                  else pd.DataFrame(columns=["folder", "train s"]))
    folders = {spec.seed: runs.at[spec.name, "folder"]} | dict(zip((s.seed for s in more), extra_runs["folder"]))
    return spread_table(folders, strata), extra_runs


def spread_text(table: pd.DataFrame) -> str:
    """The spread in words, for the summaries and the abstract (plain text: a glued value is not Markdown):
    ``0.012 (0.020 level-matched) over 3 seeds``; an unmeasurable amount where the AUCs are undefined (one class
    only in the test split)."""
    seeds = len(table) - 2
    plain, matched = table.loc["range", table.columns[0]], table.loc["range", "level-matched AUC"]
    if not np.isfinite(plain):
        return f"an amount this test split cannot measure (its AUC is undefined) over {seeds} seeds"
    return f"{plain:.3f} ({matched:.3f} level-matched) over {seeds} seeds"
