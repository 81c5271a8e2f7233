"""Where each pixel of a slice lies in the head, and the shapes the anatomy and the lesions are made of.

Head frame, in mm: x to the patient's left, y anterior, z superior; the origin is the centre of the
inner-table ellipsoid. Angles: ``phi`` is the azimuth from anterior (0) towards +x (pi/2), ``psi`` the elevation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32


@dataclass
class Frame:
    """Head-frame coordinates of every pixel of one (sub-)slice, and what is derived from them once.

    Attributes:
        x, y, z: coordinates (mm), float32 arrays of the image's shape.
        rho: distance from the head centre (mm).
        radius: distance from the centre to the inner table along the same ray (mm).
        depth: ``radius - rho``: mm inside the inner table (negative: in the skull, scalp or air).
        phi, psi: azimuth and elevation of the ray (radians).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    rho: np.ndarray
    radius: np.ndarray
    depth: np.ndarray
    phi: np.ndarray
    psi: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, y: np.ndarray, z: np.ndarray, axes: tuple[float, float, float],
              phi: np.ndarray | None = None) -> "Frame":
        """The frame of pixels at x, y, z (any shape); ``phi`` may be passed where it was computed once already."""
        a, b, c = axes
        rho = np.sqrt(x * x + y * y + z * z)
        q = np.sqrt((x / F32(a)) ** 2 + (y / F32(b)) ** 2 + (z / F32(c)) ** 2)
        # Along the ray through a pixel the inner table lies at rho / q; at the very centre any radius will do.
        radius = np.where(q > 1e-4, rho / np.maximum(q, F32(1e-4)), F32(min(axes)))
        depth = radius - rho
        phi = np.arctan2(x, y) if phi is None else phi  # depends on x, y alone: the same for every sub-slice
        psi = np.arcsin(np.clip(z / np.maximum(rho, F32(1e-3)), -1, 1))
        return cls(x, y, z, rho, radius.astype(F32), depth.astype(F32), phi.astype(F32), psi.astype(F32))

    def z_range(self) -> tuple[float, float]:
        """The z extent of the whole (sub-)slice this frame belongs to, which shapes test to skip themselves.

        A frame holding only some of a slice's pixels is given its slice's extent (``with_z_range``): a shape
        is skipped by where the slice lies, never by which pixels were kept, so both draw the same."""
        if getattr(self, "_z_range", None) is None:  # asked for by every shape of every sub-slice: computed once
            self._z_range = (float(self.z.min()), float(self.z.max())) if self.z.size else (0.0, 0.0)
        return self._z_range

    def with_z_range(self, z_range: tuple[float, float]) -> "Frame":
        self._z_range = z_range
        return self

    def subset(self, pixels: np.ndarray) -> "Frame":
        """The frame of some of its pixels (flat indices), keeping the slice's z extent."""
        part = Frame(*(getattr(self, name).ravel()[pixels] for name in Frame.__dataclass_fields__))
        return part.with_z_range(self.z_range())


def ellipsoid(x, y, z, centre, axes) -> np.ndarray:
    """Squared normalised distance to an axis-aligned ellipsoid's centre (< 1 inside)."""
    cx, cy, cz = centre
    ax, ay, az = axes
    return ((x - F32(cx)) / F32(ax)) ** 2 + ((y - F32(cy)) / F32(ay)) ** 2 + ((z - F32(cz)) / F32(az)) ** 2


def touches(frame: Frame, centre_z: float, half_z: float) -> bool:
    """Whether a shape spanning ``centre_z +/- half_z`` can meet this frame (cheap skip of far shapes)."""
    lo, hi = frame.z_range()
    return centre_z + half_z >= lo and centre_z - half_z <= hi


def segment_distance(x, y, p0, p1) -> np.ndarray:
    """In-plane distance (mm) of each pixel from the segment p0-p1."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - F32(x0)) * F32(dx) + (y - F32(y0)) * F32(dy)) / F32(dx * dx + dy * dy), 0, 1)
    return np.sqrt((x - F32(x0) - t * F32(dx)) ** 2 + (y - F32(y0) - t * F32(dy)) ** 2)


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angle difference folded into [-pi, pi)."""
    return (angle + F32(np.pi)) % F32(2 * np.pi) - F32(np.pi)


@dataclass(frozen=True)
class Push:
    """Mass effect: tissue near ``centre`` pushed outwards by up to ``strength`` of its distance (a 3-D warp)."""

    centre: tuple[float, float, float]
    radius: float
    strength: float

    def apply(self, x, y, z):
        cx, cy, cz = (F32(v) for v in self.centre)
        dx, dy, dz = x - cx, y - cy, z - cz
        d2 = dx * dx + dy * dy + dz * dz
        # Sample the undisturbed anatomy nearer the centre: what was there appears further out.
        f = F32(1) - F32(self.strength) * np.exp(-d2 / F32((2.0 * self.radius) ** 2))
        return cx + dx * f, cy + dy * f, cz + dz * f
