"""Every video output says what its frames are: matrix, primaries, transfer and range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from framefarm import engine
from framefarm.compositor.frame import Compositor
from support.media import decode_video

pytestmark = pytest.mark.ffmpeg

FPS = 25
# In-process BT.601 limited-range 4:2:0 (OpenCV), or FFmpeg's BT.709 4:4:4 for lossless;
# the RGB is the compositor's, sRGB.
TAGS_420 = ("smpte170m", "bt709", "iec61966-2-1", "tv")
TAGS_444 = ("bt709", "bt709", "iec61966-2-1", "tv")


def document(quality: str) -> dict[str, Any]:
    return {
        "output": {"width": 160, "height": 96, "fps": FPS, "quality": quality},
        "scenes": [{"duration": 0.8, "background": "#c03020", "layers": [
            {"type": "shape", "fill": "#20c040", "width": 60, "height": 40}]}],
    }


def tags(path: Path) -> tuple[str, str, str, str]:
    with av.open(str(path)) as container:
        cc = container.streams.video[0].codec_context
        names = (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range)
        return tuple(_name(kind, v) for kind, v in zip(  # type: ignore[return-value]
            ("space", "primaries", "trc", "range"), names, strict=True))


_NAMES = {
    "space": {1: "bt709", 5: "bt470bg", 6: "smpte170m", 2: "unknown"},
    "primaries": {1: "bt709", 2: "unknown", 6: "smpte170m"},
    "trc": {1: "bt709", 2: "unknown", 6: "smpte170m", 13: "iec61966-2-1"},
    "range": {0: "unknown", 1: "tv", 2: "pc"},
}


def _name(kind: str, value: object) -> str:
    number = int(value)  # type: ignore[call-overload]
    return _NAMES[kind].get(number, str(number))


@pytest.mark.parametrize(("fmt", "quality", "expected"), [
    ("mp4", "draft", TAGS_420), ("webm", "draft", TAGS_420),
    ("mp4", "lossless", TAGS_444), ("webm", "lossless", TAGS_444),
])
@pytest.mark.parametrize("chunks", [1, 2])
def test_output_is_tagged_with_what_its_frames_are(
    tmp_path: Path, fmt: str, quality: str, expected: tuple[str, ...], chunks: int
) -> None:
    out = tmp_path / f"out.{fmt}"
    engine.render(document(quality), out, base_dir=tmp_path, chunks=chunks)
    assert tags(out) == expected


@pytest.mark.parametrize(("fmt", "quality", "expected"), [
    ("mp4", "draft", TAGS_420), ("webm", "low", TAGS_420), ("mp4", "lossless", TAGS_444),
])
def test_a_part_is_tagged_too(tmp_path: Path, fmt: str, quality: str,
                              expected: tuple[str, ...]) -> None:
    doc = document(quality)
    doc["output"]["format"] = fmt
    tl = engine.load_timeline(doc, base_dir=tmp_path)
    part = tmp_path / f"part.{fmt}"
    engine.render_part(tl, (0, 10), part)
    assert tags(part) == expected


def test_the_tags_are_true_decoding_by_them_gives_the_composited_colours(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.mp4"
    doc = document("high")
    engine.render(doc, out, base_dir=tmp_path)
    tl = engine.load_timeline(doc, base_dir=tmp_path)
    with Compositor(tl) as compositor:
        expected = compositor.render(0).astype(int)
    decoded = decode_video(out)[0].astype(int)  # PyAV converts by the stream's matrix
    # Flat areas away from the edges (4:2:0 chroma bleeds at them).
    assert np.abs(decoded[4:20, 4:40] - expected[4:20, 4:40]).max() <= 3
    assert np.abs(decoded[40:56, 70:90] - expected[40:56, 70:90]).max() <= 3
