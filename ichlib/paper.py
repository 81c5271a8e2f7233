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
