"""Write a whole cohort of simulated studies (``imaging``) in the RSNA layout, with the true masks and a manifest.

On disk::

    <out>/stage_2_train.csv             six rows per image, as Kaggle's
    <out>/stage_2_train/ID_<hex>.dcm    one CT slice per file, real CT tags, several encodings
    <out>/masks/ID_<hex>.npy.gz         positive slices only: uint8, bit i set where SUBTYPES[i] bleeds
    <out>/manifest.json                 parameters, seed, per-study facts, label counts
    <out>/.progress/                    one record per finished study: an interrupted run resumes from here

Randomness: one seed; each study draws from its own child of ``numpy.random.SeedSequence(seed)``, so the
files do not depend on the number of workers or the order in which studies finish.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..labels import LABELS, SUBTYPES
from ..parallel import process_pool
from .dicom import ENCODINGS, SliceInfo, write_slice
from .imaging import simulate_study

# What the phantom draws, numbered: a change that alters the images (2: the dural venous sinuses added, the
# calcifications' densities lowered) takes a new number, so its cohort gets a folder, index, caches and runs of
# its own (``ichlib.store.phantom_key``) and a half-written folder of the old drawing is never resumed with it.
DRAWING = 2
# Relative frequency of each subtype among positive studies (epidural is rare, as in RSNA).
SUBTYPE_WEIGHTS = {"epidural": 0.08, "intraparenchymal": 0.24, "intraventricular": 0.16,
                   "subarachnoid": 0.22, "subdural": 0.30}
ENCODING_WEIGHTS = {"u12": 0.45, "u16": 0.1, "s16": 0.2, "s16pad": 0.15, "fault12": 0.1}
KAGGLE_ORDER = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")


# --------------------------------------------------------------------------------------------- masks
def mask_path(cohort_dir: str | os.PathLike, image_id: str) -> Path:
    return Path(cohort_dir) / "masks" / f"{image_id}.npy.gz"


def write_mask(path: Path, bits: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, bits)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:  # mtime=0: byte-identical
        gz.write(buffer.getvalue())
    os.replace(tmp, path)


def read_mask(cohort_dir: str | os.PathLike, image_id: str) -> dict[str, np.ndarray]:
    """True masks of one slice: ``{subtype: bool array}`` for each subtype it is labelled with ({} if none)."""
    path = mask_path(cohort_dir, image_id)
    if not path.exists():
        return {}
    with gzip.open(path, "rb") as fh:
        bits = np.load(io.BytesIO(fh.read()))
    return {name: (bits & (1 << i)) > 0 for i, name in enumerate(SUBTYPES) if (bits & (1 << i)).any()}


# --------------------------------------------------------------------------------------------- cohort
def _hex_id(*parts, digits: int = 9) -> str:
    return "ID_" + hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).hexdigest()[:digits]


def _spread(rng: np.random.Generator, n: int, weights: dict[str, float]) -> list[str]:
    """n keys in the proportions of ``weights`` (largest remainders), each at least once when n allows, shuffled."""
    keys = list(weights)
    share = np.array([weights[k] for k in keys], float)
    share = share / share.sum() * n
    counts = np.floor(share).astype(int)
    if n >= len(keys):
        counts = np.maximum(counts, 1)
    while counts.sum() > n:  # the floor of one was raised: take back from the largest
        counts[np.argmax(np.where(counts > 1, counts - share, -np.inf))] -= 1
    while counts.sum() < n:
        counts[np.argmax(share - counts)] += 1
    drawn = [k for k, c in zip(keys, counts) for _ in range(c)]
    return [str(k) for k in rng.permutation(drawn)]


def plan_cohort(n_studies: int, seed: int, matrix: int = 512, prevalence: float = 0.5,
                odd_matrix_fraction: float = 0.05, followup_fraction: float = 0.1) -> list[dict]:
    """Decide each study's patient, subtypes, matrix and encoding (cheap; no image is made)."""
    if n_studies < 1:
        raise ValueError(f"n_studies must be at least 1, got {n_studies}")
    if not 0 <= prevalence <= 1:
        raise ValueError(f"prevalence must lie in [0, 1], got {prevalence}")
    rng = np.random.default_rng(seed)
    n_pos = int(round(prevalence * n_studies))
    positive = rng.permutation(np.arange(n_studies) < n_pos)
    primaries = iter(_spread(rng, n_pos, SUBTYPE_WEIGHTS))
    encodings = _spread(rng, n_studies, ENCODING_WEIGHTS)
    odd = set(rng.permutation(n_studies)[: int(round(odd_matrix_fraction * n_studies))].tolist())
    n_patients = n_studies - int(round(followup_fraction * n_studies))
    patient_of = list(range(n_patients)) + list(rng.integers(0, n_patients, n_studies - n_patients))
    children = np.random.SeedSequence(seed).spawn(n_studies)

    plan = []
    for i in range(n_studies):
        subtypes: list[str] = []
        if positive[i]:
            subtypes = [next(primaries)]
            for extra in SUBTYPES:
                chance = 0.4 if (extra, subtypes[0]) == ("intraventricular", "intraparenchymal") else 0.15
                if extra not in subtypes and rng.random() < chance:
                    subtypes.append(extra)
        plan.append(dict(
            index=i,
            seed=int(children[i].generate_state(1)[0]),
            patient=_hex_id(seed, "patient", patient_of[i], digits=8),
            study=_hex_id(seed, "study", i, digits=10),
            series=_hex_id(seed, "series", i, digits=10),
            subtypes=sorted(subtypes, key=SUBTYPES.index),
            encoding=encodings[i],
            matrix=int(matrix * 3 // 4) if i in odd else int(matrix),
            window_multi=bool(rng.random() < 0.3),
            descending=bool(rng.random() < 0.5),
            table_z=float(np.round(rng.uniform(-250, 50), 1)),
        ))
    return plan


def _write_study(spec: dict, out: str, subslices: int) -> dict:
    """Simulate one planned study and write its slices and masks; return its record."""
    out = Path(out)
    done = _done_marker(out, spec)
    study = simulate_study(np.random.default_rng(spec["seed"]), tuple(spec["subtypes"]), spec["matrix"], subslices)
    n = len(study.z)
    tilt = study.head.tilt
    half = (spec["matrix"] - 1) / 2 * study.spacing
    images = []
    for k in range(n):
        image_id = _hex_id(spec["study"], k)
        info = SliceInfo(
            image_id=image_id, patient_id=spec["patient"], study_id=spec["study"], series_id=spec["series"],
            position=(-half, -half * np.cos(tilt), spec["table_z"] + float(study.z[k])),
            orientation=(1.0, 0.0, 0.0, 0.0, float(np.cos(tilt)), float(np.sin(tilt))),
            spacing=study.spacing, instance=(n - k) if spec["descending"] else (k + 1),
            encoding=spec["encoding"], window_multi=spec["window_multi"])
        write_slice(out / "stage_2_train" / f"{image_id}.dcm", study.hu[k], info, study.fov_radius_px)
        if study.labels[k].any():
            write_mask(mask_path(out, image_id), study.masks[k])
        images.append([image_id, *study.labels[k].astype(int).tolist()])
    record = dict(spec, slices=n, spacing=round(study.spacing, 6),
                  positive_slices={s: int(study.labels[:, i].sum()) for i, s in enumerate(SUBTYPES)},
                  lesions=[type(lesion).__name__ for lesion in study.lesions], images=images)
    tmp = done.with_name(done.name + ".part")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, done)
    return record


