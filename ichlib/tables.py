"""The paper's Tables 6-8 and the headline results, computed from the saved predictions of the trained runs.

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
from .metrics import (auc_or_nan, bootstrap_ci, choose_thresholds, flags, matched_auc, matched_aucs, micro_roc,
                      paired_bootstrap, patient_weights, per_label_auc, percentiles, scores, weighted_aucs,
                      weighted_log_loss)
from .paper import PAPER_SCORES, PAPER_TABLES, TABLE4_WINDOWED, TABLE5_ASIP, paper_key
from .rsna import ANY, LABELS
from .runs import load_predictions
from .seeds import SEED_FLIPPABLE
from .targets import VISIBLE_PX
from .train import SPLITS

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
    """Predictions of every run in ``runs`` (``train.train_runs`` output: index = run name, column ``folder``)."""
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


def headline(y_true, y_prob, thresholds, patients, n_boot: int = 1000, seed: int = 0) -> dict:
    """The results table of one model or ensemble on one split.

    Returns ``{"labels": table, "RSNA log loss": (value, low, high)}``: per label, the AUC with its 95 %
    patient-bootstrap interval, accuracy / F1 / recall / precision at the given (validation) thresholds and the
    number of positives; and the RSNA weighted log loss with its interval. The decisions are the read-out's:
    a subtype only where `any` is flagged (``ichlib.metrics.flags``), as the app reports them.
    """
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    table = scores(y_true, y_prob, thresholds, hierarchy=True).loc[list(LABELS)]
    weights = patient_weights(patients, n_boot, seed)  # one set of draws for every label, vectorised
    draws = np.stack([weighted_aucs(y_true[:, j], y_prob[:, j], weights) for j in range(len(LABELS))], axis=1)
    low, high = percentiles(draws, 0.95)
    at = table.columns.get_loc("AUC") + 1
    table.insert(at, "AUC 95% low", low)
    table.insert(at + 1, "AUC 95% high", high)
    table["positives"] = y_true.sum(axis=0).astype(int)
    loss_low, loss_high = bootstrap_ci(y_true, y_prob, patients, weighted_log_loss, n_boot, seed)
    return {"labels": table, "RSNA log loss": (weighted_log_loss(y_true, y_prob), loss_low, loss_high)}


def validated_headline(val: Predictions, test: Predictions, p_val, p_test, index: pd.DataFrame,
                       level: str = "slice", n_boot: int = 1000, seed: int = 0) -> dict:
    """The :func:`headline` of one model or ensemble at slice or study level, thresholds chosen on validation.

    ``p_val`` / ``p_test``: (images, 6) probabilities aligned with ``val.ids`` / ``test.ids``; ``index``: the
    image index (``patient`` and ``study`` per image ID). At study level both splits are first read out per
    study (:func:`ichlib.ensemble.study_level`) and the thresholds chosen on the validation studies. The
    bootstrap resamples patients either way. Adds the ``"thresholds"`` used, ``"units"`` (test slices or
    studies) and ``"patients"``.
    """
    if level == "slice":
        y_val, y_test, units = val.truth, test.truth, list(test.ids)
        patients = index.loc[list(test.ids), "patient"].to_numpy()
    elif level == "study":
        thresholds = ensemble.study_thresholds(val.ids, val.truth, p_val, index["study"])
        units, y_test, p_test = ensemble.study_level(test.ids, test.truth, p_test, index["study"])
        patients = index.drop_duplicates("study").set_index("study").loc[units, "patient"].to_numpy()
    else:
        raise ValueError(f"level must be 'slice' or 'study', got {level!r}")
    if level == "slice":
        thresholds = choose_thresholds(y_val, p_val)
    result = headline(y_test, p_test, thresholds, patients, n_boot, seed)
    return {**result, "thresholds": thresholds, "units": len(units), "patients": len(set(patients))}


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


def auc_by_bleed_size(ids, y_any, p_any, masks: dict, image_size: int, floors=(0, 1, 4, 16, 64)) -> pd.DataFrame:
    """The `any` AUC with the smallest bleeds left out: per floor, only positive slices whose bleed covers at
    least that many pixels **at the network's input size** are kept (every negative is). Phantom data only
    (``masks``: image ID -> {subtype: bool mask}); shows how much of a shortfall the input resolution explains."""
    from sklearn.metrics import roc_auc_score

    ids, y_any, p_any = list(ids), np.asarray(y_any), np.asarray(p_any)
    area = np.zeros(len(ids))
    for k, image_id in enumerate(ids):
        parts = masks.get(image_id, {})
        if parts:
            union = np.logical_or.reduce(list(parts.values()))
            area[k] = union.sum() * (image_size / union.shape[0]) ** 2
    rows = []
    for floor in floors:
        keep = (y_any == 0) | ((y_any == 1) & (area >= floor))
        kept_pos = int(((y_any == 1) & keep).sum())
        auc = roc_auc_score(y_any[keep], p_any[keep]) if kept_pos and (y_any[keep] == 0).any() else np.nan
        rows.append({"bleed at least (px at input)": floor, "positive slices kept": kept_pos, "AUC any": auc})
    return pd.DataFrame(rows).set_index("bleed at least (px at input)")


def auc_by_distance_to_bleed(y_any, p_any, study, position, gaps=(0, 1, 2)) -> pd.DataFrame:
    """The `any` AUC with the negatives next to a bleed left out: per gap g, negative slices within g slices of a
    positive slice of the same study are dropped (every positive is kept; gap 0 drops nothing).

    A 5 mm slice just past a bleed's last labelled slice still holds some blood by partial volume while its label
    says none; if the AUC climbs with the gap, those edge slices, not missed bleeds, cost much of it.
    ``study`` and ``position`` (the slice's place in its series) are per slice, aligned with the labels."""
    from sklearn.metrics import roc_auc_score

    y_any, p_any = np.asarray(y_any), np.asarray(p_any)
    frame = pd.DataFrame({"study": np.asarray(study), "position": np.asarray(position, float), "y": y_any})
    bleeding = frame[frame["y"] == 1].groupby("study")["position"].apply(np.asarray)
    distance = np.full(len(frame), np.inf)
    for k, (name, where) in enumerate(zip(frame["study"], frame["position"])):
        if name in bleeding.index:
            distance[k] = np.abs(bleeding[name] - where).min()
    rows = []
    for gap in gaps:
        keep = (y_any == 1) | (distance > gap)
        kept_neg = int(((y_any == 0) & keep).sum())
        auc = roc_auc_score(y_any[keep], p_any[keep]) if kept_neg and (y_any[keep] == 1).any() else np.nan
        rows.append({"gap (slices)": gap, "negative slices kept": kept_neg,
                     "AUC any": auc})
    return pd.DataFrame(rows).set_index("gap (slices)")


def small_bleed_share(masks: dict, boxes: dict, image_size: int, floor: float = VISIBLE_PX) -> pd.DataFrame:
    """How many positive slices' bleeds fall under ``floor`` px at the input, on the whole slice and cut to the
    head's box: what the crop gives a small bleed for free.

    Args:
        masks: image ID -> {subtype: bool mask} at the stored resolution (``describe.masks_of`` without a cache).
        boxes: image ID -> the head's box (``describe.head_boxes``).
        image_size: the network's input size.
    """
    from .localisation import input_area

    areas = {"whole slice": [], "cut to the head": []}
    for image_id, parts in masks.items():
        if not parts:
            continue
        union = np.logical_or.reduce(list(parts.values()))
        top, bottom, left, right = boxes[image_id]
        areas["whole slice"].append(input_area(union, image_size))
        areas["cut to the head"].append(float(union.sum()) * image_size ** 2 / ((bottom - top) * (right - left)))
    rows = {name: {"positive slices": len(a), f"share under {floor:g} px": float(np.mean(np.array(a) < floor))
                   if a else np.nan, "median bleed (px at input)": float(np.median(a)) if a else np.nan}
            for name, a in areas.items()}
    return pd.DataFrame(rows).T


def paired_auc(truth: np.ndarray, candidates: dict[str, np.ndarray], pairs, patients, label: str = "any",
               n: int = 1000, seed: int = 0, strata=None, spread: float = np.nan) -> pd.DataFrame:
    """AUC of ``label`` for pairs of candidates on the same test slices, the difference's patient-bootstrap
    interval (``metrics.paired_bootstrap``) and what it says: "better", "worse" or "cannot tell".

    Args:
        truth: (images, 6) test labels.
        candidates: name -> (images, 6) test probabilities (a model's, or an ensemble's).
        pairs: (A, B) names: each row reads "A is better / worse than B, or cannot tell".
        patients: the patient of each test image.
        strata: each test image's level stratum (``ichlib.baselines.levels``): compare level-matched AUCs
            (``metrics.paired_matched``) instead of plain ones.
        spread: the AUC range that retraining with other seeds gives (``ichlib.seeds``): a verdict by no more
            than that is "cannot tell" (``seeds.with_spread``); NaN: not measured.
    """
    from .metrics import paired_matched
    from .seeds import with_spread

    j = LABELS.index(label)
    score = "AUC" if strata is None else "level-matched AUC"
    rows = []
    for a, b in pairs:
        if strata is None:
            r = paired_bootstrap(truth[:, j], candidates[a][:, j], candidates[b][:, j], patients, auc_or_nan, n, seed)
        else:
            r = paired_matched(truth[:, j], candidates[a][:, j], candidates[b][:, j], np.asarray(strata), patients,
                               n, seed)
        rows.append({"A": a, "B": b, f"{score} {label} A": r["a"], f"{score} {label} B": r["b"],
                     "A - B": r["difference"], "95 % CI of A - B": "undefined" if r["verdict"] == "undefined"
                     else f"{r['low']:+.3f} to {r['high']:+.3f}", "A is": with_spread(r["verdict"], r["difference"],
                                                                                     spread)})
    return pd.DataFrame(rows)


def verdict_text(row) -> str:
    """One row of :func:`paired_auc` in words, for a sentence that reads "A is ...":
    ``better: +0.018 (95 % CI +0.009 to +0.028)``; an interval that straddles zero says so, and so does a
    difference within the seed spread."""
    if row["A is"] == "undefined":
        return "undefined (one class only in the test split)"
    verdict = {"cannot tell": "no better and no worse (the interval straddles zero)",
               SEED_FLIPPABLE: "no better and no worse than retraining with another seed moves a model"}.get(
        row["A is"], row["A is"])
    return f"{verdict}: {row['A - B']:+.3f} (95 % CI {row['95 % CI of A - B']})"


def any_auc_levels(candidates: dict[str, np.ndarray], test: Predictions, index: pd.DataFrame, n: int = 1000,
                   seed: int = 0, strata: pd.Series | None = None) -> pd.DataFrame:
    """Test `any` AUC of each candidate at slice and study level (a study's score is its highest slice's), each
    with its patient-bootstrap 95 % interval, and the RSNA log loss at slice level: the light headline of a
    comparison (one label, so it costs a fraction of :func:`validated_headline`). With ``strata`` (each image's
    level stratum) the slice rows add the level-matched AUC (``metrics.matched_aucs``)."""
    j = LABELS.index("any")
    patients = index.loc[list(test.ids), "patient"].to_numpy()
    rows = []
    for name, probs in candidates.items():
        units, y_study, p_study = ensemble.study_level(test.ids, test.truth, probs, index["study"])
        study_patients = index.drop_duplicates("study").set_index("study").loc[units, "patient"].to_numpy()
        for level, (y, p, who) in {"slice": (test.truth, probs, patients),
                                   "study": (y_study, p_study, study_patients)}.items():
            low, high = bootstrap_ci(y[:, j], p[:, j], who, auc_or_nan, n, seed)
            rows.append({"model": name, "level": level, "any AUC": auc_or_nan(y[:, j], p[:, j]), "95 % low": low,
                         "95 % high": high, "units": len(y),
                         "RSNA log loss": weighted_log_loss(test.truth, probs) if level == "slice" else np.nan})
            if strata is not None:
                rows[-1]["level-matched AUC"] = matched_auc(y[:, j], p[:, j], strata.loc[list(test.ids)].to_numpy()) \
                    if level == "slice" else np.nan
    return pd.DataFrame(rows).set_index(["model", "level"])


def gain_over(truth: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, patients, gain: float,
              label: str = "any", n: int = 1000, seed: int = 0, spread: float = np.nan) -> dict:
    """Whether A beats B by at least ``gain`` in ``label`` AUC with the paired interval above zero and, where
    the seed spread is known, by more than it: the ``metrics.paired_bootstrap`` result with ``met`` added."""
    j = LABELS.index(label)
    r = paired_bootstrap(truth[:, j], prob_a[:, j], prob_b[:, j], patients, auc_or_nan, n, seed)
    beyond_seeds = not np.isfinite(spread) or r["difference"] > spread
    return {**r, "met": bool(r["difference"] >= gain and r["low"] > 0 and beyond_seeds)}


def any_auc_table(candidates: dict[str, np.ndarray], test: Predictions, index: pd.DataFrame, n: int = 1000,
                  seed: int = 0, strata: pd.Series | None = None) -> pd.DataFrame:
    """Each candidate's test `any` AUC with its patient-bootstrap interval and, with ``strata``, its
    level-matched AUC with its interval (:func:`auc_with_interval`), one row per candidate."""
    rows = {name: auc_with_interval(test.truth[:, ANY], probs[:, ANY], index.loc[list(test.ids)], n, seed, strata,
                                    "test AUC any") for name, probs in candidates.items()}
    return pd.DataFrame(rows).T.drop(columns="patients")


def comparison_pairs(runs: pd.DataFrame, test: Predictions, ensemble_probs: np.ndarray,
                     single: str) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """What the results chapter compares, as ``paired_auc`` takes it: candidates (every run's test probabilities
    and the best ensemble's) and pairs: the best ensemble against the best single model ``single``, the two best
    runs by validation `any` AUC, and each optimised run against its baseline."""
    candidates = {name: test.probs[test.names.index(name)] for name in runs.index}
    candidates["best ensemble"] = np.asarray(ensemble_probs)
    ranked = list(runs["val AUC any"].dropna().sort_values(ascending=False).index)
    pairs = [("best ensemble", single)] + [tuple(ranked[:2])] * (len(ranked) > 1) + variant_pairs(runs)
    kept = []  # the two best runs may be one backbone's two variants: each pair once, in either order
    for pair in pairs:
        if pair not in kept and pair[::-1] not in kept:
            kept.append(pair)
    return candidates, kept


def variant_pairs(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(optimised, baseline) run names of each backbone and input that has both (``train.train_runs`` rows)."""
    pairs = []
    for (arch, prep), group in runs.groupby(["arch", "preprocessing"], sort=False):
        by_variant = dict(zip(group["variant"], group.index))
        if {"baseline", "optimised"} <= set(by_variant):
            pairs.append((by_variant["optimised"], by_variant["baseline"]))
    return pairs


def auc_intervals(runs: pd.DataFrame, index: pd.DataFrame, label: str = "any", split: str = "test",
                  n: int = 1000, seed: int = 0, strata: pd.Series | None = None) -> pd.DataFrame:
    """Each run's ``label`` AUC on ``split`` with its patient-bootstrap 95 % interval (``train.train_runs`` rows;
    ``index`` gives each image's patient); with ``strata`` also its level-matched AUC (:func:`auc_with_interval`)."""
    j = LABELS.index(label)
    rows = {}
    for name, folder in runs["folder"].items():
        ids, truth, probs = load_predictions(folder, split)
        rows[name] = auc_with_interval(truth[:, j], probs[:, j], index.loc[ids], n, seed, strata,
                                       f"{split} AUC {label}")
    return pd.DataFrame(rows).T


def auc_with_interval(y: np.ndarray, p: np.ndarray, index: pd.DataFrame, n: int = 1000, seed: int = 0,
                      strata: pd.Series | None = None, key: str = "AUC") -> dict:
    """One label's AUC (under ``key``) with its patient-bootstrap interval (``index``: the images' rows, for
    their patients) and, with ``strata``, the level-matched AUC and its interval from the same draws."""
    patients = index["patient"].to_numpy()
    weights = patient_weights(patients, n, seed)
    low, high = percentiles(weighted_aucs(y, p, weights), 0.95)
    row = {key: auc_or_nan(y, p), "95 % CI low": low, "95 % CI high": high}
    if strata is not None:
        levels = strata.loc[index.index].to_numpy()
        m_low, m_high = percentiles(matched_aucs(y, p, levels, weights), 0.95)
        row |= {"level-matched AUC": matched_auc(y, p, levels), "matched low": m_low, "matched high": m_high}
    return row | {"patients": index["patient"].nunique()}


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
