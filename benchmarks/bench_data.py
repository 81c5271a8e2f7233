"""Data-layer speed on this machine (a script, not a test): prints figures, asserts nothing.

    python benchmarks/bench_data.py [--studies 40] [--out data/bench]

Measures, on the same files:
- ``read_hu`` against a bare ``pydicom.dcmread(path).pixel_array`` (images/s, and their ratio);
- ``index_dicoms`` with 1 and 2 workers (files/s);
- cohort generation (images/s, and the wall time of the whole 40-study cohort);
- preprocessing, DICOM to the 3-window 128 px uint8 array, against the bare decode (images/s);
- the preprocessed-array cache build with 1 and 2 workers (images/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom

from ichlib.cache import build_cache
from ichlib.phantom import make_cohort
from ichlib.preprocess import resize, three_window
from ichlib.rsna import index_dicoms, lenient_uids, read_hu


def rates(funcs, items, repeat=5):
    """Items per second of each function: best of ``repeat`` passes, the functions taking turns (fair to both)."""
    best = [float("inf")] * len(funcs)
    for _ in range(repeat):
        for i, func in enumerate(funcs):
            start = time.perf_counter()
            for item in items:
                func(item)
            best[i] = min(best[i], time.perf_counter() - start)
    return [len(items) / b for b in best]


def bare(path):
    with lenient_uids():
        return pydicom.dcmread(path).pixel_array


def preprocessed(path):
    return three_window(resize(read_hu(path, shrink_to=128), 128), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=40)
    parser.add_argument("--out", default="data/bench")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)

    start = time.perf_counter()
    manifest = make_cohort(out, args.studies, seed=0, progress=False)
    cohort_s = time.perf_counter() - start

    index, failures = index_dicoms(out / "stage_2_train", workers=1, progress=False)
    paths = index.path.tolist()
    sample = paths[:: max(1, len(paths) // 300)]
    figures = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "cohort_studies": args.studies,
        "cohort_images": manifest["n_images"],
        "cohort_seconds": round(cohort_s, 1),
        "cohort_images_per_s": round(manifest["n_images"] / cohort_s, 1),
    }
    bare_rate, hu_rate, pre_rate = rates([bare, read_hu, preprocessed], sample)
    figures["pydicom_pixel_array_images_per_s"] = round(bare_rate, 1)
    figures["read_hu_images_per_s"] = round(hu_rate, 1)
    figures["preprocess_3window_128px_images_per_s"] = round(pre_rate, 1)
    figures["preprocess_speed_vs_bare"] = round(pre_rate / bare_rate, 3)
    figures["read_hu_cost_vs_bare"] = round(figures["pydicom_pixel_array_images_per_s"] / figures["read_hu_images_per_s"], 3)
    for workers in (1, 2):
        start = time.perf_counter()
        index_dicoms(out / "stage_2_train", workers=workers, progress=False)
        figures[f"index_{workers}_workers_files_per_s"] = round((len(paths) + len(failures)) / (time.perf_counter() - start), 1)
    for workers in (1, 2):
        start = time.perf_counter()
        build_cache(index, out / f"cache{workers}", size=128, workers=workers, progress=False)
        figures[f"cache_3window_128px_{workers}_workers_images_per_s"] = round(len(paths) / (time.perf_counter() - start), 1)
    print(json.dumps(figures, indent=2))
    Path("benchmarks/data.json").write_text(json.dumps(figures, indent=2))
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
