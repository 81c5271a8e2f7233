"""One study imaged: a head and its lesions sampled into 5 mm slices (1 mm sub-slices averaged: partial volume),
blurred, with correlated noise; each slice's labels and masks where a bleed covers a real area.

The anatomy is ``anatomy``, the lesions ``lesions``; writing studies to disk is ``cohort``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from ..labels import SUBTYPES
from .anatomy import AIR, Head, render
from .geometry import F32, Frame, ellipsoid
from .lesions import Lesion, sample_lesions

THICKNESS = 5.0
MIN_AREA_MM2 = 7.0  # a slice is labelled only where its mask covers a real area (~30 px at 512 px)


@dataclass
class Study:
    """One simulated study in memory."""

    head: Head
    lesions: list[Lesion]
    z: np.ndarray        # slice centres in the head frame (mm)
    hu: np.ndarray       # (slices, rows, cols) float32, after partial volume, blur and noise
    masks: np.ndarray    # (slices, rows, cols) uint8 bit field over SUBTYPES, positive labels only
    labels: np.ndarray   # (slices, 5) bool over SUBTYPES
    spacing: float       # mm per pixel
    fov_radius_px: float


def pixel_grid(head: Head, matrix: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Head-frame x, y (mm) of every pixel: anterior at the top of the image, patient's left to the right."""
    centre = (matrix - 1) / 2
    coords = (np.arange(matrix, dtype=np.float32) - F32(centre)) * F32(spacing)
    xs, ys = np.meshgrid(coords, -coords)
    xs, ys = xs - F32(head.shift[0]), ys - F32(head.shift[1])
    cos, sin = F32(np.cos(head.rotation)), F32(np.sin(head.rotation))
    return cos * xs + sin * ys, -sin * xs + cos * ys


def head_pixels(head: Head, x: np.ndarray, y: np.ndarray, z: np.ndarray, margin: float = 5.0) -> np.ndarray:
    """Flat indices of the pixels that may lie in the head (scalp included) within ``margin`` mm; the rest is air.

    A pixel is in the head where it is within skull (at most 10 mm) plus scalp of the inner table along its ray,
    so within that distance of the inner-table ellipsoid; the ellipsoid grown by that distance and the margin
    holds every such pixel. Rendering only these is what makes the phantom fast: the head's outline covers
    about half of the field of view at its widest, and far less near the skull base and the vertex.
    """
    reach = 10.0 + head.scalp + margin
    grown = tuple(axis + reach for axis in head.axes)
    return np.flatnonzero(ellipsoid(x, y, z, (0.0, 0.0, 0.0), grown) <= 1)


@dataclass
class _Scene:
    """What every slice of one study is imaged from."""

    head: Head
    lesions: list[Lesion]
    x: np.ndarray
    y: np.ndarray
    phi: np.ndarray      # the in-plane azimuth: the same for every slice, computed once
    tilt: np.float32
    offsets: np.ndarray  # sub-slice positions within a slice (mm)
    tilt_range: tuple[np.float32, np.float32]  # least and greatest z shift the tilt gives a pixel of the grid


def _image_slice(scene: _Scene, zc: float, blur_px: float) -> tuple[np.ndarray, np.ndarray]:
    """One 5 mm slice at ``zc``: its HU after partial volume and blur (no noise), and each subtype's occupancy
    (how many sub-slices it fills at each pixel)."""
    head, x, y = scene.head, scene.x, scene.y
    n = len(scene.offsets)
    inside = head_pixels(head, x, y, F32(zc) + y * scene.tilt, margin=5.0 + THICKNESS / 2)  # the whole slab
    xs, ys, phis = x.flat[inside], y.flat[inside], scene.phi.flat[inside]
    y_tilt = ys * scene.tilt
    tilt_lo, tilt_hi = scene.tilt_range  # the whole grid's: each sub-slice keeps its full z extent
    pushes = tuple(lesion.push for lesion in scene.lesions if lesion.push is not None)
    acc = np.zeros(len(inside), np.float32)
    occupancy = np.zeros((len(SUBTYPES), len(inside)), np.float32)
    for dz in scene.offsets:
        frame = Frame.build(xs, ys, F32(zc + dz) + y_tilt, head.axes, phi=phis)
        frame.with_z_range((float(F32(zc + dz) + tilt_lo), float(F32(zc + dz) + tilt_hi)))
        tissue = render(head, frame, pushes)
        for lesion in scene.lesions:
            occ = lesion.paint(head, frame, tissue)
            if occ is not None:
                occupancy[SUBTYPES.index(lesion.subtype)] += occ
        acc += tissue.hu
    full = np.full(x.size, F32(AIR) * n, np.float32)  # outside the head every sub-slice is air
    full[inside] = acc
    full = (full / F32(n)).reshape(x.shape)
    # Blur only the head's box and a margin: beyond it the image is constant air, which blurring leaves alone.
    rows, cols = np.unravel_index(inside, x.shape)
    pad = int(np.ceil(4 * blur_px)) + 2
    box = (slice(max(rows.min() - pad, 0), rows.max() + pad + 1), slice(max(cols.min() - pad, 0), cols.max() + pad + 1))
    full[box] = gaussian_filter(full[box], blur_px)
    out = np.zeros((len(SUBTYPES), x.size), np.float32)
    out[:, inside] = occupancy
    return full, out.reshape(len(SUBTYPES), *x.shape)


def simulate_study(rng: np.random.Generator, subtypes: tuple[str, ...] = (), matrix: int = 512,
                   subslices: int = 5) -> Study:
    """Draw a head and its lesions, and image it as a stack of 5 mm slices.

    Args:
        rng: the study's own generator.
        subtypes: the haemorrhage subtypes this study has (empty: a negative study, mimics only).
        matrix: rows = columns of each slice.
        subslices: sub-slices averaged into each slice (partial volume across the 5 mm).
    """
    head = Head.sample(rng)
    lesions = sample_lesions(rng, head, tuple(subtypes))
    z = head.stack(rng, THICKNESS)
    spacing = max(rng.uniform(0.43, 0.49) * 512 / matrix, 2.1 * head.extent() / matrix)
    x, y = pixel_grid(head, matrix, spacing)
    tilt = F32(np.tan(head.tilt))
    shift = y * tilt
    scene = _Scene(head, lesions, x, y, np.arctan2(x, y), tilt,
                   (np.arange(subslices) + 0.5) / subslices * THICKNESS - THICKNESS / 2, (shift.min(), shift.max()))
    noise_sd = rng.uniform(2.5, 4.5)
    blur_px = 0.6 / spacing  # ~1.3 px at 0.46 mm
    bits = sorted({SUBTYPES.index(lesion.subtype) for lesion in lesions})

    hu = np.empty((len(z), matrix, matrix), np.float32)
    masks = np.zeros((len(z), matrix, matrix), np.uint8)
    labels = np.zeros((len(z), len(SUBTYPES)), bool)
    min_px = MIN_AREA_MM2 / spacing ** 2
    for k, zc in enumerate(z):
        slice_hu, occupancy = _image_slice(scene, zc, blur_px)
        noise = gaussian_filter(rng.standard_normal((matrix, matrix), dtype=np.float32), 0.8)
        slice_hu += noise * F32(noise_sd / noise.std())
        hu[k] = slice_hu
        for bit in bits:
            mask = occupancy[bit] >= subslices / 2
            if mask.sum() >= min_px:
                labels[k, bit] = True
                masks[k][mask] |= np.uint8(1 << bit)
    fov = min(matrix / 2, 2 * head.extent() / spacing / 2 * 1.05)
    return Study(head, lesions, z, hu, masks, labels, spacing, fov)
