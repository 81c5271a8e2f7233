"""ichlib.phantom: the cohort on disk, determinism, labels vs masks, the subtypes' shapes, the HU round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from ichlib.phantom import make_cohort, mask_path, plan_cohort, read_mask, simulate_study
from ichlib.phantom.anatomy import Head, render
from ichlib.phantom.imaging import pixel_grid
from ichlib.phantom.dicom import ENCODINGS, SliceInfo, decoded_hu, write_slice
from ichlib.phantom.geometry import F32, Frame
from ichlib.phantom.lesions import Epidural, Intraventricular, Subdural
from ichlib.labels import LABELS, SUBTYPES
from ichlib.rsna import index_dicoms, read_hu, read_labels

SMALL = dict(n_studies=6, seed=3, matrix=80, prevalence=1.0, subslices=3, progress=False)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    manifest = make_cohort(out, workers=1, **SMALL)
    return out, manifest


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".progress" not in p.parts}


# ------------------------------------------------------------------------------------------------ on disk
def test_cohort_layout_reads_back_with_the_rsna_reader(cohort):
    out, manifest = cohort
    labels = read_labels(out / "stage_2_train.csv")
    index, failures = index_dicoms(out / "stage_2_train", workers=1, progress=False)
    assert [Path(p).stem for p, _ in failures] == manifest["corrupt"]
    assert set(index.index) | set(manifest["corrupt"]) == set(labels.index)
    assert len(labels) == manifest["n_images"]
    for path in index.path:
        assert read_hu(path).shape == (index.loc[Path(path).stem, "rows"], index.loc[Path(path).stem, "columns"])
    assert labels.sum().to_dict() == manifest["label_counts"]
    assert all(labels[s].sum() > 0 for s in LABELS), "every subtype present"
    assert set(manifest["encodings"]) == set(ENCODINGS) and min(manifest["encodings"].values()) >= 1


def test_labels_agree_with_masks(cohort):
    out, _ = cohort
    labels = read_labels(out / "stage_2_train.csv")
    for image_id, row in labels.iterrows():
        masks = read_mask(out, image_id)
        assert set(masks) == {s for s in SUBTYPES if row[s]}, image_id
        assert row["any"] == int(bool(masks))
        assert all(m.any() for m in masks.values())


def test_same_seed_same_bytes_whatever_the_workers(cohort, tmp_path):
    out, _ = cohort
    make_cohort(tmp_path / "again", workers=2, **SMALL)
    assert files(out) == files(tmp_path / "again")


def test_other_seed_other_cohort(cohort, tmp_path):
    out, _ = cohort
    make_cohort(tmp_path / "other", workers=1, **{**SMALL, "seed": 4, "n_studies": 2})
    assert (tmp_path / "other" / "stage_2_train.csv").read_bytes() != (out / "stage_2_train.csv").read_bytes()


def test_interrupted_run_resumes_and_refuses_other_parameters(cohort, tmp_path):
    out, manifest = cohort
    again = tmp_path / "resume"
    make_cohort(again, workers=1, **SMALL)
    # Lose a study's record and one of its files, as a kill mid-study would.
    study = manifest["studies"][0]
    (again / ".progress" / f"{study['study']}.json").unlink()
    index, _ = index_dicoms(again / "stage_2_train", workers=1, progress=False)
    Path(index[index.series == study["series"]].path.iloc[0]).unlink()
    make_cohort(again, workers=1, **SMALL)
    assert files(again) == files(out)
    # A finished cohort that lost a slice and a mask (a clean-up gone wrong): both studies drawn again, the same bytes.
    labels = read_labels(again / "stage_2_train.csv")
    first, second = (index[index.series == study["series"]] for study in manifest["studies"][:2])
    mask_path(again, next(i for i in first.index if labels.at[i, "any"])).unlink()
    Path(second.path.iloc[0]).unlink()
    said = []
    make_cohort(again, workers=1, log=said.append, **SMALL)
    assert files(again) == files(out)
    assert said == [f"2 of {SMALL['n_studies']} studies drawn, {SMALL['n_studies'] - 2} found complete"]
    with pytest.raises(ValueError, match="other parameters"):
        make_cohort(again, workers=1, **{**SMALL, "seed": 99})


def test_plan_covers_every_subtype_and_encoding():
    plan = plan_cohort(10, seed=0, prevalence=0.5)
    assert {s for p in plan for s in p["subtypes"]} == set(SUBTYPES)
    assert {p["encoding"] for p in plan} == set(ENCODINGS)
    assert sum(bool(p["subtypes"]) for p in plan) == 5
    with pytest.raises(ValueError, match="prevalence"):
        plan_cohort(10, seed=0, prevalence=1.5)


def test_cli_writes_a_cohort(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ichlib", "cohort", "--out", str(tmp_path / "c"), "--studies", "1",
                             "--seed", "0", "--matrix", "48", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["n_studies"] == 1 and "cohort: 1 of 1 studies drawn, 0 found complete" in result.stdout


# ------------------------------------------------------------------------------------------------ HU
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_round_trip_within_one_hu(tmp_path, encoding):
    study = simulate_study(np.random.default_rng(0), ("subdural",), matrix=64, subslices=2)
    k = len(study.z) // 2
    info = SliceInfo("ID_00000abcd", "ID_p", "ID_s", "ID_se", (0, 0, 0), (1, 0, 0, 0, 1, 0), study.spacing, 1,
                     encoding, encoding == "u12")
    path = tmp_path / "ID_00000abcd.dcm"
    write_slice(path, study.hu[k], info, study.fov_radius_px)
    hu = read_hu(path)
    expected = decoded_hu(study.hu[k], encoding, study.fov_radius_px)
    assert np.abs(hu - expected).max() == 0
    inside = (study.hu[k] > -1000) & (study.hu[k] < 2000) & (expected != -1000)
    assert np.abs(hu - study.hu[k])[inside].max() <= 1.0


def test_brain_and_noise_like_real_ct():
    study = simulate_study(np.random.default_rng(1), (), matrix=256, subslices=3)
    mid = study.hu[len(study.z) // 2]
    brain = mid[(mid > 15) & (mid < 50)]
    assert 26 <= np.median(brain) <= 38
    # Noise: the flattest 12 x 12 brain patches hold noise alone (real CT: SD ~3 HU).
    windows = np.lib.stride_tricks.sliding_window_view(mid, (12, 12))[::6, ::6]
    inside = (windows.min(axis=(-1, -2)) > 15) & (windows.max(axis=(-1, -2)) < 50)
    sds = windows.std(axis=(-1, -2))[inside]
    assert 2.0 <= np.percentile(sds, 10) <= 5.0
    assert 18 <= len(study.z) <= 40


# ------------------------------------------------------------------------------------------------ shapes
def positive_slices(subtype, seeds, matrix=96):
    out = []
    for seed in seeds:
        study = simulate_study(np.random.default_rng(seed), (subtype,), matrix=matrix, subslices=3)
        out.append(study)
    return out


def test_epidural_lens_touches_the_inner_table():
    for study in positive_slices("epidural", range(3)):
        bit = 1 << SUBTYPES.index("epidural")
        for k in np.flatnonzero(study.labels[:, SUBTYPES.index("epidural")]):
            mask = (study.masks[k] & bit) > 0
            assert (study.hu[k][binary_dilation(mask, iterations=2)] > 400).any(), "lens against bone"


def test_subdural_spans_more_slices_than_epidural():
    def span(subtype):
        i = SUBTYPES.index(subtype)
        return np.mean([s.labels[:, i].sum() for s in positive_slices(subtype, range(8), matrix=64)])

    assert span("subdural") > span("epidural")
    assert 1 <= span("epidural") <= 7


def test_subdural_stays_on_one_side_and_epidural_is_thickest_inside():
    rng = np.random.default_rng(5)
    head = Head.sample(rng)
    x, y = pixel_grid(head, 128, 1.8)
    sdh = Subdural.sample(np.random.default_rng(2), head)
    edh = Epidural.sample(np.random.default_rng(2), head)
    for lesion in (sdh, edh):
        frame = Frame.build(x, y, np.full_like(x, F32(lesion.z_centre)), head.axes)
        occ = lesion.paint(head, frame, render(head, frame))
        assert occ is not None and occ.any()
        side = np.sign(frame.x[occ])
        assert (side == side[0]).all(), "never across the midline"
    # Epidural: thickness falls from the centre of the lens to its edge.
    assert edh._profile(np.float32(0)) > edh._profile(np.float32(0.8)) > 0


def test_intraventricular_blood_lies_in_the_ventricles():
    rng = np.random.default_rng(7)
    head = Head.sample(rng)
    lesion = Intraventricular.sample(rng, head)
    x, y = pixel_grid(head, 128, 1.8)
    frame = Frame.build(x, y, np.full_like(x, F32(lesion.z_centre)), head.axes)
    tissue = render(head, frame)
    occ = lesion.paint(head, frame, tissue)
    assert occ.any() and not (occ & ~tissue.ventricles).any()
    for study in positive_slices("intraventricular", range(2)):
        i = SUBTYPES.index("intraventricular")
        for k in np.flatnonzero(study.labels[:, i]):
            rows, cols = np.nonzero(study.masks[k] & (1 << i))
            centre = (study.hu.shape[-1] - 1) / 2
            # ventricles are central: blood no further than ~a third of the head from the middle
            assert np.abs(cols - centre).mean() * study.spacing < 35


def test_subarachnoid_is_thin_so_partial_volume_lowers_its_hu():
    for study in positive_slices("subarachnoid", range(2), matrix=256):
        i = SUBTYPES.index("subarachnoid")
        lesion = next(les for les in study.lesions if les.subtype == "subarachnoid")
        ks = np.flatnonzero(study.labels[:, i])
        assert len(ks) >= 1
        # away from the skull, whose blur would brighten the rim
        away = [(study.masks[k] & (1 << i) > 0) & ~binary_dilation(study.hu[k] > 200, iterations=3) for k in ks]
        values = np.concatenate([study.hu[k][m] for k, m in zip(ks, away)])
        assert len(values) and values.mean() < lesion.hu - 5


def test_intraparenchymal_has_a_dark_oedema_rim():
    for study in positive_slices("intraparenchymal", range(3), matrix=128):
        i = SUBTYPES.index("intraparenchymal")
        k = np.argmax([(m & (1 << i)).astype(bool).sum() for m in study.masks])
        mask = (study.masks[k] & (1 << i)) > 0
        ring = binary_dilation(mask, iterations=3) & ~binary_dilation(mask, iterations=1)
        assert study.hu[k][mask].mean() > study.hu[k][ring].mean() + 10


def test_mask_read_back(cohort):
    out, _ = cohort
    path = next((out / "masks").glob("*.npy.gz"))
    masks = read_mask(out, path.name.split(".")[0])
    assert masks and all(m.dtype == bool for m in masks.values())
    assert read_mask(out, "ID_000000000") == {}


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_rendering_the_head_pixels_alone_draws_what_the_whole_grid_draws(seed):
    """The fast path renders only ``head_pixels``: everything outside them must be air on the whole grid too,
    and the pixels inside must come out the same as when the whole grid is rendered."""
    from ichlib.phantom.anatomy import AIR
    from ichlib.phantom.imaging import head_pixels

    rng = np.random.default_rng(seed)
    head = Head.sample(rng)
    x, y = pixel_grid(head, 256, 2.1 * head.extent() / 256)
    for z0 in head.stack(rng)[::3]:
        z = F32(z0) + y * F32(np.tan(head.tilt))
        frame = Frame.build(x, y, z, head.axes)
        whole = render(head, frame).hu
        inside = head_pixels(head, x, y, z)
        outside = np.ones(x.size, bool)
        outside[inside] = False
        assert (whole.ravel()[outside] == AIR).all()
        part = render(head, frame.subset(inside))
        np.testing.assert_array_equal(part.hu, whole.ravel()[inside])


@pytest.mark.parametrize("args, message", [(["--matrix", "0"], "--matrix 0: expected at least 32"),
                                           (["--seed", "-1"], "--seed -1: expected 0 or more"),
                                           (["--studies", "0"], "--studies 0: expected at least 1"),
                                           (["--prevalence", "2"], "--prevalence 2.0: expected in [0, 1]")])
def test_cli_refuses_bad_values_in_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "c"
    result = subprocess.run([sys.executable, "-m", "ichlib", "cohort", "--out", str(out), "--studies", "1", *args,
                             "--quiet"], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_refuses_a_file_as_the_cohort_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, "-m", "ichlib", "cohort", "--out", str(tmp_path / "notes.txt"),
                             "--studies", "1", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 2 and "a file is there" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------------ mimics
def _slab(head, z, n=200):
    """A frame of a plane at height z (mm), covering the head, and its pixels inside the inner table."""
    side = np.linspace(-110, 110, n, dtype=np.float32)
    x, y = np.meshgrid(side, side)
    frame = Frame.build(x, y, np.full_like(x, F32(z)), head.axes)
    return frame, frame.depth >= 0


def test_venous_sinuses_lie_in_the_dura_and_take_the_heads_sinus_density():
    from ichlib.phantom.anatomy import venous_sinuses

    head = Head.sample(np.random.default_rng(3))
    a, b, c = head.axes
    frame, inside = _slab(head, 0.5 * c)  # above the ventricles: the superior sagittal sinus, front and back
    found = venous_sinuses(head, frame) & inside
    assert found.any() and (frame.depth[found] < 8 * head.sinus_size).all()
    assert (np.abs(frame.x[found]) < 6).all()  # on the midline
    assert found[frame.y < 0].sum() > found[frame.y > 0].sum()  # wider behind than in front
    tissue = render(head, frame)
    assert np.allclose(tissue.hu[found & ~tissue.bone], head.sinus_hu)
    # at the tentorium's level the transverse sinuses run along the back of the inner table, not in front
    frame, inside = _slab(head, -0.22 * c)
    found = venous_sinuses(head, frame) & inside
    assert found.any() and (frame.y[found] < -0.3 * b).all() and (np.abs(frame.x[found]) > 0.3 * a).any()
    frame, inside = _slab(head, 0.0)
    deep = inside & (frame.depth > 25) & (np.abs(frame.x) > 10)
    assert not (venous_sinuses(head, frame) & deep).any()  # never inside the brain away from the midline


def test_sinus_density_follows_the_literature_and_leaves_every_other_draw_as_it_was(monkeypatch):
    from ichlib.phantom import anatomy

    heads = [Head.sample(np.random.default_rng(seed)) for seed in range(300)]
    hu = np.array([h.sinus_hu for h in heads])
    assert 28 <= hu.min() and hu.max() <= 62 and 43 <= hu.mean() <= 49  # 25-54, mean 43 [6]; 52.5 [7]; <= 70 [8]
    # the sinuses draw from their own stream: without them, the head and the next draw are the same
    rng = np.random.default_rng(7)
    with_sinuses, after = Head.sample(rng), rng.random()
    monkeypatch.setattr(anatomy, "_sinuses_of", lambda rng: {})
    rng = np.random.default_rng(7)
    without, after_without = Head.sample(rng), rng.random()
    assert after == after_without
    others = [k for k in vars(without) if not k.startswith("sinus")]
    assert len(others) > 10 and all(getattr(with_sinuses, k) == getattr(without, k) for k in others)


def test_calcifications_are_drawn_at_the_densities_partial_volume_leaves_them():
    from ichlib.phantom.anatomy import CHOROID_HU, FALX_PLAQUE_HU, PINEAL_HU

    heads = [Head.sample(np.random.default_rng(seed)) for seed in range(200)]
    ranges = {"pineal": PINEAL_HU, "choroid": CHOROID_HU, "falx": FALX_PLAQUE_HU}
    sites = [(site, value) for h in heads for site, value in h.calcifications]
    assert {site for site, _ in sites} == set(ranges)
    assert all(ranges[site][0] <= value <= ranges[site][1] for site, value in sites)
    assert max(value for _, value in sites) <= 250  # was up to 400: a small calcification is not that bright


def test_cli_without_out_writes_where_the_book_looks(tmp_path):
    env = {**os.environ, "ICHBOOK_DATA": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ichlib", "cohort", "--studies", "1", "--matrix", "48", "--quiet"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "phantom" / "studies1_seed0_matrix48_v2"  # store.phantom_key: the drawing in the name
    assert (folder / "manifest.json").exists() and str(folder) in result.stdout
    assert json.loads((folder / "manifest.json").read_text())["parameters"]["drawing"] == 2
    again = subprocess.run([sys.executable, "-m", "ichlib", "cohort", "--studies", "1", "--matrix", "48", "--quiet"],
                           capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "0 of 1 studies drawn, 1 found complete" in again.stdout, again.stdout
