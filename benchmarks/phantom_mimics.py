"""The phantom's blood mimics measured (a script, not a test): prints figures, asserts nothing.

    python benchmarks/phantom_mimics.py [--studies 30] [--matrix 256]

For negative studies (no bleed) of the phantom as it is drawn now, on the same seeds as any other run:
- each calcification's brightest pixels after partial volume, blur and noise (the median of the five brightest
  within 5 mm of its centre, on the slices nearest it), beside the core density it was drawn with;
- the dural venous sinuses' drawn densities;
- where the blood-bright pixels (50-100 HU, what the pixel baseline counts) of every slice lie
  (``ichlib.density.bright_places``), per slice and as a share of the head's pixels;
and the same places on the real CQ500 slice(s) that ship with pydicom (and pydicom-data), where a reader can
check them. docs/phantom-mimics.md reads these figures against the literature.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ichlib.density import PLACES, TISSUE_HU, bright_places
from ichlib.phantom import DRAWING, simulate_study
from ichlib.phantom.anatomy import _n
from ichlib.phantom.imaging import pixel_grid

SPOTS = {"pineal": lambda h: [_n(h, 0, -0.22, 0.05)],
         "choroid": lambda h: [_n(h, 0.22 * s, -0.36, 0.12) for s in (-1, 1)],
         "falx": lambda h: [_n(h, 0, 0.35, 0.55)]}


def one_study(args: tuple[int, int]) -> dict:
    seed, matrix = args
    study = simulate_study(np.random.default_rng(seed), (), matrix=matrix)
    head = study.head
    x, y = pixel_grid(head, matrix, study.spacing)
    peaks = []
    for site, core in head.calcifications:
        for cx, cy, cz in SPOTS[site](head):
            nearest = int(np.argmin(np.abs(study.z - cz)))
            near = np.hypot(x - cx, y - cy) < 5
            best = max(float(np.median(np.sort(study.hu[k][near])[-5:]))
                       for k in range(max(nearest - 1, 0), min(nearest + 2, len(study.z))))
            peaks.append((site, core, best))
    places = [bright_places(hu) for hu in study.hu]
    head_px = [int(np.count_nonzero(hu > TISSUE_HU)) for hu in study.hu]
    return {"peaks": peaks, "sinus_hu": head.sinus_hu, "places": places, "head_px": head_px}


def real_slices() -> dict[str, np.ndarray]:
    from ichlib.app.real_ct import shipped_slices
    from ichlib.rsna import read_hu

    out = {}
    for name, path in shipped_slices().items():
        try:
            out[name] = read_hu(path)
        except (OSError, ValueError) as exc:  # a JPEG 2000 file without its decoder: said, not fatal
            print(f"  {name}: not read ({exc})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=30)
    parser.add_argument("--matrix", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one_study, [(1000 + s, args.matrix) for s in range(args.studies)]))
    print(f"phantom drawing {DRAWING}: {args.studies} negative studies at {args.matrix} px")
    peaks = [p for r in results for p in r["peaks"]]
    for site in SPOTS:
        cores = np.array([c for s, c, _ in peaks if s == site])
        seen = np.array([b for s, _, b in peaks if s == site])
        if len(seen):
            print(f"  {site:8s} n={len(seen):3d}  drawn {cores.min():4.0f}-{cores.max():4.0f} HU  brightest pixels "
                  f"p10/p50/p90 {np.percentile(seen, 10):4.0f} / {np.median(seen):4.0f} / {np.percentile(seen, 90):4.0f} HU")
    sinus = np.array([r["sinus_hu"] for r in results])
    print(f"  sinuses  drawn mean {sinus.mean():.1f} HU, range {sinus.min():.0f}-{sinus.max():.0f}")
    slices = [(p, n) for r in results for p, n in zip(r["places"], r["head_px"]) if n > 0]
    total = sum(sum(p.values()) for p, _ in slices)
    per_slice = {name: np.mean([p[name] for p, _ in slices]) for name in PLACES}
    share = sum(sum(p.values()) for p, _ in slices) / sum(n for _, n in slices)
    print(f"  50-100 HU pixels: {total / len(slices):.0f} per slice ({share:.2%} of the head's pixels); by place: "
          + ", ".join(f"{name} {per_slice[name] / max(total / len(slices), 1e-9):.0%}" for name in PLACES))
    for name, hu in real_slices().items():
        places, n = bright_places(hu), int(np.count_nonzero(hu > TISSUE_HU))
        total = sum(places.values())
        print(f"real {name} ({hu.shape[0]} px): 50-100 HU pixels {total:.0f} ({total / max(n, 1):.2%} of the head's "
              "pixels); by place: " + ", ".join(f"{k} {v / max(total, 1):.0%}" for k, v in places.items()))


if __name__ == "__main__":
    main()
