"""Easing curves and keyframe interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from framefarm.compositor import easing
from framefarm.document import models

NAMES = ["linear", "ease-in", "ease-out", "ease-in-out", "back-out"]


@pytest.mark.parametrize("name", NAMES)
def test_endpoints(name: str) -> None:
    assert easing.ease(name, 0.0) == 0.0
    assert easing.ease(name, 1.0) == 1.0
    # Outside [0, 1] the progress is clamped.
    assert easing.ease(name, -0.5) == 0.0
    assert easing.ease(name, 7.0) == 1.0


@pytest.mark.parametrize("name", ["linear", "ease-in", "ease-out", "ease-in-out"])
def test_monotonic(name: str) -> None:
    ps = np.linspace(0, 1, 401)
    values = np.array([easing.ease(name, p) for p in ps])
    assert np.all(np.diff(values) > 0)


def test_ease_in_out_is_symmetric_and_slow_at_both_ends() -> None:
    assert easing.ease("ease-in-out", 0.5) == pytest.approx(0.5, abs=1e-9)
    for p in (0.1, 0.25, 0.4):
        assert easing.ease("ease-in-out", p) == pytest.approx(
            1 - easing.ease("ease-in-out", 1 - p), abs=1e-9)
        assert easing.ease("ease-in-out", p) < p
    # CSS ease-in-out (0.42, 0, 0.58, 1) at 25 %: 0.129 (known value).
    assert easing.ease("ease-in-out", 0.25) == pytest.approx(0.1291, abs=5e-4)


def test_ease_in_is_below_and_ease_out_above_linear() -> None:
    for p in (0.1, 0.3, 0.5, 0.7, 0.9):
        assert easing.ease("ease-in", p) < p < easing.ease("ease-out", p)
        assert easing.ease("ease-in", p) == pytest.approx(1 - easing.ease("ease-out", 1 - p),
                                                          abs=1e-9)


def test_cubic_bezier_identity_is_linear() -> None:
    for p in np.linspace(0.01, 0.99, 50):
        assert easing.ease((0.0, 0.0, 1.0, 1.0), float(p)) == pytest.approx(p, abs=1e-6)


def test_cubic_bezier_equal_to_the_named_curve() -> None:
    for p in (0.2, 0.5, 0.8):
        assert easing.ease((0.42, 0.0, 0.58, 1.0), p) == pytest.approx(
            easing.ease("ease-in-out", p), abs=1e-12)


def test_back_out_overshoots_then_settles() -> None:
    values = [easing.ease("back-out", p) for p in np.linspace(0, 1, 101)]
    assert max(values) > 1.05
    assert values[-1] == 1.0
    assert easing.ease("back-out", 0.05) > 0.05


def test_bezier_x_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="cubic-bezier x1 and x2 must be between 0 and 1"):
        models.Keyframe.model_validate({"time": 0, "value": 1, "easing": [1.5, 0, 0.5, 1]})
    ok = models.Keyframe.model_validate({"time": 0, "value": 1, "easing": [0.3, -0.5, 0.7, 1.6]})
    assert ok.easing == (0.3, -0.5, 0.7, 1.6)


def kf(time: float, value: float, ease: models.Easing = "linear") -> models.Keyframe:
    return models.Keyframe(time=time, value=value, easing=ease)


def test_interpolate_holds_before_and_after() -> None:
    frames = [kf(1.0, 10.0), kf(3.0, 30.0)]
    assert easing.interpolate(frames, 0.0) == 10.0
    assert easing.interpolate(frames, 0.999) == 10.0
    assert easing.interpolate(frames, 1.0) == 10.0
    assert easing.interpolate(frames, 2.0) == pytest.approx(20.0)
    assert easing.interpolate(frames, 3.0) == 30.0
    assert easing.interpolate(frames, 99.0) == 30.0


def test_interpolate_uses_the_easing_of_the_segment_start() -> None:
    frames = [kf(0, 0, "ease-in"), kf(1, 100, "linear"), kf(2, 0)]
    assert easing.interpolate(frames, 0.5) == pytest.approx(100 * easing.ease("ease-in", 0.5))
    assert easing.interpolate(frames, 1.5) == pytest.approx(50.0)
    assert easing.interpolate(frames, 1.0) == 100.0


def test_interpolate_single_keyframe_is_constant() -> None:
    frames = [kf(2.0, 5.0)]
    assert [easing.interpolate(frames, t) for t in (0, 2, 10)] == [5.0, 5.0, 5.0]


def test_interpolate_equal_times_jump() -> None:
    frames = [kf(0, 0), kf(1, 1), kf(1, 50), kf(2, 60)]
    assert easing.interpolate(frames, 0.5) == pytest.approx(0.5)
    assert easing.interpolate(frames, 1.0) == 50.0
    assert easing.interpolate(frames, 1.5) == pytest.approx(55.0)


def test_keyframes_must_be_in_time_order() -> None:
    with pytest.raises(ValueError, match="keyframes for 'x' must be in time order"):
        models.ShapeLayer.model_validate(
            {"type": "shape", "keyframes": {"x": [{"time": 2, "value": 0},
                                                  {"time": 1, "value": 5}]}})
    with pytest.raises(ValueError, match="keyframes for 'opacity' are empty"):
        models.ShapeLayer.model_validate({"type": "shape", "keyframes": {"opacity": []}})
