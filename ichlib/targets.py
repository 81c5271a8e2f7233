"""The targets this project sets itself (ours, not the paper's): each chapter reports its numbers against them,
met or missed, from here, so a target is written once.

On the phantom's `cpu` profile; the paper's own results are quoted in ``ichlib.paper``.
"""

BEST_MODEL_AUC_ANY = 0.95  # the best single model's test `any` AUC (chapter 3)
ENSEMBLE_AUC_ANY = 0.95  # the best ensemble's test `any` AUC (chapters 4 and 6)
INTERVAL_WIDTH = 0.06  # widest 95 % patient-bootstrap interval of the best model's test `any` AUC (chapter 3)
POINTING_GAME = 0.5  # share of test bleeds of >= VISIBLE_PX px where the best model's heatmap peaks inside
VISIBLE_PX = 4  # bleed area at the network's input below which a bleed counts as invisible
SERIES_GAIN = 0.02  # the series model's slice `any` AUC over the best ensemble's, paired interval above 0 (ch. 8)
SERIES_SECONDS = 180.0  # chapter 8 on the cpu profile, features included
APP_SECONDS = 15.0  # one ~30-slice study analysed by the app, model loaded cold, on 2 cores (chapter 7)


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    """"reaches" or "falls short of" (a value that is NaN falls short)."""
    ok = value >= target if higher_is_better else value <= target
    return "reaches" if ok else "falls short of"
