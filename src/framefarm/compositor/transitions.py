"""Scene transitions: blend the outgoing frame ``a`` and the incoming ``b`` at progress p.

p is in (0, 1): 0 would be all ``a``, 1 all ``b``. Each is a few OpenCV/NumPy calls.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from framefarm.compositor import easing
from framefarm.compositor.bitmap import Array, as_u8

Blend = Callable[[Array, Array, float], Array]


def dissolve(a: Array, b: Array, p: float) -> Array:
    return as_u8(cv2.addWeighted(a, 1.0 - p, b, p, 0.0))



def fade(a: Array, b: Array, p: float) -> Array:
    """Through black: the first half fades ``a`` out, the second fades ``b`` in."""
    if p < 0.5:
        return as_u8(cv2.convertScaleAbs(a, alpha=1.0 - 2 * p))
    return as_u8(cv2.convertScaleAbs(b, alpha=2 * p - 1.0))


def _wipe(axis: int, reverse: bool) -> Blend:
    def blend(a: Array, b: Array, p: float) -> Array:
        size = a.shape[axis]
        cut = round(size * p)
        out = a.copy()
        index: list[slice] = [slice(None), slice(None)]
        index[axis] = slice(size - cut, size) if reverse else slice(0, cut)
        out[tuple(index)] = b[tuple(index)]
        return out

    return blend


def _slide(axis: int, reverse: bool) -> Blend:
    """``b`` pushes ``a`` out of the frame."""

    def blend(a: Array, b: Array, p: float) -> Array:
        size = a.shape[axis]
        shift = round(size * p)
        if shift in (0, size):
            return (a if shift == 0 else b).copy()
        first, second = (b, a) if reverse else (a, b)
        keep = size - shift
        if reverse:  # b enters from the start side
            parts = (first.take(range(keep, size), axis), second.take(range(0, keep), axis))
        else:  # b enters from the end side
            parts = (first.take(range(shift, size), axis), second.take(range(0, shift), axis))
        return np.ascontiguousarray(np.concatenate(parts, axis=axis))

    return blend


def _circle(opening: bool) -> Blend:
    def blend(a: Array, b: Array, p: float) -> Array:
        h, w = a.shape[:2]
        radius = float(np.hypot(w, h)) / 2 * (p if opening else 1.0 - p)
        mask = np.zeros((h, w), np.uint8)
        cv2.circle(mask, (w * 8, h * 8), round(radius * 16), 255, -1, cv2.LINE_AA, shift=4)
        inside, outside = (b, a) if opening else (a, b)
        k = mask.astype(np.float32)[:, :, None] / 255.0
        out = outside.astype(np.float32) * (1.0 - k) + inside.astype(np.float32) * k
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    return blend


def zoom(a: Array, b: Array, p: float) -> Array:
    """``a`` grows towards the viewer while ``b`` dissolves in."""
    h, w = a.shape[:2]
    s = 1.0 + 0.5 * p
    matrix = np.array([[s, 0, (1 - s) * w / 2], [0, s, (1 - s) * h / 2]], np.float64)
    grown = as_u8(cv2.warpAffine(a, matrix, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE))
    return dissolve(grown, b, p)


TRANSITIONS: dict[str, Blend] = {
    "dissolve": dissolve,
    "fade": fade,
    "wipe_left": _wipe(1, reverse=True),    # the edge moves leftwards: b shows from the right
    "wipe_right": _wipe(1, reverse=False),
    "wipe_up": _wipe(0, reverse=True),
    "wipe_down": _wipe(0, reverse=False),
    "slide_left": _slide(1, reverse=False),  # everything moves left: b comes from the right
    "slide_right": _slide(1, reverse=True),
    "slide_up": _slide(0, reverse=False),
    "slide_down": _slide(0, reverse=True),
    "circle_open": _circle(opening=True),
    "circle_close": _circle(opening=False),
    "zoom": zoom,
}


def progress(frame: int, start: int, frames: int) -> float:
    """Eased progress of a transition of ``frames`` frames starting at ``start``,
    strictly between 0 and 1 so both scenes contribute at every frame of it."""
    return easing.ease("ease-in-out", (frame - start + 1) / (frames + 1))


def blend(kind: str, a: Array, b: Array, p: float) -> Array:
    return TRANSITIONS[kind](a, b, p)
