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
