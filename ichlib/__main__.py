"""One command line for the project: ``python -m ichlib cohort | book | kernel | app``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _cohort(args: argparse.Namespace) -> int:
    from .phantom import make_cohort

    # Refused before anything is written: a bad value must not leave a folder that blocks the next good run.
    for name, value, ok, allowed in (("--studies", args.studies, args.studies >= 1, "at least 1"),
                                     ("--matrix", args.matrix, args.matrix >= 32, "at least 32 (px)"),
                                     ("--seed", args.seed, args.seed >= 0, "0 or more"),
                                     ("--prevalence", args.prevalence, 0 <= args.prevalence <= 1, "in [0, 1]"),
                                     ("--corrupt", args.corrupt, args.corrupt >= 0, "0 or more"),
                                     ("--workers", args.workers, args.workers is None or args.workers >= 1,
                                      "at least 1")):
        if not ok:
            raise ValueError(f"{name} {value}: expected {allowed}")
    if args.out is None:  # where the book looks for this cohort
        from .store import data_root, phantom_key

        args.out = str(data_root() / "phantom" / phantom_key(args.studies, args.seed, args.matrix))
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out}: a file is there; give a folder (new, or a cohort to resume)")
    start = time.perf_counter()
    manifest = make_cohort(args.out, args.studies, seed=args.seed, matrix=args.matrix, prevalence=args.prevalence,
                           n_corrupt=args.corrupt, workers=args.workers, progress=not args.quiet,
                           log=lambda line: print(f"cohort: {line}"))
    took = time.perf_counter() - start
    print(f"{manifest['n_images']} images of {manifest['n_studies']} studies ({manifest['n_patients']} patients) "
          f"in {args.out}, {took:.1f} s")
    print("images per label:", json.dumps(manifest["label_counts"]))
    return 0


def _book(args: argparse.Namespace) -> int:
    from .book import ChapterError, run
    from .parameters import ParameterError

    try:
        overrides = _overrides(args)
        profile = args.profile
        if profile is None:
            from .book import last_profile

            last = last_profile()  # after `make book PROFILE=smoke`, a re-run with new values stays on smoke
            profile = last or "cpu"
            print(f"profile: {profile} ({'the last build' + chr(39) + 's' if last else 'the default'}; "
                  "--profile to choose)")
        run(profile, args.only, overrides, build_html=not args.no_build)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ChapterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _overrides(args: argparse.Namespace) -> dict:
    """The run's own values: ``--params FILE.yaml`` then each ``-p KEY VALUE`` (VALUE read as YAML: 96 -> int,
    0.5 -> float, true -> bool, [a, b] -> list, text -> str); ParameterError naming the file or key otherwise."""
    import yaml

    from .parameters import ParameterError

    overrides = {}
    if args.params:
        try:
            loaded = yaml.safe_load(Path(args.params).read_text()) or {}
        except OSError as exc:
            raise ParameterError(f"--params {args.params}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ParameterError(f"--params {args.params}: not valid YAML ({_first_line(exc)})") from None
        if not isinstance(loaded, dict):
            raise ParameterError(f"--params {args.params}: expected a mapping of parameter names to values")
        overrides.update(loaded)
    for key, text in args.p or []:
        try:
            overrides[key] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ParameterError(f"-p {key} {text!r}: not a value YAML can read ({_first_line(exc)})") from None
    return overrides


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]


def _kernel(args: argparse.Namespace) -> int:
    from .book import KERNEL, ensure_kernel

    ensure_kernel()
    print(f"Jupyter kernel {KERNEL!r} -> {sys.executable}")
    return 0


def _app(args: argparse.Namespace) -> int:
    from .app import app_command

    command = app_command(args.streamlit_args)
    sys.stdout.flush()
    sys.stderr.flush()
    # This process becomes Streamlit (same PID): a signal that stops it stops the server, where a child left
    # behind by a terminated parent went on serving.
    os.execv(command[0], command)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ichlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    cohort = sub.add_parser("cohort", help="write a synthetic head-CT cohort in the RSNA layout")
    cohort.add_argument("--out", default=None, help="folder to write (resumes an interrupted run); default: where "
                        "the book looks, data/phantom/studies<N>_seed<S>_matrix<M>_v<drawing>")
    cohort.add_argument("--studies", type=int, required=True, help="number of studies")
    cohort.add_argument("--seed", type=int, default=0, help="drives all randomness (default 0)")
    cohort.add_argument("--matrix", type=int, default=512, help="rows = columns per slice (default 512)")
    cohort.add_argument("--prevalence", type=float, default=0.5, help="share of studies with a bleed (default 0.5)")
    cohort.add_argument("--corrupt", type=int, default=1, help="truncated files to include, as in RSNA (default 1)")
    cohort.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    cohort.add_argument("--quiet", action="store_true", help="no progress bar")
    cohort.set_defaults(run=_cohort)

    book = sub.add_parser("book", help="execute the chapters with papermill and build the book")
    book.add_argument("--profile", default=None,
                      help="smoke, cpu or gpu (profiles.yml); default: the last build's, or cpu before any build")
    book.add_argument("--only", action="append", metavar="CHAPTER",
                      help="run this chapter alone (repeatable); others keep their last executed copy")
    book.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), help="override one parameter")
    book.add_argument("--params", metavar="FILE.yaml", help="override parameters from a YAML mapping")
    book.add_argument("--no-build", action="store_true", help="execute the chapters but do not build the HTML")
    book.set_defaults(run=_book)

    kernel = sub.add_parser("kernel", help="register this environment as the 'ichbook' Jupyter kernel")
    kernel.set_defaults(run=_kernel)

    app = sub.add_parser("app", help="serve the reader app (Streamlit) on 127.0.0.1; Streamlit's options pass "
                                     "through, e.g. --server.port 8600")
    app.set_defaults(run=_app, streamlit_args=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "app":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.streamlit_args = rest  # everything after `app` goes to Streamlit as written
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
