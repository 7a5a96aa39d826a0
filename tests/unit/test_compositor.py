"""Pixels from the compositor on tiny frames (160x90): in-process NumPy, no FFmpeg."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framefarm import engine
from framefarm.compositor import easing, transitions
from framefarm.compositor.frame import Compositor
from support.media import write_solid_png

OUT = {"width": 160, "height": 90, "fps": 30}
GREEN = [0, 255, 0]
NAVY = [0, 0, 128]


def render(doc: dict[str, Any], base: Path, frames: Iterable[int]) -> list[np.ndarray]:
    tl = engine.load_timeline({"output": OUT, **doc}, base_dir=base)
    with Compositor(tl) as compositor:
        return [compositor.render(n) for n in frames]


def one_scene(*layers: dict[str, Any], duration: float = 2, bg: str = "#000000"
              ) -> dict[str, Any]:
    return {"scenes": [{"duration": duration, "background": bg, "layers": list(layers)}]}


def test_background_colour_fills_the_frame(tmp_path: Path) -> None:
    (frame,) = render(one_scene(bg="#123456"), tmp_path, [0])
    assert frame.shape == (90, 160, 3)
    assert frame.dtype == np.uint8
    assert np.all(frame == [0x12, 0x34, 0x56])


def test_output_background_is_the_default(tmp_path: Path) -> None:
    tl = engine.load_timeline({"output": {**OUT, "background": "#ff8000"},
                               "scenes": [{"duration": 1}]}, base_dir=tmp_path)
    with Compositor(tl) as compositor:
        assert np.all(compositor.render(0) == [255, 128, 0])


def test_rectangle_covers_exactly_its_box(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#00ff00", "x": 40, "y": 20, "width": 40, "height": 30}
    (frame,) = render(one_scene(shape, bg="#000080"), tmp_path, [0])
    green = np.all(frame == GREEN, axis=2)
    expected = np.zeros((90, 160), bool)
    expected[20:50, 40:80] = True
    assert np.array_equal(green, expected)
    assert np.all(frame[~expected] == NAVY)


def test_percentages_and_position(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#00ff00", "width": "25%", "height": "20%",
             "position": "bottom-right"}
    (frame,) = render(one_scene(shape), tmp_path, [0])
    # 40x18 box, margin 5% of 90 = 4.5: x = 160 - 4.5 - 40 = 115.5, y = 90 - 4.5 - 18 = 67.5
    assert np.all(frame[69:85, 117:155] == GREEN)
    assert np.all(frame[:66] == 0)
    assert np.all(frame[:, :114] == 0)
    assert np.all(frame[:, 157:] == 0)


def test_circle(tmp_path: Path) -> None:
    shape = {"type": "shape", "shape": "circle", "fill": "#ff0000",
             "x": 50, "y": 15, "width": 60, "height": 60}
    (frame,) = render(one_scene(shape), tmp_path, [0])
    assert list(frame[45, 80]) == [255, 0, 0]  # centre
    assert list(frame[16, 51]) == [0, 0, 0]  # the box's corner is outside the circle
    area = int((frame[:, :, 0] > 127).sum())
    assert area == pytest.approx(np.pi * 30 * 30, rel=0.01)


def test_later_layers_are_drawn_on_top(tmp_path: Path) -> None:
    under = {"type": "shape", "fill": "#ff0000", "x": 0, "y": 0, "width": 100, "height": 90}
    over = {"type": "shape", "fill": "#0000ff", "x": 60, "y": 0, "width": 100, "height": 90}
    (frame,) = render(one_scene(under, over), tmp_path, [0])
    assert list(frame[45, 30]) == [255, 0, 0]
    assert list(frame[45, 80]) == [0, 0, 255]


def test_opacity_half_blends(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff", "x": 40, "y": 20, "width": 80, "height": 50,
             "opacity": 0.5}
    (frame,) = render(one_scene(shape, bg="#000000"), tmp_path, [0])
    assert abs(int(frame[45, 80, 0]) - 127.5) <= 1
    assert np.all(frame[45, 80] == frame[45, 80, 0])

    shape2 = {**shape, "fill": "#ff0000", "opacity": 0.5}
    (frame,) = render(one_scene(shape2, bg="#0000ff"), tmp_path, [0])
    r, g, b = (int(v) for v in frame[45, 80])
    assert abs(r - 127.5) <= 1 and g == 0 and abs(b - 127.5) <= 1


def test_translucent_fill_colour_blends(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff40", "x": 40, "y": 20, "width": 80, "height": 50}
    (frame,) = render(one_scene(shape, bg="#000000"), tmp_path, [0])
    assert abs(int(frame[45, 80, 0]) - 0x40) <= 1


def test_layer_start_and_end(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff", "start": 0.5, "end": 1.0}
    frames = render(one_scene(shape, duration=2), tmp_path, range(60))
    shown = [n for n, f in enumerate(frames) if f[45, 80, 0] == 255]
    assert shown == list(range(15, 30))
    assert all(int(f.max()) == 0 for n, f in enumerate(frames) if n not in shown)


def test_layer_end_after_the_scene_is_clipped_to_it(tmp_path: Path) -> None:
    doc = {"scenes": [
        {"duration": 1, "layers": [{"type": "shape", "fill": "#ffffff", "end": 5}]},
        {"duration": 1},
    ]}
    frames = render(doc, tmp_path, range(60))
    assert [n for n, f in enumerate(frames) if f[45, 80, 0] == 255] == list(range(30))


def test_enter_fade_ramps_up(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff", "width": 40, "height": 40,
             "animation": {"in": "fade", "duration": 0.5}}
    frames = render(one_scene(shape, duration=2), tmp_path, range(20))
    values = [int(f[45, 80, 0]) for f in frames]
    assert values[0] == 0
    assert all(b > a for a, b in itertools.pairwise(values[:16]))
    assert values[15:] == [255] * 5
    for n in range(1, 15):
        assert abs(values[n] - 255 * easing.ease("ease-out", n / 15)) <= 1


def test_exit_fade_ramps_down(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff",
             "animation": {"out": "fade", "duration": 0.5}}
    frames = render(one_scene(shape, duration=1), tmp_path, range(30))
    values = [int(f[45, 80, 0]) for f in frames]
    assert values[:15] == [255] * 15
    assert all(b < a for a, b in itertools.pairwise(values[15:]))
    # The last frame shows time 29/30: 1/30 s before the end.
    assert abs(values[29] - 255 * easing.ease("ease-out", (1 / 30) / 0.5)) <= 1


def test_slide_in_from_the_left(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff", "x": 60, "y": 30, "width": 40, "height": 30,
             "animation": {"in": "slide_left", "duration": 1}}
    start, middle, settled = render(one_scene(shape, duration=3), tmp_path, [0, 15, 30])
    # At the start the box is a quarter of the frame (40 px) to the left, and invisible.
    assert int(start.max()) == 0
    # Half-way it is (1 - ease-out(0.5)) * 40 px to the left of its place.
    q = easing.ease("ease-out", 0.5)
    ys, xs = np.nonzero(middle[:, :, 0] > 0)
    assert (int(ys.min()), int(ys.max())) == (30, 59)
    assert xs.min() == np.floor(60 - (1 - q) * 40)
    assert np.all(settled[30:60, 60:100] == 255)
    assert int(settled[:, :60].max()) == 0
    assert int(settled[:, 100:].max()) == 0


def test_keyframed_x_moves_linearly(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff", "x": 0, "y": 0, "width": 20, "height": 90,
             "keyframes": {"x": [{"time": 0, "value": 0}, {"time": 1, "value": 100}]}}
    frames = render(one_scene(shape, duration=2), tmp_path, [0, 15, 30, 45])
    lefts = [int(np.nonzero(f[45, :, 0] == 255)[0][0]) for f in frames]
    assert lefts == [0, 50, 100, 100]


def test_scale_keeps_the_centre(tmp_path: Path) -> None:
    shape = {"type": "shape", "fill": "#ffffff", "x": 60, "y": 25, "width": 40, "height": 40,
             "scale": 0.5}
    (frame,) = render(one_scene(shape), tmp_path, [0])
    ys, xs = np.nonzero(frame[:, :, 0] == 255)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (70, 89, 35, 54)


def test_dissolve_midpoint_is_a_blend(tmp_path: Path) -> None:
    doc = {"scenes": [
        {"duration": 2, "background": "#ff0000",
         "transition": {"type": "dissolve", "duration": 0.5}},
        {"duration": 2, "background": "#0000ff"},
    ]}
    frames = render(doc, tmp_path, [44, 45, 52, 59, 60])
    assert np.all(frames[0] == [255, 0, 0])
    assert np.all(frames[4] == [0, 0, 255])
    # 15 transition frames 45..59; the middle one (52) has progress exactly 0.5.
    r, g, b = (int(v) for v in frames[2][45, 80])
    assert abs(r - 127.5) <= 1 and g == 0 and abs(b - 127.5) <= 1
    assert np.all(frames[2] == frames[2][0, 0])
    # Both scenes contribute from the first to the last transition frame.
    assert 0 < frames[1][0, 0, 2] < 20 and frames[1][0, 0, 0] > 235
    assert 0 < frames[3][0, 0, 0] < 20 and frames[3][0, 0, 2] > 235


def test_fade_transition_goes_through_black(tmp_path: Path) -> None:
    doc = {"scenes": [
        {"duration": 1, "background": "#ffffff", "transition": {"type": "fade", "duration": 0.5}},
        {"duration": 1, "background": "#ffffff"},
    ]}
    frames = render(doc, tmp_path, range(15, 30))
    values = [int(f[0, 0, 0]) for f in frames]
    darkest = values.index(min(values))
    assert darkest == 7  # the middle of 15 frames
    assert min(values) <= 2
    assert values[:8] == sorted(values[:8], reverse=True)
    assert values[7:] == sorted(values[7:])


def test_wipe_right_midpoint(tmp_path: Path) -> None:
    doc = {"scenes": [
        {"duration": 1, "background": "#ff0000",
         "transition": {"type": "wipe_right", "duration": 0.5}},
        {"duration": 1, "background": "#0000ff"},
    ]}
    (frame,) = render(doc, tmp_path, [22])
    # progress 0.5: the left half already shows the next scene
    assert np.all(frame[:, :80] == [0, 0, 255])
    assert np.all(frame[:, 80:] == [255, 0, 0])


@pytest.mark.parametrize("kind", sorted(transitions.TRANSITIONS))
def test_every_transition_keeps_shape_and_ends(kind: str) -> None:
    a = np.full((90, 160, 3), 200, np.uint8)
    b = np.full((90, 160, 3), 40, np.uint8)
    for p in (0.01, 0.5, 0.99):
        out = transitions.blend(kind, a, b, p)
        assert out.shape == a.shape
        assert out.dtype == np.uint8
    near_end = transitions.blend(kind, a, b, 0.999)
    assert np.abs(near_end.astype(int) - 40).mean() < 3


def test_transition_progress_is_strictly_inside() -> None:
    ps = [transitions.progress(f, 45, 15) for f in range(45, 60)]
    assert 0 < ps[0] < 0.05 and 0.95 < ps[-1] < 1
    assert ps[7] == pytest.approx(0.5)
    assert all(b > a for a, b in itertools.pairwise(ps))


def test_background_image_covers(tmp_path: Path) -> None:
    write_solid_png(tmp_path / "bg.png", (64, 36), (10, 200, 30))
    doc = {"scenes": [{"duration": 1, "background": "#ffffff", "background_image": "bg.png"}]}
    (frame,) = render(doc, tmp_path, [0])
    assert np.all(frame == [10, 200, 30])


def test_image_contain_letterboxes(tmp_path: Path) -> None:
    write_solid_png(tmp_path / "square.png", (50, 50), (255, 255, 0))
    layer = {"type": "image", "src": "square.png", "fit": "contain"}
    (frame,) = render(one_scene(layer, bg="#000000"), tmp_path, [0])
    yellow = np.all(frame == [255, 255, 0], axis=2)
    xs = np.nonzero(yellow[45])[0]
    # a 90x90 square centred in 160x90: columns 35..124
    assert (int(xs.min()), int(xs.max())) == (35, 124)
    assert np.all(frame[:, :34] == 0)


def test_text_is_drawn_centred(tmp_path: Path) -> None:
    layer = {"type": "text", "text": "HI", "style": {"size": 40, "color": "#ffffff"}}
    (frame,) = render(one_scene(layer), tmp_path, [0])
    ys, xs = np.nonzero(frame[:, :, 0] > 128)
    assert len(xs) > 200
    assert abs((xs.min() + xs.max() + 1) / 2 - 80) <= 2
    assert abs((ys.min() + ys.max() + 1) / 2 - 45) <= 4


def test_frame_outside_the_timeline(tmp_path: Path) -> None:
    tl = engine.load_timeline({"output": OUT, "scenes": [{"duration": 1}]}, base_dir=tmp_path)
    with Compositor(tl) as compositor:
        with pytest.raises(IndexError, match=r"frame 30 is outside 0\.\.29"):
            compositor.render(30)
        with pytest.raises(IndexError):
            compositor.render(-1)


def test_frames_do_not_depend_on_render_order(tmp_path: Path) -> None:
    write_solid_png(tmp_path / "p.png", (80, 45), (90, 30, 200))
    doc = {"scenes": [
        {"duration": 1, "transition": {"type": "circle_open", "duration": 0.4},
         "layers": [{"type": "image", "src": "p.png", "motion": {"zoom": [1, 2],
                                                                  "pan": "left"}},
                    {"type": "text", "text": "a", "animation": {"in": "pop"}}]},
        {"duration": 1, "layers": [{"type": "shape", "rotation": 30, "width": 50,
                                    "height": 20, "animation": {"out": "zoom"}}]},
    ]}
    tl = engine.load_timeline({"output": OUT, **doc}, base_dir=tmp_path)
    order = list(range(tl.total_frames))
    assert len(order) > 1, "the order of one frame or none means nothing"
    with Compositor(tl) as compositor:
        forward = [compositor.render(n) for n in order]
    with Compositor(tl) as compositor:
        backward = {n: compositor.render(n) for n in reversed(order)}
    for n in order:
        assert np.array_equal(forward[n], backward[n]), n


def test_slides_cross_fade(tmp_path: Path) -> None:
    write_solid_png(tmp_path / "a.png", (32, 18), (255, 0, 0))
    write_solid_png(tmp_path / "b.png", (32, 18), (0, 0, 255))
    layer = {"type": "slides", "images": [{"src": "a.png"}, {"src": "b.png"}],
             "crossfade": 0.5}
    # Two slots of (2 + 0.5) / 2 = 1.25 s overlapping by 0.5 s: a 0..1.25, b 0.75..2.
    frames = render(one_scene(layer, duration=2), tmp_path, [0, 15, 22, 30, 37, 38, 59])
    colours = [tuple(int(v) for v in f[45, 80]) for f in frames]
    assert colours[0] == (255, 0, 0)
    assert colours[1] == (255, 0, 0)
    assert colours[2] == (255, 0, 0)  # 0.733 s: b has not started
    r, g, b = colours[3]  # 1.0 s: half-way through the cross-fade
    assert abs(r - 127.5) <= 1 and g == 0 and abs(b - 127.5) <= 1
    weight = (37 / 30 - 0.75) / 0.5  # 1.233 s: b is almost in
    assert abs(colours[4][2] - 255 * weight) <= 1
    assert colours[5] == (0, 0, 255)  # 1.267 s: a is over, b alone
    assert colours[6] == (0, 0, 255)


def test_captions_show_during_their_cue(tmp_path: Path) -> None:
    (tmp_path / "subs.srt").write_text(
        "1\n00:00:00,500 --> 00:00:01,000\nHELLO\n\n"
        "2\n00:00:01,500 --> 00:00:01,800\nAGAIN\n", encoding="utf-8")
    layer = {"type": "captions", "src": "subs.srt", "style": {"size": 20, "color": "#ffffff"}}
    frames = render(one_scene(layer, duration=2), tmp_path, range(60))
    lit = [n for n, f in enumerate(frames) if int(f[:, :, 0].max()) > 128]
    assert lit == list(range(15, 30)) + list(range(45, 54))
    # Captions sit at the bottom by default.
    ys = np.nonzero(frames[20][:, :, 0] > 128)[0]
    assert ys.min() > 45


def test_malformed_captions_are_an_asset_error(tmp_path: Path) -> None:
    from framefarm import errors

    (tmp_path / "bad.vtt").write_text("not a caption file", encoding="utf-8")
    layer = {"type": "captions", "src": "bad.vtt"}
    with pytest.raises(errors.AssetError, match=r"bad\.vtt: not a valid caption file"):
        render(one_scene(layer), tmp_path, [0])


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("opacity", [1.0, 0.6])
def test_opaque_warps_match_a_plain_three_channel_warp(rotated: bool, opacity: float) -> None:
    """Opaque bitmaps are resampled as four channels (faster in OpenCV); the pixels must be
    exactly those of the straightforward three-channel warp and blend."""
    import cv2

    from framefarm.compositor import bitmap

    rng = np.random.default_rng(3)
    photo = bitmap.Bitmap(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8))
    canvas = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    angle = np.radians(17.0 if rotated else 0.0)
    scale = 1.137
    matrix = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 13.4],
                       [scale * np.sin(angle), scale * np.cos(angle), 9.7]])
    drawn = canvas.copy()
    bitmap.draw(drawn, photo, matrix, opacity)

    # The reference: OpenCV's three-channel warp into the same region, then the blend.
    left, top, right, bottom = bitmap._bounds(matrix, photo.width, photo.height)
    x0, y0 = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
    x1, y1 = min(200, int(np.ceil(right))), min(120, int(np.ceil(bottom)))
    local = bitmap._centred(matrix)
    local[0, 2] -= x0
    local[1, 2] -= y0
    expected = canvas.copy()
    roi = expected[y0:y1, x0:x1]
    patch = roi.copy()
    cv2.warpAffine(photo.pixels, local, (x1 - x0, y1 - y0), dst=patch, flags=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_TRANSPARENT if rotated else cv2.BORDER_REPLICATE)
    cv2.addWeighted(patch, opacity, roi, 1.0 - opacity, 0.0, dst=roi)
    assert not np.array_equal(drawn, canvas)
    assert np.array_equal(drawn, expected)
