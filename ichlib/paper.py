"""Numbers the paper reports, quoted so they can stand beside ours (always labelled as the paper's, on real RSNA data).

Source: the seed paper (``seedpaper`` in ``book/references.bib``), quoted from its tables and text. Nothing here
is computed; everything else is.
"""

# Table 1: images per class in the paper's 200,000-image subset of the RSNA training data.
TABLE1_IMAGES = {
    "normal": 121700,
    "any": 78300,
    "epidural": 3145,
    "intraparenchymal": 16118,
    "intraventricular": 16205,
    "subarachnoid": 15671,
    "subdural": 27161,
}

# The paper's three windows and its split (81 / 9 / 10 % by image) are used, not only quoted, so they live where
# they are used: ichlib.preprocess.PRESETS and PAPER_WINDOWS, ichlib.split.PAPER_FRACTIONS.

# Table 3: every model's hyperparameters (the same for all six per preprocessing) and parameter counts.
TABLE3 = {"learning rate": 0.0005, "patience": 3, "activation": "sigmoid", "loss": "binary cross-entropy",
          "optimizer": "Adam", "monitor": "accuracy", "batch size": 4, "dropout": 0.125}
TABLE3_PARAMETERS = {"efficientnetb2": 7949695, "resnet50": 23850758, "densenet121": 7169478}


def paper_key(arch: str, variant: str) -> str:
    """The row of a single model in the paper's tables ("<arch>-<variant>"); the preprocessing is the table."""
    return f"{arch}-{variant}"


# Tables 4 and 5: training seconds and test seconds per image on one RTX 3070, (windowed, ASIP) inputs.
TABLE4_WINDOWED = {  # (train s, test s/image)
    "efficientnetb2-baseline": (46543, 0.01), "resnet50-baseline": (17445, 0.0096),
    "densenet121-baseline": (19030, 0.011), "efficientnetb2-optimised": (31212, 0.017),
    "resnet50-optimised": (21803, 0.0115), "densenet121-optimised": (33129, 0.012)}
TABLE5_ASIP = {
    "efficientnetb2-baseline": (23098, 0.027), "resnet50-baseline": (38129, 0.022),
    "densenet121-baseline": (43847, 0.025), "efficientnetb2-optimised": (25323, 0.024),
    "resnet50-optimised": (49983, 0.021), "densenet121-optimised": (19834, 0.026)}
PAPER_GPU = "one NVIDIA GeForce RTX 3070 (GA104), batch 4"

# Tables 6-8: accuracy, F1, recall, precision, AUC on the paper's test split (real RSNA images, split by image).
# Rows: a single model ("<arch>-<variant>"), an ensemble ("<method> of <group>"), or the best combination found.
PAPER_SCORES = ("accuracy", "F1", "recall", "precision", "AUC")
TABLE6_WINDOWED = {
    "efficientnetb2-baseline": (0.920, 0.653, 0.518, 0.882, 0.753),
    "resnet50-baseline": (0.932, 0.771, 0.782, 0.761, 0.870),
    "densenet121-baseline": (0.925, 0.734, 0.709, 0.762, 0.835),
    "efficientnetb2-optimised": (0.950, 0.813, 0.774, 0.856, 0.876),
    "resnet50-optimised": (0.922, 0.706, 0.637, 0.792, 0.804),
    "densenet121-optimised": (0.932, 0.750, 0.688, 0.823, 0.831),
    "average of baseline": (0.942, 0.783, 0.711, 0.870, 0.846),
    "vote of baseline": (0.939, 0.775, 0.720, 0.838, 0.848),
    "weighted of baseline": (0.942, 0.783, 0.719, 0.862, 0.849),
    "average of optimised": (0.944, 0.787, 0.711, 0.879, 0.857),
    "vote of optimised": (0.941, 0.775, 0.699, 0.870, 0.841),
    "weighted of optimised": (0.944, 0.858, 0.813, 0.909, 0.851),
    "best combination": (0.947, 0.813, 0.784, 0.843, 0.880),  # weighted: optimised EfficientNet + baseline ResNet
}
TABLE7_ASIP = {
    "efficientnetb2-baseline": (0.926, 0.719, 0.649, 0.807, 0.811),
    "resnet50-baseline": (0.942, 0.784, 0.725, 0.853, 0.852),
    "densenet121-baseline": (0.923, 0.702, 0.620, 0.808, 0.798),
    "efficientnetb2-optimised": (0.932, 0.751, 0.700, 0.811, 0.836),
    "resnet50-optimised": (0.921, 0.729, 0.732, 0.726, 0.843),
    "densenet121-optimised": (0.906, 0.552, 0.396, 0.910, 0.695),
    "average of baseline": (0.940, 0.767, 0.681, 0.878, 0.832),
    "vote of baseline": (0.937, 0.753, 0.661, 0.874, 0.823),
    "weighted of baseline": (0.940, 0.767, 0.681, 0.878, 0.833),
    "average of optimised": (0.937, 0.749, 0.650, 0.885, 0.818),
    "vote of optimised": (0.935, 0.744, 0.645, 0.878, 0.815),
    "weighted of optimised": (0.937, 0.756, 0.668, 0.872, 0.825),
    "best combination": (0.943, 0.788, 0.729, 0.858, 0.854),  # weighted: baseline + optimised ResNet and EfficientNet
}
TABLE8_ALL = {  # both preprocessings together
    "average of baseline": (0.942, 0.778, 0.694, 0.886, 0.839),
    "vote of baseline": (0.937, 0.751, 0.647, 0.897, 0.817),
    "weighted of baseline": (0.943, 0.780, 0.700, 0.882, 0.841),
    "average of optimised": (0.941, 0.771, 0.679, 0.892, 0.833),
    "vote of optimised": (0.938, 0.751, 0.641, 0.907, 0.815),
    "weighted of optimised": (0.942, 0.778, 0.692, 0.888, 0.839),
    "best combination": (0.949, 0.814, 0.771, 0.862, 0.875),  # weighted: baseline ResNet (both) + optimised EfficientNet
}
PAPER_TABLES = {"three_window": TABLE6_WINDOWED, "adjacent": TABLE7_ASIP, "all": TABLE8_ALL}
TABLE_NUMBERS = {"three_window": 6, "adjacent": 7, "all": 8}


def best_reported(score: str = "AUC") -> tuple[int, dict[str, float]]:
    """The paper's best combination with the highest ``score`` over its Tables 6-8: (table number, its scores)."""
    group = max(PAPER_TABLES, key=lambda g: PAPER_TABLES[g]["best combination"][PAPER_SCORES.index(score)])
    return TABLE_NUMBERS[group], dict(zip(PAPER_SCORES, PAPER_TABLES[group]["best combination"]))
