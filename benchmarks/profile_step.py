"""Where a training step's time goes, by operator, under the torch backend (torch.profiler's CPU table).

    python benchmarks/profile_step.py                              # DenseNet121 at 80 px, batch 64
    python benchmarks/profile_step.py --arch resnet50 --batch 16 --steps 4

Runs a few warm-up steps of the book's own fit (``ichlib.train``'s batches, ``ichlib.losses.WeightedBCE``, Adam),
then profiles ``--steps`` training steps and one ``predict`` of as many images, and prints each one's top
operators by self CPU time with their share of the whole. A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="densenet121")
    parser.add_argument("--size", type=int, default=80)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    from ichlib.backend import configure

    if configure() != "torch":
        raise SystemExit("this profile reads torch's profiler: run it with the torch backend")
    import keras
    import torch

    from ichlib.losses import WeightedBCE
    from ichlib.models import build_model
    from ichlib.batches import batches_class

    rng = np.random.default_rng(0)
    n = args.batch * args.steps
    x = rng.integers(0, 255, (n, args.size, args.size, 3), dtype=np.uint8)
    y = (rng.random((n, 6)) > 0.7).astype(np.uint8)
    model = build_model(args.arch, args.size, bn_momentum=0.9)
    model.compile(keras.optimizers.Adam(1e-3), WeightedBCE())
    batches = batches_class()
    model.fit(batches(x, y, np.arange(n), args.batch, True, 0), epochs=1, verbose=0)  # warm-up
    model.predict(x[:args.batch], batch_size=args.batch, verbose=0)
    for name, work in (("train", lambda: model.fit(batches(x, y, np.arange(n), args.batch, True, 1), epochs=1,
                                                     verbose=0)),
                       ("predict", lambda: model.predict(x, batch_size=args.batch, verbose=0))):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            work()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\n{name}: {n} images, {total / 1e6:.2f} s of operator time, {total / 1e3 / n:.1f} ms per image")
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.top]:
            print(f"  {e.key:<40} {e.count:>6} calls {e.self_cpu_time_total / 1e6:7.2f} s "
                  f"{100 * e.self_cpu_time_total / total:5.1f} %")


if __name__ == "__main__":
    main()
