"""A synthetic head-CT cohort with intracranial haemorrhage, written in the RSNA Kaggle layout with true masks.

``anatomy`` draws the head, ``lesions`` the five subtypes, ``dicom`` writes the files as the real ones are
written, ``cohort`` puts studies together. Facts behind the numbers: ``docs/phantom.md``.
"""

from .cohort import DRAWING, make_cohort, mask_path, plan_cohort, read_mask
from .imaging import Study, simulate_study

__all__ = ["DRAWING", "Study", "make_cohort", "mask_path", "plan_cohort", "read_mask", "simulate_study"]
