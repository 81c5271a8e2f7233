"""One command line for the project: ``python -m ichlib cohort ...`` (``book`` and ``app`` join it later)."""

from __future__ import annotations

import argparse
import json
import sys
import time


def _cohort(args: argparse.Namespace) -> int:
    from .phantom import make_cohort

    start = time.perf_counter()
    manifest = make_cohort(args.out, args.studies, seed=args.seed, matrix=args.matrix, prevalence=args.prevalence,
                           n_corrupt=args.corrupt, workers=args.workers, progress=not args.quiet)
    took = time.perf_counter() - start
    print(f"wrote {manifest['n_images']} images of {manifest['n_studies']} studies "
          f"({manifest['n_patients']} patients) to {args.out} in {took:.1f} s")
    print("images per label:", json.dumps(manifest["label_counts"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ichlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    cohort = sub.add_parser("cohort", help="write a synthetic head-CT cohort in the RSNA layout")
    cohort.add_argument("--out", required=True, help="folder to write (resumes an interrupted run)")
    cohort.add_argument("--studies", type=int, required=True, help="number of studies")
    cohort.add_argument("--seed", type=int, default=0, help="drives all randomness (default 0)")
    cohort.add_argument("--matrix", type=int, default=512, help="rows = columns per slice (default 512)")
    cohort.add_argument("--prevalence", type=float, default=0.5, help="share of studies with a bleed (default 0.5)")
    cohort.add_argument("--corrupt", type=int, default=1, help="truncated files to include, as in RSNA (default 1)")
    cohort.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    cohort.add_argument("--quiet", action="store_true", help="no progress bar")
    cohort.set_defaults(run=_cohort)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
