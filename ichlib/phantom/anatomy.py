"""A synthetic adult head: scalp, skull, brain, CSF spaces, ventricles, deep grey matter and skull base.

Every structure is an implicit 3-D shape in the head frame (see :mod:`.geometry`), so any slice of any thickness
and tilt can be sampled from it. Attenuations follow ``docs/phantom.md`` (HU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import F32, Frame, Push, ellipsoid, segment_distance, touches

AIR, FAT, SKIN, CSF, WHITE, GREY, DEEP_GREY = -1000.0, -80.0, 35.0, 8.0, 30.0, 39.0, 34.0
# Core densities (HU) of the physiological calcifications, drawn uniformly (docs/phantom-mimics.md).
PINEAL_HU, CHOROID_HU, FALX_PLAQUE_HU = (70.0, 200.0), (60.0, 160.0), (80.0, 250.0)
# The dural venous sinuses on unenhanced CT: mean 43 HU, range 25-54 over 122 patients [6]; 52.5 +- 2.9 HU in 70
# controls [7]; none of 166 normal scans above 70 HU [8] (docs/phantom-mimics.md).
SINUS_HU_MEAN, SINUS_HU_SD, SINUS_HU_RANGE = 46.0, 6.0, (28.0, 62.0)


def _sinuses_of(rng: np.random.Generator) -> dict:
    """A head's venous sinuses, from their own stream (``rng.spawn``), so that adding them left every other draw
    of the cohort (heads, lesions, noise) as it was: a before/after comparison sees the sinuses alone."""
    return {"sinus_hu": float(np.clip(rng.normal(SINUS_HU_MEAN, SINUS_HU_SD), *SINUS_HU_RANGE)),
            "sinus_size": float(rng.uniform(0.8, 1.25))}


@dataclass(frozen=True)
class Head:
    """One patient's head; every field in mm or radians. Use :meth:`sample` to draw one."""

    axes: tuple[float, float, float]  # inner-table semi-axes: LR, AP, SI
    skull: float                      # mean skull thickness
    scalp: float
    skull_wave: tuple[float, float, float, float]  # amplitude and phase of the thickness variation (phi, psi)
    shift: tuple[float, float]        # in-plane offset of the head in the field of view
    rotation: float                   # in-plane rotation
    tilt: float                       # gantry tilt
    rim: float                        # CSF rim between brain and inner table
    ribbon: float                     # cortical grey matter thickness
    ventricle_scale: float            # ventricle size (atrophy, age)
    sulci: tuple[float, ...]          # frequencies and phases of the sulcal pattern
    white_hu: float
    grey_hu: float
    falx_hu: float                    # a dense falx is a known mimic of blood
    calcifications: tuple[tuple[str, float], ...] = field(default=())  # (site, HU) of mimics present
    beam_hardening: float = 10.0      # HU of the dark band between the petrous bones
    sinus_hu: float = 45.0            # the dural venous sinuses: flowing blood, as dense as a thin bleed
    sinus_size: float = 1.0           # their calibre, relative to the typical adult's

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Head":
        a, b, c = rng.uniform(70, 78), rng.uniform(88, 98), rng.uniform(76, 86)
        sites = []
        # The core density of each calcification; partial volume and blur bring a small one's brightest pixel
        # down to about 60-150 HU on a 5 mm slice (docs/phantom-mimics.md: 67 HU median, 50-110 IQR [4]).
        if rng.random() < 0.6:
            sites.append(("pineal", rng.uniform(*PINEAL_HU)))
        if rng.random() < 0.5:
            sites.append(("choroid", rng.uniform(*CHOROID_HU)))
        if rng.random() < 0.25:
            sites.append(("falx", rng.uniform(*FALX_PLAQUE_HU)))
        return cls(
            axes=(a, b, c),
            skull=rng.uniform(5.5, 8.0),
            scalp=rng.uniform(3.0, 6.0),
            skull_wave=(rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi)),
            shift=(rng.normal(0, 4), rng.normal(0, 4)),
            rotation=np.deg2rad(rng.normal(0, 5)),
            tilt=np.deg2rad(rng.uniform(-8, 8)),
            rim=rng.uniform(0.8, 2.2),
            ribbon=rng.uniform(2.0, 4.0),
            ventricle_scale=rng.uniform(0.8, 1.4),
            sulci=(rng.integers(11, 17), rng.uniform(0.8, 1.6), rng.integers(2, 4), rng.uniform(0, 2 * np.pi),
                   rng.uniform(0, 2 * np.pi), rng.integers(6, 10), rng.uniform(0.8, 1.6), rng.integers(2, 5),
                   rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi), rng.integers(3, 7), rng.uniform(0, 2 * np.pi)),
            white_hu=rng.uniform(27, 32),
            grey_hu=rng.uniform(36, 42),
            falx_hu=rng.uniform(45, 70) if rng.random() < 0.8 else rng.uniform(75, 95),
            calcifications=tuple(sites),
            beam_hardening=rng.uniform(5, 20),
            **_sinuses_of(rng.spawn(1)[0]),
        )

    # The stack runs from the skull base to the vertex.
    def stack(self, rng: np.random.Generator, thickness: float = 5.0) -> np.ndarray:
        """Slice centres (z, mm) from below the skull base to just above the vertex."""
        c = self.axes[2]
        z0 = -c * rng.uniform(0.55, 0.68)
        top = c + self.skull + self.scalp
        return np.arange(z0, top, thickness, dtype=np.float64)

    def extent(self) -> float:
        """Largest in-plane half-size of the head (mm), to size the field of view."""
        return max(self.axes[:2]) + self.skull + 1.6 + self.scalp + np.hypot(*self.shift)

    def skull_thickness(self, frame: Frame) -> np.ndarray:
        a1, p1, a2, p2 = self.skull_wave
        t = F32(self.skull) + F32(a1) * np.sin(2 * frame.phi + F32(p1)) + F32(a2) * np.cos(3 * frame.psi + F32(p2))
        return np.clip(t, 4.0, 10.0)

    # Lesions and the app share these: the CSF spaces blood can fill and the ventricles.
    def sulcal_field(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        """A radial groove pattern: CSF where ``|s| < width`` and ``depth < s_depth``."""
        k1, a1, k2, p1, p2, k3, a3, k4, p3, p4, k5, p5 = self.sulci
        # The depth term bends each groove as it runs inwards, so sulci are not straight spokes.
        s = (np.sin(F32(k1) * frame.phi + F32(a1) * np.sin(F32(k2) * frame.psi + F32(p1)) + F32(p2)
                    + F32(0.35) * np.sin(frame.depth * F32(0.4) + F32(p1)))
             + F32(0.6) * np.sin(F32(k3) * frame.psi + F32(a3) * np.sin(F32(k4) * frame.phi + F32(p3)) + F32(p4)))
        s_depth = F32(5) + F32(10) * (F32(0.5) + F32(0.5) * np.sin(F32(k5) * frame.phi + F32(p5) + frame.psi))
        return s, s_depth


@dataclass
class Tissue:
    """One rendered (sub-)slice: attenuation and the regions lesions need."""

    hu: np.ndarray          # float32 HU
    brain: np.ndarray       # inside the inner table (bool)
    csf_space: np.ndarray   # sulci, rim, fissures, cisterns: where subarachnoid blood goes
    ventricles: np.ndarray  # the ventricular system
    bone: np.ndarray


def _n(head: Head, u: float, v: float, w: float) -> tuple[float, float, float]:
    """A point given as fractions of the inner-table semi-axes, in mm."""
    a, b, c = head.axes
    return (u * a, v * b, w * c)


def ventricle_parts(head: Head) -> list[tuple[tuple, tuple]]:
    """(centre, semi-axes) in mm of the ellipsoids whose union is the ventricular system."""
    k = head.ventricle_scale
    parts = []
    for s in (-1, 1):
        parts += [
            (_n(head, 0.11 * s, 0.30, 0.16), (6.0 * k, 11.0, 8.0)),       # frontal horn
            (_n(head, 0.12 * s, 0.02, 0.24), (4.5 * k, 26.0, 6.0 * k)),   # body
            (_n(head, 0.22 * s, -0.36, 0.12), (6.5 * k, 13.0, 8.0)),      # atrium / occipital horn
            (_n(head, 0.42 * s, -0.05, -0.20), (3.0 * k, 16.0, 3.5)),     # temporal horn
        ]
    parts += [
        (_n(head, 0.0, -0.02, 0.02), (1.4 * k, 12.0, 8.0)),               # third ventricle (a slit)
        (_n(head, 0.0, -0.38, -0.44), (5.0, 3.5, 5.0)),                   # fourth ventricle
    ]
    return parts


def render(head: Head, frame: Frame, pushes: tuple[Push, ...] = ()) -> Tissue:
    """Attenuation of every pixel of one (sub-)slice, before blur and noise.

    Args:
        head: the patient.
        frame: the pixels' head-frame coordinates.
        pushes: mass effect of lesions, applied to the brain's inner structures (not to skull or scalp).
    """
    hu, bone = _shell(head, frame)
    brain = frame.depth >= 0
    inner = np.flatnonzero(brain)  # the brain's structures are drawn on its own pixels only
    inside = frame.subset(inner)
    inner_hu, csf_space, ventricles, dense = _brain(head, inside, pushes)
    hu.ravel()[inner] = inner_hu
    masks = []
    for values in (csf_space, ventricles, dense):
        full = np.zeros(hu.shape, bool)
        full.ravel()[inner] = values
        masks.append(full)
    csf_space, ventricles, dense = masks
    return Tissue(hu=hu, brain=brain, csf_space=csf_space & ~ventricles, ventricles=ventricles, bone=bone | dense)


def _shell(head: Head, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Air, scalp (fat under a thin skin) and skull (dense tables, lighter diploe): HU and the bone mask."""
    depth = frame.depth
    t = head.skull_thickness(frame)
    hu = np.full(depth.shape, AIR, dtype=F32)
    scalp = (depth < -t) & (depth >= -t - F32(head.scalp))
    hu[scalp] = FAT
    hu[scalp & (depth < -t - F32(head.scalp - 1.0))] = SKIN
    bone = (depth < 0) & (depth >= -t)
    f = -depth[bone] / t[bone]
    hu[bone] = F32(650) + F32(850) * (np.exp(-(f / F32(0.22)) ** 2) + np.exp(-((F32(1) - f) / F32(0.22)) ** 2))
    return hu, bone


def _csf_spaces(head: Head, frame: Frame, x, y, z) -> tuple[np.ndarray, np.ndarray | None]:
    """The CSF spaces outside the ventricles (the rim, sulci, the interhemispheric and Sylvian fissures, the basal
    cisterns) at the pushed coordinates, and the interhemispheric fissure (None where this slab misses it)."""
    a, b, c = head.axes
    depth = frame.depth
    csf_space = depth < F32(head.rim)
    s, s_depth = head.sulcal_field(frame)
    csf_space |= (np.abs(s) < F32(0.13)) & (depth < s_depth)

    # Interhemispheric fissure above the corpus callosum, with the falx in it.
    if touches(frame, 0.2 * c, 1.2 * c):
        fissure = (np.abs(x) < F32(1.6)) & (depth < F32(38)) & (z > F32(-0.25 * c))
        csf_space |= fissure & (np.abs(x) >= F32(0.5))
    else:
        fissure = None

    # Sylvian fissures: near-vertical CSF clefts running in from the lateral surface, forwards and inwards.
    if touches(frame, 0.0, 0.18 * c):
        level = np.abs(z) < F32(0.16 * c)
        for s_ in (-1, 1):
            cleft = segment_distance(x, y, (0.95 * a * s_, 0.02 * b), (0.42 * a * s_, 0.22 * b)) < F32(1.2)
            csf_space |= level & cleft

    # Basal cisterns ring the midbrain.
    cz = -0.22 * c
    if touches(frame, cz, 0.08 * c):
        ring = np.sqrt((x / F32(0.17 * a)) ** 2 + ((y + F32(0.05 * b)) / F32(0.15 * b)) ** 2)
        slab = np.abs(z - F32(cz)) < F32(0.07 * c)
        csf_space |= slab & (((ring > 0.62) & (ring < 1.0)) | (ellipsoid(x, y, z, _n(head, 0, 0.14, -0.22), (9, 6, 5)) < 1))

    return csf_space, fissure


def _brain(head: Head, frame: Frame, pushes: tuple[Push, ...]) -> tuple[np.ndarray, ...]:
    """HU of pixels inside the inner table (``frame`` holds only those), their CSF spaces, ventricles and bone
    (the skull base; calcifications are not counted as bone)."""
    depth = frame.depth
    brain = np.ones(depth.shape, bool)
    hu = np.full(depth.shape, F32(head.white_hu), dtype=F32)
    # Inner structures move with mass effect; the skull does not.
    x, y, z = frame.x, frame.y, frame.z
    for push in pushes:
        x, y, z = push.apply(x, y, z)

    hu[depth < F32(head.rim + head.ribbon)] = F32(head.grey_hu)

    csf_space, fissure = _csf_spaces(head, frame, x, y, z)

    deep = np.zeros(depth.shape, bool)
    for s_ in (-1, 1):
        for centre, axes in (((0.16 * s_, 0.22, 0.12), (7, 10, 9)), ((0.30 * s_, 0.04, 0.02), (8, 15, 10)),
                             ((0.11 * s_, -0.13, 0.02), (8, 11, 9))):
            centre = _n(head, *centre)
            if touches(frame, centre[2], axes[2]):
                deep |= ellipsoid(x, y, z, centre, axes) < 1
    hu[deep] = DEEP_GREY

    ventricles = np.zeros(depth.shape, bool)
    for centre, axes in ventricle_parts(head):
        if touches(frame, centre[2], axes[2]):
            ventricles |= ellipsoid(x, y, z, centre, axes) < 1

    hu[csf_space] = CSF
    hu[ventricles] = CSF - 3
    if fissure is not None:
        hu[fissure & (np.abs(x) < F32(0.5))] = F32(head.falx_hu)
    hu[venous_sinuses(head, frame)] = F32(head.sinus_hu)

    _skull_base(head, frame, hu, brain)
    dense = hu > 300
    _calcifications(head, x, y, z, frame, hu)
    return hu, csf_space, ventricles, dense


def venous_sinuses(head: Head, frame: Frame) -> np.ndarray:
    """The dural venous sinuses (bool, per pixel of ``frame``, which holds only pixels inside the inner table).

    Drawn where they lie, in the dura against the inner table, so they do not move with a lesion's mass effect:
    the superior sagittal sinus, a triangle on the midline over the top of the head, larger towards the back;
    the confluence and the transverse sinuses, along the inner table at the back of the head at the level of the
    tentorium; the sigmoid sinuses, down from them towards the skull base; the straight sinus, a tube on the
    midline from the confluence up and forward to the pineal region.
    """
    a, b, c = head.axes
    k = F32(head.sinus_size)
    x, y, z, depth = frame.x, frame.y, frame.z, frame.depth
    found = np.zeros(depth.shape, bool)
    z_t = -0.22 * c  # the tentorium's level at the back of the head, where the transverse sinuses run
    if touches(frame, 0.45 * c, 0.7 * c):  # superior sagittal: above the skull base, front to back
        height = k * (F32(4.0) + F32(2.0) * np.clip(-y / F32(b), 0, 1))  # mm deep; wider behind
        half_width = F32(0.7) * (height - depth)
        above = np.where(y > 0, z > F32(0.05 * c), z > F32(z_t))
        found |= above & (depth < height) & (np.abs(x) < half_width)
    if touches(frame, z_t, 0.08 * c):  # the confluence and the transverse sinuses
        half_height = k * F32(3.5) - F32(0.5) * depth
        found |= (y < F32(-0.35 * b)) & (depth < k * F32(5.0)) & (np.abs(z - F32(z_t)) < half_height)
    if touches(frame, (z_t - 0.5 * c) / 2, (z_t + 0.5 * c) / 2):  # the sigmoid sinuses, from z_t down to -0.5 c
        sigmoid = (z < F32(z_t)) & (z > F32(-0.5 * c)) & (np.abs(x) > F32(0.45 * a))
        found |= sigmoid & (y > F32(-0.6 * b)) & (y < F32(-0.25 * b)) & (depth < k * F32(4.5))
    if touches(frame, (z_t + 0.05 * c) / 2, (0.05 * c - z_t) / 2 + 3):  # straight sinus
        along = segment_distance(y, z, (-b + 4.0, z_t + 3.0), (-0.35 * b, 0.05 * c))
        found |= np.sqrt(x * x + along * along) < k * F32(2.5)
    return found


def _skull_base(head: Head, frame: Frame, hu: np.ndarray, brain: np.ndarray) -> None:
    """Petrous ridges with mastoid air cells, the clivus, the sphenoid sinus and beam hardening, low in the stack."""
    a, b, c = head.axes
    x, y, z = frame.x, frame.y, frame.z
    if not touches(frame, -0.52 * c, 0.2 * c):
        return
    for s in (-1, 1):
        d = segment_distance(x, y, (0.55 * a * s, -0.28 * b), (0.18 * a * s, 0.04 * b))
        height = np.abs(z + F32(0.50 * c) - F32(0.12) * (np.abs(x) - F32(0.4 * a))) < F32(0.09 * c)
        petrous = brain & height & (d < F32(4.5))
        hu[petrous] = F32(1250)
        cells = petrous & (np.abs(x) > F32(0.48 * a)) & (np.sin(x * F32(1.3)) * np.sin(y * F32(1.3)) * np.sin(z * F32(1.1)) > 0.25)
        hu[cells] = F32(-850)
    clivus = brain & (ellipsoid(x, y, z, _n(head, 0, 0.08, -0.55), (7, 6, 0.13 * c)) < 1)
    hu[clivus] = F32(1100)
    sinus = ellipsoid(x, y, z, _n(head, 0, 0.42, -0.48), (11, 9, 9))
    hu[brain & (sinus < 1.35)] = F32(900)
    hu[brain & (sinus < 1)] = F32(-900)
    # Beam hardening darkens a band of brain between the petrous bones (a classic mimic-killer and mimic).
    band = brain & (np.abs(y + F32(0.12 * b)) < F32(5)) & (np.abs(z + F32(0.45 * c)) < F32(0.1 * c)) & (hu < 100) & (hu > 0)
    hu[band] -= F32(head.beam_hardening)


def _calcifications(head: Head, x, y, z, frame: Frame, hu: np.ndarray) -> None:
    for site, value in head.calcifications:
        if site == "pineal":
            spots = [(_n(head, 0, -0.22, 0.05), (2.5, 2.5, 2.5))]
        elif site == "choroid":
            spots = [(_n(head, 0.22 * s, -0.36, 0.12), (2.5, 3.5, 2.5)) for s in (-1, 1)]
        else:  # a plaque on the falx
            spots = [(_n(head, 0, 0.35, 0.55), (0.8, 6.0, 3.0))]
        for centre, axes in spots:
            if touches(frame, centre[2], axes[2]):
                hu[ellipsoid(x, y, z, centre, axes) < 1] = F32(value)
