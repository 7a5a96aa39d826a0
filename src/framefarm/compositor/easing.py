"""Easing curves and keyframe interpolation (pure functions of time)."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Sequence

from framefarm.document import models

EaseFn = Callable[[float], float]


def _cubic_bezier(x1: float, y1: float, x2: float, y2: float) -> EaseFn:
    """CSS cubic-bezier: solve x(u) = p by bisection (monotonic in u), return y(u)."""

    def coord(u: float, a: float, b: float) -> float:
        return 3 * a * u * (1 - u) ** 2 + 3 * b * u * u * (1 - u) + u**3

    def ease(p: float) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if coord(mid, x1, x2) < p:
                lo = mid
            else:
                hi = mid
        return coord((lo + hi) / 2, y1, y2)

    return ease


def _back_out(p: float) -> float:
    c = 1.70158
    q = p - 1
    return 1 + (c + 1) * q**3 + c * q**2


NAMED: dict[str, EaseFn] = {
    "linear": lambda p: p,
    "ease-in": _cubic_bezier(0.42, 0, 1, 1),
    "ease-out": _cubic_bezier(0, 0, 0.58, 1),
    "ease-in-out": _cubic_bezier(0.42, 0, 0.58, 1),
    "back-out": _back_out,
}


@functools.cache
def curve(easing: models.Easing) -> EaseFn:
    if isinstance(easing, str):
        return NAMED[easing]
    return _cubic_bezier(*easing)


def ease(easing: models.Easing, p: float) -> float:
    p = min(max(p, 0.0), 1.0)
    if p in (0.0, 1.0):
        return p
    return curve(easing)(p)


def interpolate(keyframes: Sequence[models.Keyframe], t: float) -> float:
    """The value at ``t``: held before the first and after the last keyframe."""
    times = [k.time for k in keyframes]
    i = bisect.bisect_right(times, t)
    if i == 0:
        return keyframes[0].value
    if i == len(keyframes):
        return keyframes[-1].value
    a, b = keyframes[i - 1], keyframes[i]
    span = b.time - a.time
    p = (t - a.time) / span if span > 0 else 1.0
    return a.value + (b.value - a.value) * ease(a.easing, p)
