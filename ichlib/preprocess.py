"""From HU to network input: windows, the paper's two 3-channel stacks, and resizing.

- the three-window stack: one slice seen through three windows (the paper: brain, subdural, soft tissue);
- the adjacent-slice stack ("ASIP"): previous, current and next slice, each in the brain window
  (the current slice stands in for a missing neighbour at either end of a series).

Windowing clips HU to ``[center - width/2, center + width/2]`` and scales that range to ``[0, 1]``.

Order: a slice is first shrunk to the network's size by averaging HU over each output pixel's area (what a
coarser reconstruction would have measured), then windowed. Windowing first and averaging after would differ only
where a pixel straddles a window's edge (the skull's rim), and would cost the windowing at full size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Window:
    """A display window in HU."""

    center: float
    width: float

    def __post_init__(self):
        if not self.width > 0:
            raise ValueError(f"window width must be positive, got {self.width}")

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2


PRESETS = {
    # the paper's three
    "brain": Window(40, 80),
    "subdural": Window(80, 400),
    "soft": Window(30, 30),
    # as the top RSNA solutions used them
    "subdural_rsna": Window(80, 200),
    "soft_rsna": Window(40, 380),
    "bone": Window(600, 2800),
}
PAPER_WINDOWS = ("brain", "subdural", "soft")


def _as_window(spec: str | Window | tuple[float, float]) -> Window:
    if isinstance(spec, Window):
        return spec
    if isinstance(spec, str):
        try:
            return PRESETS[spec]
        except KeyError:
            raise ValueError(f"unknown window preset {spec!r}; known: {', '.join(PRESETS)}") from None
    center, width = spec
    return Window(float(center), float(width))


def _scaled(hu: np.ndarray, win: Window, top: float) -> np.ndarray:
    """HU clipped to the window and scaled to [0, top] (a new float32 array)."""
    out = np.asarray(hu, np.float32) - np.float32(win.low)
    out *= np.float32(top / win.width)
    return np.clip(out, 0, top, out=out)


def window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Clip HU to the window and scale it to [0, 1] (float32)."""
    return _scaled(hu, Window(center, width), 1.0)


def sigmoid_window(hu: np.ndarray, center: float, width: float, eps: float = 1 / 255) -> np.ndarray:
    """A smooth window: a logistic curve through ``eps`` at ``center - width/2`` and ``1 - eps`` at the top.

    Unlike the hard window it keeps a little contrast outside the range (the Kaggle "sigmoid windowing").
    """
    win = Window(center, width)
    slope = 2 / win.width * np.log(1 / eps - 1)
    z = (np.asarray(hu, np.float32) - np.float32(win.center)) * np.float32(slope)
    return (1 / (1 + np.exp(-z))).astype(np.float32)


def _channels(pairs: list[tuple[np.ndarray, Window]], dtype) -> np.ndarray:
    """Stack windowed slices as channels: float32 in [0, 1], or uint8 (rounded) written straight into place."""
    shapes = {hu.shape for hu, _ in pairs}
    if len(shapes) != 1:
        raise ValueError(f"slices to stack differ in shape: {sorted(shapes)}")
    out = np.empty(shapes.pop() + (len(pairs),), dtype)
    eight_bit = np.dtype(dtype) == np.uint8
    for c, (hu, win) in enumerate(pairs):
        values = _scaled(hu, win, 255.0 if eight_bit else 1.0)
        if eight_bit:
            values += np.float32(0.5)  # round half up; the assignment truncates
        out[..., c] = values
    return out


def three_window(hu: np.ndarray, windows=PAPER_WINDOWS, dtype=np.float32) -> np.ndarray:
    """One slice through three windows, as channels: (rows, cols, 3), float32 in [0, 1] or uint8."""
    if len(windows) != 3:
        raise ValueError(f"three windows are needed, got {len(windows)}")
    return _channels([(hu, _as_window(w)) for w in windows], dtype)


