"""Measurements on decoded pixels: where the ink is, how large a ring is."""

from __future__ import annotations

import numpy as np


def ink_mask(pixels: np.ndarray, threshold: int = 64) -> np.ndarray:
    grey = pixels.max(axis=2) if pixels.ndim == 3 else pixels
    return grey > threshold


def ink_bbox(pixels: np.ndarray, threshold: int = 64) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), exclusive, of the pixels brighter than ``threshold``."""
    ys, xs = np.nonzero(ink_mask(pixels, threshold))
    if len(xs) == 0:
        raise AssertionError("no ink at all")
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def ring_radius(pixels: np.ndarray, centre: tuple[float, float]) -> float:
    """Darkness-weighted mean distance from ``centre`` (x, y): a ring's radius, to a small
    fraction of a pixel."""
    h, w = pixels.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    weight = 255.0 - pixels[:, :, :3].astype(np.float64).mean(axis=2)
    dist = np.hypot(xx + 0.5 - centre[0], yy + 0.5 - centre[1])
    return float((weight * dist).sum() / weight.sum())
