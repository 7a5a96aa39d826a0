"""The compositor's fast paths draw exactly the pixels of its plain path.

The plain path (``bitmap.FAST_PATHS = False``) is the compositor as it was before the
speed work: whole text sprites, their blend planes made at every draw, the background
filled under every frame. The fast path trims sprites to their visible pixels, prepares
the planes once and leaves the background unfilled under a still that covers the whole
frame. Both are lossless rewrites,
so the frames must be identical, not merely close: a frame in every scene and in every
transition of each example is compared.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from framefarm import engine
from framefarm.compositor import bitmap
from framefarm.compositor.frame import Compositor
from framefarm.document import loader
from framefarm.document.timeline import Timeline
from support.ci import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MEDIA_SCRIPT = ROOT / "scripts" / "make_example_media.py"
CASES = [("slideshow.json", None), ("story.json", "story.data.json"),
         ("typography.json", None), ("social.json", None)]


@pytest.fixture(scope="module")
def example_media() -> Path:
    if not MEDIA_SCRIPT.is_file():
        skip_or_fail(f"{MEDIA_SCRIPT.relative_to(ROOT)} is not there yet")
    proc = subprocess.run([sys.executable, str(MEDIA_SCRIPT.relative_to(ROOT)), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return EXAMPLES / "media"


def _frames_to_check(tl: Timeline) -> list[int]:
    """The middle of every scene and of every transition, and each scene's first frame."""
    frames = set()
    for span in tl.scenes:
        frames.update({span.start, (span.start + span.end - 1) // 2})
        if span.transition is not None and span.transition_frames:
            frames.add(span.end - span.transition_frames // 2 - 1)
    return sorted(f for f in frames if 0 <= f < tl.total_frames)


def _render(tl: Timeline, frames: list[int], prepared: bool,
            monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    monkeypatch.setattr(bitmap, "FAST_PATHS", prepared)
    with Compositor(tl) as compositor:
        return [compositor.render(n).copy() for n in frames]


@pytest.mark.parametrize(("name", "data_name"), CASES, ids=[c[0] for c in CASES])
def test_fast_path_draws_the_plain_paths_pixels(
    name: str, data_name: str | None, example_media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = loader.read_json(EXAMPLES / data_name, what="data file") if data_name else None
    tl = engine.load_timeline(EXAMPLES / name, data=data, size="360p")
    frames = _frames_to_check(tl)
    plain = _render(tl, frames, False, monkeypatch)
    fast = _render(tl, frames, True, monkeypatch)
    for n, a, b in zip(frames, plain, fast, strict=True):
        differing = int(np.count_nonzero(a != b))
        assert differing == 0, f"{name} frame {n}: {differing} values differ"


def _sprite() -> bitmap.Bitmap:
    """A text-like sprite: a small opaque-ish shape in a wide transparent box."""
    image = Image.new("RGBA", (300, 60), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((120, 15, 180, 45), fill=(250, 200, 40, 200))
    return bitmap.from_pil(image)


def test_trimmed_sprite_is_smaller_and_draws_the_same_at_any_position() -> None:
    sprite = _sprite()
    offset = bitmap.affine(1, 1, -4, -4)
    cut, moved = bitmap.trimmed(sprite, offset)
    assert cut.width < sprite.width / 3 and cut.height < sprite.height
    rng = np.random.default_rng(7)
    background = rng.integers(0, 256, (120, 400, 3), dtype=np.uint8)
    # Whole pixels (the slice path), fractions and a scale (the warp path), partly outside
    # the canvas, and a fade.
    for tx, ty, scale, opacity in [(20, 30, 1.0, 1.0), (20.4, 30.7, 1.0, 1.0),
                                   (-140, 10, 1.0, 1.0), (50.25, 5.5, 1.3, 0.6),
                                   (300, 80, 1.0, 0.35)]:
        place = bitmap.affine(scale, scale, tx, ty)
        whole, trimmed = background.copy(), background.copy()
        bitmap.draw(whole, sprite, bitmap.compose(place, offset), opacity)
        bitmap.draw(trimmed, cut, bitmap.compose(place, moved), opacity)
        assert np.array_equal(whole, trimmed), (tx, ty, scale, opacity)
        assert not np.array_equal(whole, background) or tx >= 300


def test_an_empty_sprite_trims_to_nothing_visible() -> None:
    empty = bitmap.from_pil(Image.new("RGBA", (50, 20), (0, 0, 0, 0)))
    cut, _ = bitmap.trimmed(empty, bitmap.affine(1, 1, 0, 0))
    canvas = np.full((30, 60, 3), 90, np.uint8)
    bitmap.draw(canvas, cut, bitmap.affine(1, 1, 5, 5))
    assert int(cut.pixels[:, :, 3].max()) == 0
    assert np.all(canvas == 90)


COVER_CASES = [
    # (layer fields, covers the 320x180 frame?)
    ({"fit": "cover", "motion": {"zoom": [1.0, 1.2], "pan": "left"}}, True),
    ({"fit": "cover"}, True),
    ({"fit": "contain"}, False),  # a 1:1 still letterboxed in 16:9
    ({"fit": "cover", "width": 200, "height": 120}, False),
    ({"fit": "cover", "opacity": 0.8}, False),
    ({"fit": "cover", "rotation": 5}, False),
    ({"fit": "cover", "x": 30}, False),
]


@pytest.mark.parametrize(("fields", "expected"), COVER_CASES,
                         ids=[str(c[0]) for c in COVER_CASES])
def test_a_still_said_to_cover_the_frame_writes_every_pixel(
    fields: dict[str, object], expected: bool, tmp_path: Path
) -> None:
    Image.effect_noise((240, 240), 60).convert("RGB").save(tmp_path / "square.png")
    doc = {"output": {"width": 320, "height": 180, "fps": 24},
           "scenes": [{"duration": 1, "layers": [{"type": "image", "src": "square.png",
                                                  **fields}]}]}
    tl = engine.load_timeline(doc, base_dir=tmp_path)
    with Compositor(tl) as compositor:
        layer = compositor._scene(tl.scenes[0]).layers[0]
        for t in (0.0, 0.35, 0.9):
            assert layer.covers(t) is expected, t
            if expected:  # whatever the canvas held, the drawn frame is the same
                dark, light = (np.full((180, 320, 3), v, np.uint8) for v in (0, 255))
                layer.draw(dark, t)
                layer.draw(light, t)
                assert np.array_equal(dark, light), t
