"""The five haemorrhage subtypes, each drawn by the morphology that tells it apart on CT.

- epidural: a biconvex lens against the inner table, thickest in its centre, few slices;
- subdural: a thin crescent along the inner table over a wide arc (or along the falx), one side, many slices;
- intraparenchymal: an irregular blob inside the brain with a low-attenuation oedema rim and mass effect;
- intraventricular: blood in the ventricles, layering in the dependent (posterior) horns or filling them;
- subarachnoid: blood replacing CSF in sulci, fissures and cisterns over a region (thin: partial volume).

Each lesion paints its blood into a rendered slice and returns where it lies (the true mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import Head, Tissue
from .geometry import F32, Frame, Push, touches, wrap_angle


def _blood_hu(rng: np.random.Generator) -> float:
    # Mostly clotted blood; now and then the hard, near-isodense case (anaemia, hyperacute).
    return rng.uniform(42, 48) if rng.random() < 0.08 else rng.uniform(58, 80)


@dataclass(frozen=True)
class Lesion:
    subtype: str
    hu: float
    z_centre: float
    z_half: float  # bound of the lesion's extent in z (mm)
    push: Push | None = None  # its mass effect on the brain, if any

    def paint(self, head: Head, frame: Frame, tissue: Tissue) -> np.ndarray | None:
        """Write the blood into ``tissue.hu``; return the occupancy (bool) or None when the slice misses it."""
        if not touches(frame, self.z_centre, self.z_half):
            return None
        occ = self._occupancy(head, frame, tissue)
        tissue.hu[occ] = F32(self.hu)
        return occ

    def _occupancy(self, head: Head, frame: Frame, tissue: Tissue) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class Extraaxial(Lesion):
    """A collection between the inner table and the brain, shaped by a thickness profile over the surface."""

    phi: float = 0.0        # centre azimuth
    psi: float = 0.0        # centre elevation
    half_arc: float = 0.5   # half-extent along the surface, horizontally (radians of azimuth)
    half_height: float = 10.0  # half-extent along the surface, vertically (mm)
    thickness: float = 8.0  # greatest thickness (mm)
    side: int = 1

    def _profile(self, e: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _occupancy(self, head, frame, tissue):
        dphi = wrap_angle(frame.phi - F32(self.phi)) / F32(self.half_arc)
        dvert = (frame.psi - F32(self.psi)) * frame.radius / F32(self.half_height)
        e = dphi * dphi + dvert * dvert
        th = self._profile(np.minimum(e, F32(1)))
        # Never across the midline: the falx stops it.
        return tissue.brain & (e < 1) & (frame.depth < th) & (frame.x * F32(self.side) > F32(0.8))


def _surface_push(head: Head, phi: float, psi: float, thickness: float) -> Push:
    a, b, c = head.axes
    point = (a * np.cos(psi) * np.sin(phi), b * np.cos(psi) * np.cos(phi), c * np.sin(psi))
    return Push(point, thickness * 1.5, 0.25)


@dataclass(frozen=True)
class Epidural(Extraaxial):
    @classmethod
    def sample(cls, rng: np.random.Generator, head: Head) -> "Epidural":
        side = int(rng.choice([-1, 1]))
        phi, psi = side * np.deg2rad(rng.uniform(65, 125)), np.deg2rad(rng.uniform(-10, 30))
        r = head.axes[0]
        half_height = rng.uniform(5, 13)
        half_arc = rng.uniform(18, 35) / (r * np.cos(psi))
        z_c = r * np.sin(psi)
        thickness = rng.uniform(7, 18)
        return cls("epidural", _blood_hu(rng), z_c, half_height + 12, _surface_push(head, phi, psi, thickness),
                   phi, psi, half_arc, half_height, thickness, side)

    def _profile(self, e):
        return F32(self.thickness) * (F32(1) - e)  # a lens: thickest in the middle, edges meet the table


@dataclass(frozen=True)
class Subdural(Extraaxial):
    @classmethod
    def sample(cls, rng: np.random.Generator, head: Head) -> Lesion:
        side = int(rng.choice([-1, 1]))
        half_height = rng.uniform(13, 26)
        if rng.random() < 0.2:
            return FalxSubdural("subdural", _blood_hu(rng), head.axes[2] * rng.uniform(0.3, 0.5), half_height,
                                None, rng.uniform(-30, 30), rng.uniform(25, 50), rng.uniform(2, 4), side)
        phi, psi = side * np.deg2rad(rng.uniform(50, 130)), np.deg2rad(rng.uniform(0, 35))
        z_c = head.axes[2] * np.sin(psi)
        thickness = rng.uniform(4, 12)
        return cls("subdural", _blood_hu(rng), z_c, half_height + 15, _surface_push(head, phi, psi, thickness),
                   phi, psi, np.deg2rad(rng.uniform(35, 70)), half_height, thickness, side)

    def _profile(self, e):
        return F32(self.thickness) * np.sqrt(F32(1) - e)  # a crescent: a broad plateau tapering at its tips


@dataclass(frozen=True)
class FalxSubdural(Lesion):
    """A thin subdural layer along one side of the falx."""

    y_centre: float = 0.0
    y_half: float = 30.0
    thickness: float = 3.0
    side: int = 1

    def _occupancy(self, head, frame, tissue):
        lateral = frame.x * F32(self.side)
        return (tissue.brain & (lateral > F32(0.5)) & (lateral < F32(0.5 + self.thickness)) & (frame.depth < F32(45))
                & (np.abs(frame.z - F32(self.z_centre)) < F32(self.z_half))
                & (np.abs(frame.y - F32(self.y_centre)) < F32(self.y_half)))


@dataclass(frozen=True)
class Intraparenchymal(Lesion):
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 10.0
    z_scale: float = 0.8
    lobes: tuple[float, ...] = (0.0,) * 6
    oedema: float = 3.0
    oedema_hu: float = 18.0

    SITES = {"basal ganglia": (0.30, 0.04, 0.02), "thalamus": (0.11, -0.13, 0.02), "lobar": None}

    @classmethod
    def sample(cls, rng: np.random.Generator, head: Head, site: str | None = None) -> "Intraparenchymal":
        a, b, c = head.axes
        site = site or str(rng.choice(list(cls.SITES), p=[0.4, 0.25, 0.35]))
        radius = rng.uniform(6, 18)
        side = rng.choice([-1, 1])
        if cls.SITES[site] is not None:
            u, v, w = cls.SITES[site]
            centre = (u * a * side, v * b, w * c)
        else:  # a lobar bleed well inside the brain
            direction = rng.normal(size=3) * np.array([1.0, 1.0, 0.5])
            direction[2] = abs(direction[2])
            direction /= np.linalg.norm(direction)
            centre = tuple(direction * np.array([a, b, c]) * rng.uniform(0.35, 0.6) - np.array([0, 0, 0.1 * c]))
        z_scale = rng.uniform(0.6, 1.0)
        centre = tuple(float(v) for v in centre)
        return cls("intraparenchymal", _blood_hu(rng), centre[2], radius * z_scale * 1.4 + 6,
                   Push(centre, radius, 0.3), centre, radius, z_scale,
                   tuple(rng.uniform(0, 2 * np.pi, 3)) + (rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.15), rng.uniform(0.02, 0.06)),
                   rng.uniform(2, 6), rng.uniform(12, 22))

    def _shape(self, frame: Frame) -> np.ndarray:
        cx, cy, cz = (F32(v) for v in self.centre)
        dx, dy, dz = frame.x - cx, frame.y - cy, (frame.z - cz) / F32(self.z_scale)
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        az = np.arctan2(dx, dy)
        el = np.arctan2(dz, np.sqrt(dx * dx + dy * dy))
        p1, p2, p3, a1, a2, a3 = self.lobes
        # An irregular outline: the radius wobbles with direction.
        r = F32(self.radius) * (F32(1) + F32(a1) * np.sin(3 * az + F32(p1)) + F32(a2) * np.sin(2 * el + F32(p2))
                                + F32(a3) * np.sin(4 * az + 2 * el + F32(p3)))
        return d / r

    def paint(self, head, frame, tissue):
        if not touches(frame, self.z_centre, self.z_half):
            return None
        dn = self._shape(frame)
        rim = tissue.brain & (dn < F32(1 + self.oedema / self.radius)) & (frame.depth > F32(head.rim)) & ~tissue.bone
        tissue.hu[rim] = F32(self.oedema_hu)
        occ = tissue.brain & (dn < 1) & ~tissue.bone
        tissue.hu[occ] = F32(self.hu)
        return occ


@dataclass(frozen=True)
class Intraventricular(Lesion):
    layering: bool = True
    level: float = 0.0  # for layering: blood lies behind this y (mm): posterior horns are dependent when supine

    @classmethod
    def sample(cls, rng: np.random.Generator, head: Head) -> "Intraventricular":
        a, b, c = head.axes
        layering = bool(rng.random() < 0.6)
        z_c = c * rng.uniform(0.05, 0.2)
        return cls("intraventricular", _blood_hu(rng), z_c, rng.uniform(6, 13), None, layering,
                   -b * rng.uniform(0.25, 0.38))

    def _occupancy(self, head, frame, tissue):
        occ = tissue.ventricles & (np.abs(frame.z - F32(self.z_centre)) < F32(self.z_half))
        if self.layering:
            occ &= frame.y < F32(self.level)
        return occ


@dataclass(frozen=True)
class Subarachnoid(Lesion):
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 30.0

    SITES = {"sylvian": (0.65, 0.1, 0.0), "convexity": None, "basal cisterns": (0.0, -0.02, -0.22),
             "interhemispheric": (0.0, 0.3, 0.35)}

    @classmethod
    def sample(cls, rng: np.random.Generator, head: Head) -> "Subarachnoid":
        a, b, c = head.axes
        site = str(rng.choice(list(cls.SITES), p=[0.3, 0.35, 0.2, 0.15]))
        if cls.SITES[site] is None:
            phi, psi = rng.uniform(-np.pi, np.pi), np.deg2rad(rng.uniform(10, 50))
            centre = (a * np.cos(psi) * np.sin(phi) * 0.9, b * np.cos(psi) * np.cos(phi) * 0.9, c * np.sin(psi) * 0.9)
        else:
            u, v, w = cls.SITES[site]
            centre = (u * a * rng.choice([-1, 1]), v * b, w * c)
        return cls("subarachnoid", rng.uniform(60, 80), float(centre[2]), rng.uniform(5, 19), None,
                   tuple(float(v) for v in centre), rng.uniform(22, 40))

    def _occupancy(self, head, frame, tissue):
        cx, cy, _ = self.centre
        near = ((frame.x - F32(cx)) ** 2 + (frame.y - F32(cy)) ** 2) < F32(self.radius ** 2)
        return tissue.csf_space & near & (np.abs(frame.z - F32(self.z_centre)) < F32(self.z_half))


KINDS = {"epidural": Epidural, "subdural": Subdural, "intraparenchymal": Intraparenchymal,
         "intraventricular": Intraventricular, "subarachnoid": Subarachnoid}


def sample_lesions(rng: np.random.Generator, head: Head, subtypes: tuple[str, ...]) -> list[Lesion]:
    """One lesion per requested subtype (an intraventricular bleed often comes with a thalamic one)."""
    lesions = []
    for subtype in subtypes:
        if subtype == "intraparenchymal" and "intraventricular" in subtypes:
            lesions.append(Intraparenchymal.sample(rng, head, site="thalamus"))
        else:
            lesions.append(KINDS[subtype].sample(rng, head))
    return lesions
