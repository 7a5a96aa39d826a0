"""Ken Burns: the zoom grows smoothly, frame after frame, by fractions of a pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framefarm import engine
from framefarm.compositor.frame import Compositor
from support.media import Stage, decode_video
from support.pixels import ring_radius

pytestmark = pytest.mark.ffmpeg

W, H, FPS, SECONDS = 320, 180, 30, 2
FRAMES = FPS * SECONDS


def document(**motion: object) -> dict[str, object]:
    return {
        "output": {"width": W, "height": H, "fps": FPS, "quality": "lossless"},
        "scenes": [{"duration": SECONDS, "layers": [
            {"type": "image", "src": "ring.png", "motion": {"zoom": [1.0, 1.5], **motion}},
        ]}],
    }


def radii(frames: list[np.ndarray] | np.ndarray) -> np.ndarray:
    return np.array([ring_radius(f, (W / 2, H / 2)) for f in frames])


@pytest.fixture
def project(stage: Stage) -> Path:
    return stage("ring.png")


def compositor_frames(doc: dict[str, object], base: Path) -> list[np.ndarray]:
    tl = engine.load_timeline(doc, base_dir=base)
    assert tl.total_frames == FRAMES
    with Compositor(tl) as compositor:
        return [compositor.render(n) for n in range(FRAMES)]


def test_linear_zoom_grows_monotonically_and_sub_pixel(project: Path) -> None:
    r = radii(compositor_frames(document(), project))
    # The 640x360 picture covers 320x180: scale 0.5, so the ring (radius ~77 px inside its
    # 6 px stroke) starts at ~38.5 px.
    assert r[0] == pytest.approx(38.5, abs=0.5)
    steps = np.diff(r)
    assert np.all(steps > 0), "the zoom stepped back"
    assert np.all(steps < 1.0), "the zoom jumped by a pixel or more"
    # Linear zoom: equal steps; no jitter from snapping to whole pixels.
    assert np.abs(np.diff(steps)).max() < 0.05
    # And exactly the zoom asked for: 1 + 0.5 * n / FRAMES (progress runs over the scene).
    expected = r[0] * (1 + 0.5 * np.arange(FRAMES) / FRAMES)
    assert np.abs(r - expected).max() < 0.05


def test_eased_zoom_is_smooth_too(project: Path) -> None:
    r = radii(compositor_frames(document(easing="ease-in-out"), project))
    steps = np.diff(r)
    assert np.all(steps > 0)
    assert steps.max() < 1.0
    # Slow at both ends, fastest in the middle.
    assert steps[0] < steps[len(steps) // 2] / 4
    assert steps[-1] < steps[len(steps) // 2] / 4
    assert np.abs(np.diff(steps)).max() < 0.05


def test_zoom_with_pan_keeps_growing(project: Path) -> None:
    frames = compositor_frames(document(pan="left"), project)
    # The ring moves, so measure its size as the spread of the dark pixels.
    spreads = []
    for f in frames:
        ys, _ = np.nonzero(f[:, :, 0] < 128)
        spreads.append(float(ys.max() - ys.min()))
    assert spreads == sorted(spreads)
    assert spreads[-1] - spreads[0] == pytest.approx(77 * 2 * 0.5 * 0.5, abs=3)


def test_encoded_lossless_video_keeps_the_smooth_zoom(project: Path) -> None:
    out = project / "kb.mp4"
    engine.render(document(), out, base_dir=project)
    decoded = decode_video(out)
    assert decoded.shape == (FRAMES, H, W, 3)
    r = radii(decoded)
    steps = np.diff(r)
    assert np.all(steps > 0)
    assert np.all(steps < 1.0)
    assert np.abs(np.diff(steps)).max() < 0.06
    # The same as the composited frames, up to the colour conversion.
    assert np.abs(r - radii(compositor_frames(document(), project))).max() < 0.1


# -- pan: monotonic in its named direction from the first frame ------------------------------

# The picture's drift for each pan: the sign of the blob's on-screen motion in x and y.
PANS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
        "up-left": (-1, -1), "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1)}


def write_blob_png(path: Path, size: tuple[int, int] = (640, 360), sigma: float = 24) -> None:
    """A soft dark blob centred on white: smooth, so its centroid does not alias."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    dark = np.exp(-((xx + 0.5 - w / 2) ** 2 + (yy + 0.5 - h / 2) ** 2) / (2 * sigma**2))
    grey = np.round(255 * (1 - dark)).astype(np.uint8)
    Image.fromarray(np.dstack([grey] * 3)).save(path)


def blob_centres(frames: list[np.ndarray]) -> np.ndarray:
    """Darkness-weighted centroid (x, y) of each frame: the blob's centre on screen."""
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for f in frames:
        weight = 255.0 - f.astype(np.float64).mean(axis=2)
        total = weight.sum()
        out.append(((weight * (xx + 0.5)).sum() / total, (weight * (yy + 0.5)).sum() / total))
    return np.array(out)


@pytest.mark.parametrize("pan", sorted(PANS))
def test_pan_drifts_the_named_way_from_the_first_frame(tmp_path: Path, pan: str) -> None:
    # The 640x360 picture exactly covers the frame at zoom 1.0: no room to pan at first,
    # which is where the picture used to drift the opposite way for a quarter of the shot.
    write_blob_png(tmp_path / "blob.png")
    doc = document(pan=pan)
    layer = doc["scenes"][0]["layers"][0]  # type: ignore[index]
    layer["src"] = "blob.png"
    layer["motion"]["zoom"] = [1.0, 1.3]  # keeps the blob on screen for every pan
    centres = blob_centres(compositor_frames(doc, tmp_path))
    n = np.arange(FRAMES)
    for axis, sign in enumerate(PANS[pan]):
        name = "xy"[axis]
        if sign == 0:
            assert np.abs(centres[:, axis] - (W, H)[axis] / 2).max() < 0.05, name
            continue
        steps = np.diff(centres[:, axis]) * sign
        assert np.all(steps > 0), (
            f"pan {pan}: the picture moves the wrong way in {name} at frames "
            f"{np.nonzero(steps <= 0)[0][:8]} (first steps {steps[:4]})")
        # Smooth: within a few hundredths of a pixel of a smooth (cubic) curve.
        fit = np.polyval(np.polyfit(n, centres[:, axis], 3), n)
        assert np.abs(centres[:, axis] - fit).max() < 0.05, name
