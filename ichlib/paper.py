"""Numbers the paper reports, quoted so they can stand beside ours (always labelled as the paper's, on real RSNA data).

Source: the seed paper (``shared/paper/seed-paper.txt``). Nothing here is computed; everything else is.
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

# The paper's windows (center, width in HU) and its adjacent-slice window.
WINDOWS = {"brain": (40, 80), "subdural": (80, 400), "soft": (30, 30)}
ASIP_WINDOW = "brain"

SPLIT = {"train": 0.81, "val": 0.09, "test": 0.10}  # by image in the paper

# Table 3: every model's hyperparameters (the same for all six per preprocessing) and parameter counts.
TABLE3 = {"learning rate": 0.0005, "patience": 3, "activation": "sigmoid", "loss": "binary cross-entropy",
          "optimizer": "Adam", "monitor": "accuracy", "batch size": 4, "dropout": 0.125}
TABLE3_PARAMETERS = {"efficientnetb2": 7949695, "resnet50": 23850758, "densenet121": 7169478}

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
