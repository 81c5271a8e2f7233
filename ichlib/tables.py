"""The paper's Tables 6-8, computed from the saved predictions of the trained runs, and its claims checked.

Intervals and paired comparisons are in ``ichlib.comparisons``, the phantom's error analysis in
``ichlib.error_analysis``.

Every row is scored the same way: per-label thresholds are chosen on the validation split (maximum F1) and
applied unchanged to the test split; accuracy, F1, recall and precision are then pooled over every (image,
label) decision ("micro"), the only averaging under which accuracy near 0.94 sits beside F1 near 0.78 as in
the paper's tables (the many negative decisions lift accuracy); the AUC column is pooled the same way. The
field's scores stand beside them: the `any` AUC and the RSNA weighted log loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import ensemble
from .metrics import choose_thresholds, flags, micro_roc, scores, weighted_log_loss
from .labels import ANY, LABELS
from .paper import PAPER_SCORES, PAPER_TABLES, TABLE4_WINDOWED, TABLE5_ASIP, paper_key
from .runs import load_predictions
from .split import SPLITS

GROUPS = ("three_window", "adjacent", "all")
OURS = ("accuracy", "F1", "recall", "precision", "AUC", "AUC any", "RSNA log loss")


@dataclass
class Predictions:
    """The predictions of several runs on one split, aligned by image: probs is (models, images, 6)."""

    names: list[str]
    ids: pd.Index
    truth: np.ndarray
    probs: np.ndarray

    def pick(self, names) -> "Predictions":
        rows = [self.names.index(n) for n in names]
        return Predictions(list(names), self.ids, self.truth, self.probs[rows])


def load(runs: pd.DataFrame, split: str) -> Predictions:
    """Predictions of every run in ``runs`` (``plan.train_runs`` output: index = run name, column ``folder``)."""
    names, probs, ids, truth = [], [], None, None
    for name, folder in runs["folder"].items():
        run_ids, run_truth, run_probs = load_predictions(folder, split)
        if ids is None:
            ids, truth = run_ids, run_truth
        elif not run_ids.equals(ids):
            run_probs = pd.DataFrame(run_probs, index=run_ids).reindex(ids).to_numpy()
            if np.isnan(run_probs).any():
                raise ValueError(f"run {name} ({folder}) predicted other {split} images than the others")
        names.append(name)
        probs.append(run_probs)
    if ids is None:
        raise ValueError("no runs given")
    return Predictions(names, ids, truth, np.stack(probs))


def summary_row(y_val, s_val, y_test, s_test, decision_test=None) -> dict:
    """One table row: the paper's five scores (micro, at validation thresholds) and the field's two.

    ``decision_test`` (0/1, images x 6), when given, replaces the thresholded scores (the vote's own decision);
    then no log loss is reported, a vote share being no probability.
    """
    if decision_test is None:
        table = scores(y_test, s_test, choose_thresholds(y_val, s_val))
        loss = weighted_log_loss(y_test, s_test)
    else:
        table = _scores_of_decision(y_test, s_test, decision_test)
        loss = np.nan
    micro = table.loc["micro"]
    return {**{k: micro[k] for k in PAPER_SCORES}, "AUC any": table.at["any", "AUC"], "RSNA log loss": loss}


def _scores_of_decision(y_true, score, decision) -> pd.DataFrame:
    # scores() thresholds a score; a decision in {0, 1} thresholded at 0.5 is itself. AUC still uses the score.
    table = scores(y_true, decision, 0.5)
    auc = scores(y_true, score, 0.5)["AUC"]
    table["AUC"] = auc
    return table


def ensemble_output(method: str, val: Predictions, test: Predictions, weights_from: str = "validation") -> tuple:
    """(validation score, test score, test decision or None) of one ensemble of the models in ``val``/``test``.

    The vote's score is its share of positive votes, each model voting at its own validation thresholds; its
    decision is the majority (ties positive). The other two give probabilities, thresholded later.
    """
    w = weights(val, test, weights_from) if method == "weighted" else None
    cuts = np.stack([choose_thresholds(val.truth, p) for p in val.probs]) if method == "vote" else 0.5
    s_val, s_test = (ensemble.combine(method, x.probs, weights=w, threshold=cuts) for x in (val, test))
    return s_val, s_test, (s_test >= 0.5).astype(float) if method == "vote" else None


def ensemble_rocs(members: pd.DataFrame, val: Predictions, test: Predictions,
                  weights_from: str = "validation") -> dict[str, tuple | None]:
    """Pooled test ROC curves (``metrics.micro_roc``) of each ensemble of the baseline and of the optimised
    models among ``members`` (rows of ``train_runs`` output), as the paper's Figures 18, 20 and 21 draw them."""
    return {name: micro_roc(test.truth, score) for name, score in ensembles_of(members, val, test, weights_from).items()}


def ensembles_of(members: pd.DataFrame, val: Predictions, test: Predictions,
                 weights_from: str = "validation") -> dict[str, np.ndarray]:
    """The test scores (images, 6) of each of the paper's ensembles of the baseline and of the optimised models
    among ``members``: ``{"average of baseline": ..., "vote of optimised": ..., ...}``."""
    scores_ = {}
    for variant in ("baseline", "optimised"):
        names = list(members.index[members["variant"] == variant])
        for method in ensemble.METHODS if names else ():
            scores_[f"{method} of {variant}"] = ensemble_output(method, val.pick(names), test.pick(names),
                                                                weights_from)[1]
    return scores_


def ensemble_scores(method: str, val: Predictions, test: Predictions, weights_from: str = "validation") -> dict:
    """One table row for an ensemble of the models in ``val`` / ``test`` (same names), scored on test."""
    s_val, s_test, decision = ensemble_output(method, val, test, weights_from)
    return summary_row(val.truth, s_val, test.truth, s_test, decision)


def group_rocs(runs: pd.DataFrame, val: Predictions, test: Predictions, group: str,
               weights_from: str = "validation") -> dict[str, dict]:
    """The pooled test ROC curves of one input's single models and of their ensembles (the paper's Figures 17-20)."""
    members = group_runs(runs, group)
    singles = {name: micro_roc(test.truth, test.probs[test.names.index(name)]) for name in members.index}
    return {"single models": singles, "ensembles": ensemble_rocs(members, val, test, weights_from)}


def weights(val: Predictions, test: Predictions, weights_from: str = "validation") -> np.ndarray:
    """The weighted ensemble's weights: each model's accuracy at 0.5 on validation, or (the paper's leaky
    choice) on test."""
    if weights_from not in ("validation", "test"):
        raise ValueError(f"weights_from must be 'validation' or 'test', got {weights_from!r}")
    source = val if weights_from == "validation" else test
    return ensemble.accuracies(source.truth, source.probs)


def group_runs(runs: pd.DataFrame, group: str) -> pd.DataFrame:
    if group == "all":
        return runs
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
    return runs[runs["preprocessing"] == group]


def paper_table(runs: pd.DataFrame, val: Predictions, test: Predictions, group: str,
                weights_from: str = "validation", search_method: str = "weighted",
                search_metric: str = "AUC any") -> pd.DataFrame:
    """One of the paper's Tables 6 (three_window), 7 (adjacent) or 8 (all), ours beside the paper's.

    Rows: each single model (Tables 6 and 7), the average / vote / weighted ensembles of the baseline and of the
    optimised models, and the best combination of the group's models found on validation
    (:func:`ichlib.ensemble.search`). Columns: ours (:data:`OURS`, phantom, test split) and ``paper <score>``
    (quoted, real RSNA data). Rows the profile did not train are left out.
    """
    members = group_runs(runs, group)
    quoted = PAPER_TABLES[group]
    rows: dict[str, dict] = {}
    if group != "all":
        for name, run in members.iterrows():
            k = test.names.index(name)
            rows[paper_key(run["arch"], run["variant"])] = summary_row(val.truth, val.probs[k], test.truth, test.probs[k])
    for variant in ("baseline", "optimised"):
        names = list(members.index[members["variant"] == variant])
        if not names:
            continue
        for method in ensemble.METHODS:
            rows[f"{method} of {variant}"] = ensemble_scores(method, val.pick(names), test.pick(names), weights_from)
    best = best_combination(val.pick(list(members.index)), test.pick(list(members.index)), search_method,
                            search_metric, weights_from)
    rows["best combination"] = best["row"]
    order = [r for r in quoted if r in rows] + [r for r in rows if r not in quoted]  # the paper's row order
    table = pd.DataFrame(rows).T.reindex(index=order, columns=list(OURS))
    for j, score in enumerate(PAPER_SCORES):
        table[f"paper {score}"] = [quoted[r][j] if r in quoted else np.nan for r in table.index]
    table.attrs["best combination"] = best["models"]
    return table


def best_combination(val: Predictions, test: Predictions, method: str = "weighted", metric: str = "AUC any",
                     weights_from: str = "validation") -> dict:
    """The subset of models whose ensemble scores best on validation, and its scores on test."""
    w = weights(val, test, weights_from) if method == "weighted" else None
    found = ensemble.search(val.probs, val.truth, val.names, method, metric, weights=w)
    mask = found.attrs["masks"][0]
    names = [n for n, m in zip(val.names, mask) if m]
    return {"models": names, "validation": float(found.iloc[0][metric]), "search": found,
            "row": ensemble_scores(method, val.pick(names), test.pick(names), weights_from)}


def hierarchy_effect(y_val: np.ndarray, p_val: np.ndarray) -> pd.DataFrame:
    """The label rule scored on validation, as the thresholds are: per label, F1 with each label decided alone
    and with subtypes gated by `any` (``ichlib.metrics.flags``), the slices where a subtype would be flagged
    without `any`, and the `any` AUC (the same either way: the rule changes decisions, not scores)."""
    thresholds = choose_thresholds(y_val, p_val)
    alone = scores(y_val, p_val, thresholds, hierarchy=False).loc[list(LABELS)]
    gated = scores(y_val, p_val, thresholds, hierarchy=True).loc[list(LABELS)]
    loose = flags(p_val, thresholds, hierarchy=False)
    contradictions = loose & ~loose[:, [ANY]]
    return pd.DataFrame({"threshold": thresholds, "F1 alone": alone["F1"], "F1 gated by any": gated["F1"],
                         "slices flagged without any": contradictions.sum(axis=0), "AUC": alone["AUC"]},
                        index=list(LABELS))


def _pooled_auc(y, p) -> float:
    return float(scores(y, p, 0.5).at["micro", "AUC"])


def claims(runs: pd.DataFrame, val: Predictions, test: Predictions, weights_from: str = "validation") -> pd.DataFrame:
    """The paper's main comparative findings, each checked on our test split.

    The paper's side is computed from its quoted tables (pooled AUC, the tables' last column); ours from the
    runs given. A claim that needs runs the profile did not train is left out.
    """
    rows = []
    auc = {name: _pooled_auc(test.truth, test.probs[k]) for k, name in enumerate(test.names)}
    paper_single = {g: {k: v[4] for k, v in PAPER_TABLES[g].items() if " " not in k} for g in GROUPS[:2]}

    groups = [g for g in GROUPS[:2] if (runs["preprocessing"] == g).any()]
    if len(groups) == 2:
        ours = {g: np.mean([auc[n] for n in group_runs(runs, g).index]) for g in groups}
        theirs = {g: np.mean(list(paper_single[g].values())) for g in groups}
        rows.append({"claim": "three-window input beats adjacent slices (mean AUC of the single models)",
                     "paper": f"{theirs['three_window']:.3f} vs {theirs['adjacent']:.3f}",
                     "ours": f"{ours['three_window']:.3f} vs {ours['adjacent']:.3f}",
                     "holds here": bool(ours["three_window"] > ours["adjacent"])})
    pairs = [(g, a) for g in groups for a in runs["arch"].unique()
             if {f"{a}-{g}-baseline", f"{a}-{g}-optimised"} <= set(auc)]
    if pairs:
        ours_up = sum(auc[f"{a}-{g}-optimised"] > auc[f"{a}-{g}-baseline"] for g, a in pairs)
        theirs_up = sum(paper_single[g][f"{a}-optimised"] > paper_single[g][f"{a}-baseline"] for g, a in pairs)
        rows.append({"claim": "the optimised variant (weighted any, flips) beats its baseline (mostly or not), on the "
                     "AUC pooled over the six labels (the paper's measure; the paired `any` AUC is another)",
                     "paper": f"in {theirs_up} of {len(pairs)} pairs",
                     "ours": f"in {ours_up} of {len(pairs)} pairs",
                     "holds here": bool((ours_up > len(pairs) / 2) == (theirs_up > len(pairs) / 2))})
    cases, ours_w, theirs_w = 0, 0, 0
    for g in groups:
        for variant in ("baseline", "optimised"):
            names = list(group_runs(runs, g).index[group_runs(runs, g)["variant"] == variant])
            if len(names) < 2:
                continue
            cases += 1
            ours_m = {m: _pooled_auc(test.truth, ensemble_output(m, val.pick(names), test.pick(names), weights_from)[1])
                      for m in ensemble.METHODS}
            ours_w += max(ours_m, key=ours_m.get) == "weighted"
            theirs_m = {m: PAPER_TABLES[g][f"{m} of {variant}"][4] for m in ensemble.METHODS}
            theirs_w += max(theirs_m, key=theirs_m.get) == "weighted"
    if cases:
        rows.append({"claim": "the weighted ensemble is the best of the three ensembles",
                     "paper": f"in {theirs_w} of {cases} groups", "ours": f"in {ours_w} of {cases} groups",
                     "holds here": bool(ours_w > cases / 2)})
    if len(test.names) > 1:
        val_auc = {name: _pooled_auc(val.truth, val.probs[k]) for k, name in enumerate(val.names)}
        single = auc[max(val_auc, key=val_auc.get)]  # the best single model, chosen on validation
        combo = best_combination(val, test, "weighted", "AUC any", weights_from)
        ours_combo = combo["row"]["AUC"]
        theirs_best = max(v[4] for g in GROUPS[:2] for k, v in PAPER_TABLES[g].items() if " " not in k)
        theirs_combo = max(PAPER_TABLES[g]["best combination"][4] for g in GROUPS)
        rows.append({"claim": "the best combination beats the best single model (pooled AUC; ours chosen on "
                              "validation, the paper's on test)",
                     "paper": f"{theirs_combo:.3f} vs {theirs_best:.3f}",
                     "ours": f"{ours_combo:.3f} vs {single:.3f}",
                     "holds here": bool(ours_combo > single)})
    return pd.DataFrame(rows, columns=["claim", "paper", "ours", "holds here"]).set_index("claim")


# ------------------------------------------------------------------------------------------- training
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
    """Training seconds and test milliseconds per image of each run, beside the paper's Tables 4 and 5 (quoted).
    The run's name says its backbone, input and variant, so no column repeats them."""
    quoted = {"three_window": TABLE4_WINDOWED, "adjacent": TABLE5_ASIP}
    pairs = [quoted[r.preprocessing][paper_key(r.arch, r.variant)] for r in runs.itertuples()]
    return pd.DataFrame({"train s": runs["train s"], "test ms/image": runs["test s/image"] * 1000,
                         "paper train s": [train_s for train_s, _ in pairs],
                         "paper test ms/image": [test_s * 1000 for _, test_s in pairs]}, index=runs.index)


# Where a run's seconds go (ichlib.train's summary): the learning steps, and what scores the run beside them.
RUN_PARTS = ("learning s", "validation passes s", "curve checks s", "test prediction s")


def seconds_spent(runs: pd.DataFrame, others: dict[str, float]) -> pd.DataFrame:
    """Where a chapter's seconds went: each part of the runs' time summed over the runs (``RUN_PARTS``), then
    ``others`` (name -> seconds: backbones, the reseed, the levers, the baselines, ...), with each one's share."""
    parts = {part.removesuffix(" s"): float(runs[part].sum()) for part in RUN_PARTS if part in runs}
    rows = {f"runs: {name}": seconds for name, seconds in parts.items()} | dict(others)
    table = pd.DataFrame({"seconds": pd.Series(rows, dtype=float)})
    table["share"] = table["seconds"] / table["seconds"].sum()
    return table


def learning_rates(runs: pd.DataFrame, flops: dict[str, int], gflops: float) -> pd.DataFrame:
    """Each run's learning: images learnt, their seconds, images per second and ``peak fraction``, the training
    step's FLOP rate (``ichlib.models.training_flops`` of its architecture, per image) over the machine's own
    matmul rate ``gflops`` measured in the same run, and the share of the run's seconds spent learning."""
    learnt = runs["images learnt"].astype(float)
    rate = learnt / runs["learning s"].where(runs["learning s"] > 0)
    total = runs[[p for p in RUN_PARTS if p in runs]].sum(axis=1)
    return pd.DataFrame({"images learnt": learnt, "learning s": runs["learning s"], "images/s": rate,
                         "peak fraction": rate * runs["arch"].map(flops) / (gflops * 1e9),
                         "learning share": runs["learning s"] / total.where(total > 0)}, index=runs.index)
