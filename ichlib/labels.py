"""The six labels of the RSNA 2019 challenge, in its column order; every (images, labels) array follows it.

Its own module, without pydicom or anything else, so that scoring (``ichlib.metrics``) or the app's history can
name the labels without loading the DICOM reader.
"""

LABELS = ("any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
SUBTYPES = LABELS[1:]
ANY = LABELS.index("any")  # the column of `any` in every (images, labels) array