def _done_marker(out: Path, spec: dict) -> Path:
    return out / ".progress" / f"{spec['study']}.json"


def _finished(out: Path, spec: dict) -> dict | None:
    """The record of a study written before, if its marker and every file it lists (slices, and masks of the
    slices with blood) are on disk; None otherwise: the study is drawn again, to the same bytes."""
    done = _done_marker(out, spec)
    if not done.exists():
        return None
    record = json.loads(done.read_text())
    paths = [out / "stage_2_train" / f"{image_id}.dcm" for image_id, *_ in record["images"]]
    paths += [mask_path(out, image_id) for image_id, *flags in record["images"] if any(flags)]
    return record if all(path.is_file() for path in paths) else None


def make_cohort(out_dir: str | os.PathLike, n_studies: int, seed: int = 0, matrix: int = 512,
                prevalence: float = 0.5, odd_matrix_fraction: float = 0.05, subslices: int = 5,
                n_corrupt: int = 1, workers: int | None = None, progress: bool = True,
                log=None) -> dict:
    """Write a synthetic head-CT cohort in the RSNA layout.

    Args:
        out_dir: folder to write; a run interrupted there resumes where it stopped (same parameters only).
        n_studies: number of studies (one series each); about a tenth are follow-ups of an earlier patient.
        seed: drives everything; the same seed (and parameters) gives byte-identical files.
        matrix: rows = columns (512 as RSNA); ``odd_matrix_fraction`` of the studies get 3/4 of it.
        prevalence: share of studies with a haemorrhage; every subtype appears once there are five of them.
        subslices: ~1 mm sub-slices averaged into each 5 mm slice.
        n_corrupt: slices written truncated, as the real download's ``ID_6431af929``: readers must skip them.
        workers: processes (default: CPU count).
        progress: show a progress bar.
        log: called with one line saying how many studies were drawn and how many found complete (None: quiet).

    Returns:
        The manifest (also written to ``manifest.json``).
    """
    out = Path(out_dir)
    params = dict(n_studies=n_studies, seed=seed, matrix=matrix, prevalence=prevalence,
                  odd_matrix_fraction=odd_matrix_fraction, subslices=subslices, n_corrupt=n_corrupt, drawing=DRAWING)
    (out / ".progress").mkdir(parents=True, exist_ok=True)
    stamp = out / ".progress" / "params.json"
    if stamp.exists() and json.loads(stamp.read_text()) != params:
        raise ValueError(f"{out} holds a cohort made with other parameters ({stamp.read_text()}); "
                         "choose another folder or delete this one")
    stamp.write_text(json.dumps(params))
    (out / "stage_2_train").mkdir(exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)

    plan = plan_cohort(n_studies, seed, matrix, prevalence, odd_matrix_fraction)
    found = {spec["study"]: _finished(out, spec) for spec in plan}  # a resumed run draws only what is missing
    todo = [spec for spec in plan if found[spec["study"]] is None]
    drawn = dict(zip((spec["study"] for spec in todo), _write_studies(todo, out, subslices, workers, progress)))
    records = [found[spec["study"]] or drawn[spec["study"]] for spec in plan]
    if log is not None:
        log(f"{len(todo)} of {len(plan)} studies drawn, {len(plan) - len(todo)} found complete")
    images = [row for record in records for row in record["images"]]
    ids = [row[0] for row in images]
    if len(set(ids)) != len(ids):
        raise RuntimeError("image ID collision; choose another seed")
    corrupt = _corrupt(out, records, n_corrupt)
    _write_labels(out / "stage_2_train.csv", images, np.random.default_rng(seed))
    manifest = _manifest(params, records, images, corrupt)
    tmp = out / "manifest.json.part"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, out / "manifest.json")
    return manifest


