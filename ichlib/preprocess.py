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


def window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """Clip HU to the window and scale it to [0, 1] (float32)."""
    win = Window(center, width)
    out = np.asarray(hu, np.float32) - np.float32(win.low)
    out *= np.float32(1 / win.width)
    return np.clip(out, 0, 1, out=out)


def sigmoid_window(hu: np.ndarray, center: float, width: float, eps: float = 1 / 255) -> np.ndarray:
    """A smooth window: a logistic curve through ``eps`` at ``center - width/2`` and ``1 - eps`` at the top.

    Unlike the hard window it keeps a little contrast outside the range (the Kaggle "sigmoid windowing").
    """
    win = Window(center, width)
    slope = 2 / win.width * np.log(1 / eps - 1)
    z = (np.asarray(hu, np.float32) - np.float32(win.center)) * np.float32(slope)
    return (1 / (1 + np.exp(-z))).astype(np.float32)


def three_window(hu: np.ndarray, windows=PAPER_WINDOWS) -> np.ndarray:
    """One slice through three windows, as channels: (rows, cols, 3) float32 in [0, 1]."""
    if len(windows) != 3:
        raise ValueError(f"three windows are needed, got {len(windows)}")
    return np.stack([window(hu, w.center, w.width) for w in map(_as_window, windows)], axis=-1)


def adjacent_stack(previous: np.ndarray | None, current: np.ndarray, following: np.ndarray | None,
                   win: str | Window = "brain") -> np.ndarray:
    """Previous / current / next slice in one window, as channels; a missing neighbour repeats the current slice."""
    w = _as_window(win)
    slices = [current if s is None else s for s in (previous, current, following)]
    shapes = {s.shape for s in slices}
    if len(shapes) != 1:
        raise ValueError(f"neighbouring slices differ in shape: {sorted(shapes)}")
    return np.stack([window(s, w.center, w.width) for s in slices], axis=-1)


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


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 (rounded), the cache's compact form."""
    scaled = np.clip(image, 0, 1) * np.float32(255)
    scaled += np.float32(0.5)  # round half up, then truncate
    return scaled.astype(np.uint8)