def adjacent_stack(previous: np.ndarray | None, current: np.ndarray, following: np.ndarray | None,
                   win: str | Window = "brain", dtype=np.float32) -> np.ndarray:
    """Previous / current / next slice in one window, as channels; a missing neighbour repeats the current slice."""
    w = _as_window(win)
    return _channels([(current if s is None else s, w) for s in (previous, current, following)], dtype)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (rows, cols[, channels]) float32 to (size, size[, channels]); area-averaging when shrinking.

    Shrinking by a power of two (512 -> 128) sums neighbouring pixels pairwise, which is exact area averaging and
    several times faster than a general resampler; other sizes go through Pillow's box (shrink) or bilinear
    (enlarge) filter.
    """
    image = np.asarray(image, np.float32)
    rows, cols = image.shape[:2]
    if (rows, cols) == (size, size):
        return image
    factor = rows // size
    if rows == cols and rows == factor * size and factor & (factor - 1) == 0:
        while image.shape[0] > size:
            image = image[0::2] + image[1::2]
            image = image[:, 0::2] + image[:, 1::2]
        image *= np.float32(1 / (factor * factor))
        return image
    method = Image.Resampling.BOX if min(rows, cols) > size else Image.Resampling.BILINEAR
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c])).resize((size, size), method))
                    for c in range(planes.shape[-1])], axis=-1)
    return out[..., 0] if image.ndim == 2 else out


# --------------------------------------------------------------------------------------------- the head's box
AIR_HU = -1000.0  # air, by the definition of the Hounsfield scale (water is 0)
TISSUE_HU = -300.0  # above: scalp fat and everything denser; below: air, and the foam of a head rest


class NoHeadError(ValueError):
    """A slice with no body of tissue to crop to (air only, or a few stray pixels)."""


def head_box(hu: np.ndarray, margin: float = 0.04, min_fraction: float = 0.002) -> tuple[int, int, int, int]:
    """A square box ``(top, bottom, left, right)`` around the head: rows ``top:bottom``, columns ``left:right``.

    The head is the largest connected body of tissue (HU above ``TISSUE_HU``) once thin structures are opened
    away, so the table and the rim of a head rest, a few pixels thick, are not part of it even where they touch
    the scalp. The box is the head's bounding box grown by ``margin`` of its larger side on every side, made
    square about its centre, and moved inside the image where it fits; where the square is larger than the
    image it runs past the edges, and :func:`crop_to` pads it with air.

    Raises:
        NoHeadError: no body of tissue covers ``min_fraction`` of the image (an air-only slice).
        ValueError: not a 2-D image.
    """
    from scipy import ndimage

    hu = np.asarray(hu)
    if hu.ndim != 2 or min(hu.shape) < 8:
        raise ValueError(f"head_box needs a 2-D slice of at least 8 x 8 pixels, got shape {hu.shape}")
    step = max(1, min(hu.shape) // 128)  # find the head on a ~128 px view: the box needs no finer detail
    view = hu[::step, ::step] > TISSUE_HU
    view = ndimage.binary_opening(view, structure=np.ones((3, 3), bool))  # detaches lines 1-2 view pixels thick
    labels, count = ndimage.label(view)
    sizes = np.bincount(labels.ravel())[1:]
    if count == 0 or sizes.max() < min_fraction * view.size:
        raise NoHeadError(f"no head in this slice: no body of tissue above {TISSUE_HU:g} HU covers "
                          f"{min_fraction:.1%} of the image")
    rows, cols = ndimage.find_objects(labels)[int(np.argmax(sizes))]
    top, bottom = rows.start * step, min(rows.stop * step, hu.shape[0])
    left, right = cols.start * step, min(cols.stop * step, hu.shape[1])
    side = int(round(max(bottom - top, right - left) * (1 + 2 * margin)))
    boxes = []
    for lo, hi, extent in ((top, bottom, hu.shape[0]), (left, right, hu.shape[1])):
        start = int(round((lo + hi - side) / 2))
        if side <= extent:  # fits: slide it inside the image
            start = min(max(start, 0), extent - side)
        boxes += [start, start + side]
    return tuple(boxes)


def place(values: np.ndarray, box: tuple[int, int, int, int] | None, shape: tuple[int, int]) -> np.ndarray:
    """A map over a network's input (any size: a Grad-CAM heatmap) put back where that input came from in the
    slice of ``shape``: resized to the head's ``box`` (:func:`crop_to`'s; None: the whole slice), clipped to
    the slice, zero elsewhere. The one mapping from input to slice, so an overlay lies where the model looked,
    whether or not the head is centred."""
    from PIL import Image

    top, bottom, left, right = box if box is not None else (0, shape[0], 0, shape[1])
    rows, cols = bottom - top, right - left
    scaled = np.asarray(Image.fromarray(np.asarray(values, np.float32)).resize((cols, rows), Image.BILINEAR))
    out = np.zeros(shape, np.float32)
    r0, r1 = max(top, 0), min(bottom, shape[0])
    c0, c1 = max(left, 0), min(right, shape[1])
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = scaled[r0 - top:r1 - top, c0 - left:c1 - left]
    return out


def crop_to(hu: np.ndarray, box: tuple[int, int, int, int], fill: float = AIR_HU) -> np.ndarray:
    """The pixels of ``box`` (from :func:`head_box`), with ``fill`` (air) where the box runs past the image."""
    top, bottom, left, right = box
    out = np.full((bottom - top, right - left), fill, dtype=np.asarray(hu).dtype)
    r0, r1 = max(top, 0), min(bottom, hu.shape[0])
    c0, c1 = max(left, 0), min(right, hu.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = hu[r0:r1, c0:c1]
    return out
