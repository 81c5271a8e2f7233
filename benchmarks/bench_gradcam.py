"""Grad-CAM speed: milliseconds for one slice after the first (tracing) call, per backbone.

    python benchmarks/bench_gradcam.py                 # 128 px, 20 single-slice calls per backbone
    python benchmarks/bench_gradcam.py --size 64 --batch 32

Untrained models (the cost does not depend on the weights). Prints the first call's seconds, then the median
and 90th percentile of single-slice calls, and the per-slice cost inside a batch. A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--archs", default="efficientnetb2,resnet50,densenet121")
    args = parser.parse_args()

    import keras

    from ichlib.gradcam import gradcam
    from ichlib.models import build_model

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (max(args.calls, args.batch), args.size, args.size, 3)).astype(np.float32)
    for arch in args.archs.split(","):
        model = build_model(arch, args.size)
        start = time.perf_counter()
        gradcam(model, images[:1], "any")
        first = time.perf_counter() - start
        gradcam(model, images[1:2], "subdural")  # a second call settles per-shape caches
        single = []
        for k in range(args.calls):
            start = time.perf_counter()
            gradcam(model, images[k:k + 1], k % 6)
            single.append(1000 * (time.perf_counter() - start))
        gradcam(model, images[: args.batch], "any")
        start = time.perf_counter()
        gradcam(model, images[: args.batch], "any")
        batched = 1000 * (time.perf_counter() - start) / args.batch
        print(arch, json.dumps({"backend": keras.backend.backend(), "size": args.size, "first_call_s": round(first, 2),
                                "one_slice_ms_median": round(float(np.median(single)), 1),
                                "one_slice_ms_p90": round(float(np.percentile(single, 90)), 1),
                                f"per_slice_ms_in_batch_of_{args.batch}": round(batched, 1)}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
