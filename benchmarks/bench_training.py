"""Training speed on this machine: `fit` images/s and the first (graph-building) step's seconds, per backbone.

    python benchmarks/bench_training.py                         # 64 px, batch 16, 320 images, all backbones
    python benchmarks/bench_training.py --size 128 --archs resnet50
    python benchmarks/bench_training.py --archs densenet121 --policy mixed_bfloat16 --batch 64

The book's own fit: cached uint8 batches through ``ichlib.train``'s PyDataset, the training metrics on.
A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--archs", default="efficientnetb2,resnet50,densenet121")
    parser.add_argument("--policy", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16")
    args = parser.parse_args()

    import keras

    keras.mixed_precision.set_global_policy(args.policy)

    from ichlib.losses import RSNALogLoss, WeightedBCE
    from ichlib.models import build_model
    from ichlib.train import _dataset_class

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (args.images, args.size, args.size, 3), dtype=np.uint8)
    y = (rng.random((args.images, 6)) > 0.7).astype(np.uint8)
    batches = _dataset_class()
    for arch in args.archs.split(","):
        model = build_model(arch, args.size, bn_momentum=0.9)
        model.compile(keras.optimizers.Adam(1e-3), WeightedBCE(),
                      metrics=[RSNALogLoss(), keras.metrics.AUC(multi_label=True, num_labels=6, name="auc")])
        start = time.perf_counter()
        model.fit(batches(x, y, np.arange(args.batch), args.batch, True, 0), epochs=1, verbose=0)
        first = time.perf_counter() - start
        start = time.perf_counter()
        model.fit(batches(x, y, np.arange(args.images), args.batch, True, 0), epochs=1, verbose=0)
        rate = args.images / (time.perf_counter() - start)
        print(json.dumps({"arch": arch, "backend": keras.backend.backend(), "size": args.size, "batch": args.batch,
                          "policy": args.policy,
                          "first_step_s": round(first, 1), "images_per_s": round(rate, 1)}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
