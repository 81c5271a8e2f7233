"""How much the vectorised patient bootstrap saves: one AUC's 1,000 draws by the loop and by weighted AUCs.

    python benchmarks/bench_bootstrap.py [--slices 3300] [--patients 103] [--draws 1000]

Prints one JSON line: both times, their ratio (a ratio travels between machines) and the largest difference
between the two (they resample the same patients, so it should be rounding). A script: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ichlib.metrics import auc_or_nan, bootstrap_aucs, patient_draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=3300)
    parser.add_argument("--patients", type=int, default=103)
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, args.slices)
    score = rng.random(args.slices) + 0.3 * y
    patients = rng.integers(0, args.patients, args.slices)
    start = time.perf_counter()
    loop = np.array([auc_or_nan(y[p], score[p]) for p in patient_draws(patients, args.draws, 0)])
    loop_s = time.perf_counter() - start
    start = time.perf_counter()
    vectorised = bootstrap_aucs(y, score, patients, args.draws, 0)
    vec_s = time.perf_counter() - start
    print(json.dumps({"slices": args.slices, "patients": args.patients, "draws": args.draws,
                      "loop_s": round(loop_s, 3), "vectorised_s": round(vec_s, 3), "ratio": round(loop_s / vec_s, 1),
                      "max_difference": float(np.nanmax(np.abs(loop - vectorised)))}))


if __name__ == "__main__":
    main()