def _write_studies(plan: list[dict], out: Path, subslices: int, workers: int | None, progress: bool) -> list[dict]:
    """Render and write every planned study (in processes); their records, in plan order."""
    from tqdm import tqdm  # the console bar: tqdm.auto warns in a kernel without ipywidgets

    n = len(plan)
    workers = max(1, min(workers or os.cpu_count() or 1, n))
    bar = dict(total=n, desc="cohort", unit="study", disable=not progress)
    if workers == 1:
        return [_write_study(spec, str(out), subslices) for spec in tqdm(plan, **bar)]
    with process_pool(workers) as pool:
        return list(tqdm(pool.map(_write_study, plan, [str(out)] * n, [subslices] * n), **bar))


def _manifest(params: dict, records: list[dict], images: list, corrupt: list[str]) -> dict:
    """What the cohort holds: its parameters, counts per label, subtype and encoding, and every study."""
    from .. import __version__

    counts = {label: 0 for label in LABELS}
    for _, *flags in images:
        counts["any"] += int(any(flags))
        for name, flag in zip(SUBTYPES, flags):
            counts[name] += flag
    return dict(
        generator="ichlib.phantom", version=__version__, parameters=params,
        n_images=len(images), n_studies=params["n_studies"], n_patients=len({r["patient"] for r in records}),
        label_counts=counts,
        positive_studies={s: sum(s in r["subtypes"] for r in records) for s in SUBTYPES},
        encodings={e: sum(r["encoding"] == e for r in records) for e in ENCODINGS},
        corrupt=corrupt,
        studies=[{k: v for k, v in r.items() if k not in ("images", "seed")} for r in records],
    )


def _corrupt(out: Path, records: list[dict], n_corrupt: int) -> list[str]:
    """Truncate the top slice (no brain, label 0) of the last studies, as one real RSNA file is."""
    corrupt = []
    for record in records[::-1][:n_corrupt]:
        image_id = record["images"][-1][0]
        path = out / "stage_2_train" / f"{image_id}.dcm"
        data = path.read_bytes()
        if len(data) > 300:
            path.write_bytes(data[:300])
        corrupt.append(image_id)
    return corrupt


def _write_labels(path: Path, images: list[list], rng: np.random.Generator) -> None:
    """The six-row form, images in random order, with a couple of exact duplicate blocks as the real file has."""
    order = rng.permutation(len(images))
    dupes = set(order[: min(2, len(order))].tolist())
    lines = ["ID,Label"]
    for i in order:
        image_id, *flags = images[i]
        value = dict(zip(SUBTYPES, flags), any=int(any(flags)))
        block = [f"{image_id}_{name},{value[name]}" for name in KAGGLE_ORDER]
        lines += block * (2 if i in dupes else 1)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)

