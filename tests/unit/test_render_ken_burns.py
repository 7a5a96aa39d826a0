"""Ken Burns placement: the view's path over the source for every pan, zoom and fit."""

from __future__ import annotations

import numpy as np
import pytest

from framefarm.compositor import placement
from framefarm.compositor.easing import ease
from framefarm.document import models

PANS = ["none", "left", "right", "up", "down", "up-left", "up-right", "down-left", "down-right"]
# The way the picture drifts for each pan (screen x, y).
DRIFT = {"none": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
         "up-left": (-1, -1), "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1)}
FRAMES = 150


def views(src: tuple[int, int], box: tuple[float, float], fit: str, motion: models.KenBurns,
          ) -> np.ndarray:
    """Per frame: the source rectangle shown (x0, y0, x1, y1) and its centre (cx, cy)."""
    rows = []
    for n in range(FRAMES):
        m = placement.ken_burns(src, box, fit, motion, n / FRAMES)
        sx, sy, tx, ty = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
        x0, y0 = -tx / sx, -ty / sy
        x1, y1 = (box[0] - tx) / sx, (box[1] - ty) / sy
        rows.append((x0, y0, x1, y1, (x0 + x1) / 2, (y0 + y1) / 2))
    return np.array(rows)


@pytest.mark.parametrize("pan", PANS)
@pytest.mark.parametrize("zoom", [(1.0, 1.15), (1.0, 1.5), (1.3, 1.0), (1.2, 1.2), (1.1, 2.0)])
@pytest.mark.parametrize("easing", ["linear", "ease-in-out"])
@pytest.mark.parametrize("src", [(1920, 1080), (1600, 1200), (1000, 1500)])
def test_the_view_pans_one_way_and_never_leaves_the_source(
    pan: str, zoom: tuple[float, float], easing: str, src: tuple[int, int]
) -> None:
    motion = models.KenBurns(zoom=zoom, pan=pan, easing=easing)  # type: ignore[arg-type]
    v = views(src, (1920.0, 1080.0), "cover", motion)
    eps = 1e-6
    # Cover: never an edge of the source on screen.
    assert v[:, 0].min() >= -eps and v[:, 1].min() >= -eps
    assert v[:, 2].max() <= src[0] + eps and v[:, 3].max() <= src[1] + eps
    last = placement.ken_burns(src, (1920.0, 1080.0), "cover", motion, 1.0)
    for axis, drift in enumerate(DRIFT[pan]):
        name = f"{pan} {'xy'[axis]}"
        centre = v[:, 4 + axis]
        steps = np.diff(centre)
        room = (v[:, 2 + axis] - v[:, axis]).min() < src[axis] - 1  # room to pan somewhere
        if drift == 0 or not room:
            assert np.abs(centre - src[axis] / 2).max() < 1e-6, name
            continue
        # The picture drifts ``drift``: the view moves the other way over the source, at
        # every frame (an eased motion may rest on its first frame).
        assert np.all(-drift * steps[1:] > 0), f"{name}: {steps[:4]}"
        assert -drift * steps[0] >= 0, name
        # It ends on the far edge it was heading for: the right/bottom when the picture
        # drifts left/up.
        edge = (1920.0, 1080.0)[axis] if drift < 0 else 0.0
        assert (edge - last[axis, 2]) / last[axis, axis] == pytest.approx(
            src[axis] if drift < 0 else 0.0, abs=1e-6), name
        # Smooth: the centre moves linearly with the eased progress, exactly (no snapping to
        # pixels, no kink where a clamp takes over).
        q = np.array([ease(easing, n / FRAMES) for n in range(FRAMES)])
        fit = np.polyval(np.polyfit(q, centre, 1), q)
        assert np.abs(centre - fit).max() < 1e-6, name


def test_first_frame_of_a_pan_with_zoom_from_one_is_the_plain_cover() -> None:
    motion = models.KenBurns(zoom=(1.0, 1.15), pan="down-right")
    first = placement.ken_burns((1920, 1080), (1920.0, 1080.0), "cover", motion, 0.0)
    np.testing.assert_allclose(first, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_contain_keeps_an_axis_without_room_centred() -> None:
    # A tall picture contained in a wide box: x has no room until zoomed well past it.
    motion = models.KenBurns(zoom=(1.0, 1.2), pan="left")
    for p in np.linspace(0, 1, 11):
        m = placement.ken_burns((500, 1000), (1920.0, 1080.0), "contain", motion, float(p))
        shown = 500 * m[0, 0]
        assert m[0, 2] == pytest.approx((1920 - shown) / 2)


def test_no_motion_is_the_plain_fit() -> None:
    m = placement.ken_burns((640, 480), (320.0, 180.0), "cover", None, 0.3)
    np.testing.assert_allclose(m, [[0.5, 0, 0], [0, 0.5, -30]])
