"""Where a layer is and how it moves: its box, its time span, and its transform at a time.

Shared by every layer type, so timing, keyframes and enter/exit animations live once.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from framefarm.compositor import bitmap, easing
from framefarm.compositor.bitmap import Matrix
from framefarm.document import models

Box = tuple[float, float, float, float]  # x, y, width, height in output pixels
MARGIN = 0.05  # of the frame's shorter side, around boxes placed by ``position``
SLIDE = 0.25  # of the frame, how far a slide_* animation travels


def length(value: float | str | None, whole: float, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, str):
        return float(value.strip().rstrip("%")) * whole / 100.0
    return float(value)


def place(
    layer: models.LayerBase, frame: tuple[int, int], natural: tuple[float, float]
) -> Box:
    """The layer's box: explicit x/y, else ``position`` (default centre) with a margin."""
    fw, fh = frame
    w = length(layer.width, fw, natural[0])
    h = length(layer.height, fh, natural[1])
    margin = MARGIN * min(fw, fh)
    pos = layer.position or "center"
    if "left" in pos:
        px = margin
    elif "right" in pos:
        px = fw - margin - w
    else:
        px = (fw - w) / 2
    if pos.startswith("top"):
        py = margin
    elif pos.startswith("bottom"):
        py = fh - margin - h
    else:
        py = (fh - h) / 2
    return length(layer.x, fw, px), length(layer.y, fh, py), w, h


# Which way the view (the crop) travels over the source for each pan, per axis: the picture
# drifts the named way, so the view slides the opposite way (+1: towards larger x or y).
_VIEW = {"left": (1, 0), "right": (-1, 0), "up": (0, 1), "down": (0, -1),
         "up-left": (1, 1), "up-right": (-1, 1), "down-left": (1, -1), "down-right": (-1, -1),
         "none": (0, 0)}


def _crop_centre(source: float, window: tuple[float, float, float], way: int, q: float) -> float:
    """Where the view's centre sits on one source axis at eased progress ``q``.

    ``window`` is how much of the source the view shows at the start, now and at the end.
    The centre moves linearly from its start position (valid for the start zoom) to its end
    position (valid for the end zoom), clamped so the view stays inside the source: with
    ``way`` +1 from the low edge to the high one. So the picture drifts one way only, from the
    first frame, even when the zoom starts at 1.0 and there is no room to pan at first.
    """
    first, now, last = window
    if way == 0:
        return source / 2
    begin = min(first, source) / 2
    end = source - min(last, source) / 2
    if way < 0:
        begin, end = source - begin, source - end
    centre = begin + (end - begin) * q
    half = min(now, source) / 2
    return min(max(centre, half), source - half)


def ken_burns(src: tuple[int, int], box: tuple[float, float], fit: str,
              motion: models.KenBurns | None, p: float) -> Matrix:
    """Source pixels -> box-local coordinates for a still at progress ``p`` of its shot.

    The zoom and the view's centre follow the same eased progress; an axis where the
    zoomed source does not fill the box (contain) stays centred, as ``fit_matrix`` does.
    """
    bw, bh = box
    if motion is None:
        return bitmap.fit_matrix(src[0], src[1], (0, 0, bw, bh), fit)
    q = easing.ease(motion.easing, p)
    z0, z1 = motion.zoom
    zoom = z0 + (z1 - z0) * q
    if fit == "fill":
        base = (bw / src[0], bh / src[1])
    else:
        pick = max if fit == "cover" else min
        base = (pick(bw / src[0], bh / src[1]),) * 2
    scale = (base[0] * zoom, base[1] * zoom)
    offsets = []
    for axis, size in enumerate((bw, bh)):
        s, n = scale[axis], src[axis]
        if n * s <= size:  # smaller than the box: centred
            offsets.append((size - n * s) / 2)
            continue
        window = (size / (base[axis] * z0), size / s, size / (base[axis] * z1))
        centre = _crop_centre(n, window, _VIEW[motion.pan][axis], q)
        offsets.append(size / 2 - centre * s)
    return bitmap.affine(scale[0], scale[1], offsets[0], offsets[1])


@dataclasses.dataclass(frozen=True)
class State:
    """A layer's transform at one moment: box-local coordinates -> canvas."""

    matrix: Matrix
    opacity: float
    upright: bool  # no rotation: clipping to the box's bounds is exact


_SIDES = {"slide_left": (-1, 0), "slide_right": (1, 0), "slide_up": (0, -1), "slide_down": (0, 1)}


def _animate(kind: str, p: float, frame: tuple[int, int]) -> tuple[float, float, float, float]:
    """(dx, dy, scale, opacity) of an animation at progress p (0 = hidden, 1 = settled).

    An exit is its enter played backwards, so ``slide_left`` enters from the left edge and
    leaves towards it.
    """
    if kind == "none" or p >= 1.0:
        return 0.0, 0.0, 1.0, 1.0
    q = easing.ease("ease-out", max(p, 0.0))
    if kind == "fade":
        return 0.0, 0.0, 1.0, q
    if kind in _SIDES:
        sx, sy = _SIDES[kind]
        away = (1.0 - q) * SLIDE
        return sx * away * frame[0], sy * away * frame[1], 1.0, q
    if kind == "zoom":
        return 0.0, 0.0, 0.5 + 0.5 * q, q
    # pop: overshoots a little before settling
    return 0.0, 0.0, max(0.01, easing.ease("back-out", p)), min(1.0, max(p, 0.0) * 3)


def state(
    layer: models.LayerBase,
    box: Box,
    frame: tuple[int, int],
    t: float,
    span: tuple[float, float],
) -> State:
    """Transform at scene time ``t`` for a layer visible during ``span`` (start, end)."""
    start, end = span
    local = t - start
    kf = layer.keyframes
    bx, by, bw, bh = box
    x = easing.interpolate(kf["x"], local) if "x" in kf else bx
    y = easing.interpolate(kf["y"], local) if "y" in kf else by
    scale = easing.interpolate(kf["scale"], local) if "scale" in kf else layer.scale
    rotation = easing.interpolate(kf["rotation"], local) if "rotation" in kf else layer.rotation
    opacity = easing.interpolate(kf["opacity"], local) if "opacity" in kf else layer.opacity

    anim = layer.animation
    d = min(anim.duration, (end - start) / 2)
    for kind, p in ((anim.in_, local / d), (anim.out, (end - t) / d)):
        dx, dy, s, o = _animate(kind, p, frame)
        x, y, scale, opacity = x + dx, y + dy, scale * s, opacity * o

    cx, cy = x + bw / 2, y + bh / 2
    angle = math.radians(rotation)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # canvas = T(centre) · R(angle) · S(scale) · T(-w/2, -h/2) · box-local
    matrix = np.array(
        [[cos, -sin, cx - cos * bw / 2 + sin * bh / 2],
         [sin, cos, cy - sin * bw / 2 - cos * bh / 2]],
        dtype=np.float64,
    )
    return State(matrix, max(0.0, min(1.0, opacity)), upright=(rotation % 360 == 0))
