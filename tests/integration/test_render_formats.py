"""Render a small generated document to each format and check what FFmpeg wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framefarm import engine
from framefarm import media as probe
from framefarm.compositor.frame import Compositor
from support.files import files_in
from support.media import Stage, decode_audio, decode_video, video_pts

pytestmark = pytest.mark.ffmpeg

FPS = 30
# 1.2 s + 1.0 s overlapping by 0.4 s: 36 + 30 - 12 = 54 frames = 1.8 s
FRAMES = 54
DURATION = FRAMES / FPS


def document() -> dict[str, Any]:
    return {
        "output": {"width": 320, "height": 180, "fps": FPS, "quality": "draft"},
        "music": {"src": "tone.m4a", "volume": 0.3, "fade_out": 0.5},
        "scenes": [
            {"duration": 1.2, "background": "#203040", "voiceover": {"src": "voice.wav"},
             "transition": {"type": "slide_left", "duration": 0.4},
             "layers": [
                 {"type": "shape", "fill": "#ff5a00", "x": 20, "y": 20, "width": 80,
                  "height": 60},
                 {"type": "text", "text": "framefarm", "style": {"size": 28},
                  "animation": {"in": "fade", "duration": 0.3}},
             ]},
            {"duration": 1.0, "background": "#f0f0f0",
             "layers": [{"type": "shape", "shape": "circle", "fill": "#2040ff",
                         "width": 60, "height": 60}]},
        ],
    }


@pytest.fixture
def project(stage: Stage) -> Path:
    return stage("tone.m4a", "voice.wav")


def test_mp4(project: Path) -> None:
    out = project / "out" / "video.mp4"
    out.parent.mkdir()
    steps: list[engine.Progress] = []
    result = engine.render(document(), out, base_dir=project, on_progress=steps.append)
    assert result.output == out
    assert (result.frames, result.width, result.height, result.fps, result.format) == (
        FRAMES, 320, 180, FPS, "mp4")
    assert result.duration == pytest.approx(DURATION)

    info = probe.probe(out, count_frames=True)
    assert info.video is not None and info.audio is not None
    assert info.video.codec == "h264"
    assert (info.video.width, info.video.height) == (320, 180)
    assert info.video.fps == pytest.approx(FPS)
    assert info.video.frames == FRAMES
    assert info.video.pix_fmt == "yuv420p"
    assert abs(info.video.duration - DURATION) <= 1 / FPS
    assert abs(info.duration - DURATION) <= 1 / FPS
    assert info.audio.codec == "aac"
    assert info.audio.sample_rate == 48000
    assert info.audio.channels == 2
    assert abs(info.audio.duration - DURATION) <= 0.05

    pcm, rate = decode_audio(out)
    assert abs(pcm.shape[1] / rate - DURATION) <= 0.05
    assert np.sqrt((pcm**2).mean()) > 0.01  # there is sound

    pts, time_base = video_pts(out)
    assert len(pts) == FRAMES
    assert pts[0] == 0
    steps_between = set(np.diff(pts).tolist())
    assert len(steps_between) == 1
    assert steps_between.pop() * time_base == pytest.approx(1 / FPS)

    # faststart: the index is in front of the media data
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    # Nothing else is left in the output folder.
    assert files_in(out.parent) == {"video.mp4"}

    assert [s.step for s in steps][:2] == ["prepare", "render"]
    assert steps[-1].step == "done"
    assert steps[-1].frames_done == FRAMES == steps[-1].frames_total
    assert steps[-1].percent == 100.0


def test_webm(project: Path) -> None:
    out = project / "video.webm"
    result = engine.render(document(), out, base_dir=project)
    assert result.format == "webm"
    info = probe.probe(out, count_frames=True)
    assert info.format == "matroska,webm"
    assert info.video is not None and info.audio is not None
    assert info.video.codec == "vp9"
    assert info.audio.codec == "opus"
    assert (info.video.width, info.video.height) == (320, 180)
    assert info.video.frames == FRAMES
    assert info.video.fps == pytest.approx(FPS)
    assert abs(info.video.duration - DURATION) <= 1 / FPS
    assert abs(info.audio.duration - DURATION) <= 0.05
    pcm, rate = decode_audio(out)
    assert abs(pcm.shape[1] / rate - DURATION) <= 0.05


def test_gif(project: Path) -> None:
    out = project / "video.gif"
    result = engine.render(document(), out, base_dir=project)
    assert (result.format, result.frames) == ("gif", FRAMES)
    info = probe.probe(out, count_frames=True)
    assert info.video is not None
    assert info.audio is None
    assert info.video.codec == "gif"
    assert (info.video.width, info.video.height) == (320, 180)
    assert info.video.frames == FRAMES
    # GIF delays are whole centiseconds; the total still has to be right.
    assert abs(info.duration - DURATION) <= 1 / FPS
    frames = decode_video(out)
    assert frames.shape == (FRAMES, 180, 320, 3)
    # The orange box of the first scene, through a 256-colour palette.
    assert np.abs(frames[5, 50, 60].astype(int) - [255, 90, 0]).max() <= 24
    assert files_in(project) == {"tone.m4a", "voice.wav", "video.gif"}


def test_png_is_the_exact_compositor_frame(project: Path) -> None:
    out = project / "frame.png"
    result = engine.render(document(), out, base_dir=project, frames=(40, 41))
    assert (result.format, result.frames) == ("png", 1)
    tl = engine.load_timeline(document(), base_dir=project)
    with Compositor(tl) as compositor:
        expected = compositor.render(40)
    from PIL import Image

    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.size == (320, 180)
        assert np.array_equal(np.asarray(img.convert("RGB")), expected)


def test_format_from_option_overrides_the_document(project: Path) -> None:
    doc = document()
    doc["output"]["format"] = "webm"
    out = project / "clip"  # no suffix: the document's format, unless told
    engine.render(doc, out, base_dir=project, format="gif", frames=(0, 3))
    assert probe.probe(out).format == "gif"


def test_size_and_fps_overrides(project: Path) -> None:
    out = project / "small.mp4"
    result = engine.render(document(), out, base_dir=project, size="360p", fps=25,
                           frames=(0, 10))
    assert (result.width, result.height, result.fps, result.frames) == (640, 360, 25, 10)
    info = probe.probe(out, count_frames=True)
    assert info.video is not None
    assert (info.video.width, info.video.height, info.video.frames) == (640, 360, 10)
    assert info.video.fps == pytest.approx(25)
    assert abs(info.duration - 10 / 25) <= 1 / 25
