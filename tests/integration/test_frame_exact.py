"""Frame exactness: any frame range, and any number of chunks, gives exactly the frames of
the full render (lossless output, compared bit for bit after decoding)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from framefarm import engine
from framefarm import media as probe
from framefarm.cli import app
from framefarm.compositor.frame import Compositor
from support.documents import write_doc
from support.files import files_in
from support.media import (
    decode_audio,
    decode_video,
    video_pts,
    window_rms,
    write_grid_png,
    write_wav,
)

pytestmark = pytest.mark.ffmpeg

FPS = 30
# Scene 0: frames 0..44; the dissolve: 30..44; scene 1: 30..74.
TOTAL = 75
DOC: dict[str, Any] = {
    "output": {"width": 320, "height": 180, "fps": FPS, "quality": "lossless"},
    "audio": {"normalize": False},
    "music": {"src": "hum.wav", "volume": 1, "fade_out": 0},
    "scenes": [
        {"duration": 1.5, "background": "#204080",
         "transition": {"type": "dissolve", "duration": 0.5},
         "layers": [
             {"type": "image", "src": "grid.png", "width": 200, "height": 120,
              "motion": {"zoom": [1.0, 1.5], "pan": "up-left", "easing": "ease-in-out"}},
             # slides in over frames 0..23
             {"type": "text", "text": "Frame exact", "style": {"size": 30},
              "animation": {"in": "slide_left", "duration": 0.8}},
         ]},
        {"duration": 1.5, "background": "#802040",
         "layers": [
             # moves over scene time 0.6..1.2 s: frames 48..66
             {"type": "text", "text": "moving", "style": {"size": 24}, "width": 120,
              "keyframes": {"x": [{"time": 0.6, "value": 0},
                                  {"time": 1.2, "value": 200, "easing": "ease-out"}],
                            "rotation": [{"time": 0, "value": 0}, {"time": 1.5, "value": 20}]},
              "animation": {"out": "fade", "duration": 0.3}},
         ]},
    ],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exact")
    write_grid_png(folder / "grid.png")
    write_wav(folder / "hum.wav", 1.0, channels=2, freq=200, amplitude=0.3)
    write_doc(folder, DOC)
    return folder


@pytest.fixture(scope="module")
def full(project: Path) -> np.ndarray:
    out = project / "full.mp4"
    engine.render(DOC, out, base_dir=project)
    frames = decode_video(out)
    assert frames.shape == (TOTAL, 180, 320, 3)
    return frames


def test_timeline_is_as_planned(project: Path) -> None:
    tl = engine.load_timeline(DOC, base_dir=project)
    assert [(s.start, s.frames, s.transition_frames) for s in tl.scenes] == [
        (0, 45, 15), (30, 45, 0)]
    assert tl.total_frames == TOTAL


def test_compositor_starting_mid_way_matches_a_sequential_pass(project: Path) -> None:
    tl = engine.load_timeline(DOC, base_dir=project)
    with Compositor(tl) as compositor:
        sequential = [compositor.render(n) for n in range(TOTAL)]
    for start, end in [(12, 20), (29, 36), (37, 50), (55, 75), (0, 3)]:
        with Compositor(tl) as compositor:  # a fresh one, as a render node would have
            for n in range(start, end):
                assert np.array_equal(compositor.render(n), sequential[n]), (start, n)
    # The frames really differ from each other (the comparison above means something).
    assert not np.array_equal(sequential[12], sequential[13])
    assert not np.array_equal(sequential[40], sequential[41])
    assert not np.array_equal(sequential[57], sequential[58])


@pytest.mark.parametrize(
    "frames",
    [
        (10, 20),  # inside scene 0, inside the slide-in
        (20, 37),  # from the end of the slide-in into the middle of the dissolve
        (33, 41),  # both ends inside the dissolve
        (44, 57),  # last dissolve frame to the middle of the keyframed move
        (57, 75),  # from inside the move to the end
        (0, 1),  # a single frame
    ],
)
def test_range_render_equals_the_same_frames_of_the_full_render(
    project: Path, full: np.ndarray, frames: tuple[int, int], tmp_path: Path
) -> None:
    out = tmp_path / "range.mp4"
    result = engine.render(DOC, out, base_dir=project, frames=frames)
    a, b = frames
    assert result.frames == b - a
    part = decode_video(out)
    assert part.shape[0] == b - a
    for i, n in enumerate(range(a, b)):
        assert np.array_equal(part[i], full[n]), f"frame {n} differs"
    pcm, rate = decode_audio(out)
    assert abs(pcm.shape[1] / rate - (b - a) / FPS) <= 0.05


def test_three_chunks_equal_one(project: Path, full: np.ndarray, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "chunked.mp4"
    result = CliRunner().invoke(app, ["render", str(project / "doc.json"), "-o", str(out),
                                      "--chunks", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert re.search(rf"\b{TOTAL}\s+frames", result.stdout)  # rich may wrap the line
    assert files_in(out_dir) == {"chunked.mp4"}  # no parts or lists left behind

    info = probe.probe(out, count_frames=True)
    assert info.video is not None and info.audio is not None
    assert info.video.frames == TOTAL
    assert info.video.pix_fmt == "yuv444p"
    assert abs(info.video.duration - TOTAL / FPS) <= 1 / FPS

    chunked = decode_video(out)
    assert chunked.shape == full.shape
    for n in range(TOTAL):
        assert np.array_equal(chunked[n], full[n]), f"frame {n} differs"

    # No duplicated, missing or shifted frame at the seams (25 and 50): pts step evenly.
    pts, time_base = video_pts(out)
    assert len(pts) == TOTAL
    assert pts[0] == 0
    assert set(np.diff(pts).tolist()) == {round(1 / FPS / time_base)}

    # The sound runs the whole length without a gap.
    pcm, rate = decode_audio(out)
    assert abs(pcm.shape[1] / rate - TOTAL / FPS) <= 0.05
    rms = window_rms(pcm.mean(axis=0)[rate // 50:], rate // 50)  # 20 ms windows
    assert rms.min() > 0.1


def test_chunked_webm_has_every_frame(project: Path, tmp_path: Path) -> None:
    doc = {**DOC, "output": {**DOC["output"], "quality": "draft", "chunks": 4}}
    out = tmp_path / "chunked.webm"
    engine.render(doc, out, base_dir=project)
    info = probe.probe(out, count_frames=True)
    assert info.video is not None
    assert info.video.codec == "vp9"
    assert info.video.frames == TOTAL
    pts, _ = video_pts(out)
    assert np.all(np.diff(pts) > 0)
    assert abs(len(pts) / FPS - info.video.duration) <= 1 / FPS


def test_chunked_range(project: Path, full: np.ndarray, tmp_path: Path) -> None:
    out = tmp_path / "r.mp4"
    result = engine.render(DOC, out, base_dir=project, frames=(17, 62), chunks=3)
    assert result.frames == 45
    part = decode_video(out)
    assert part.shape[0] == 45
    assert all(np.array_equal(part[i], full[17 + i]) for i in range(45))


def test_copy_of_project_renders_identically(project: Path, full: np.ndarray,
                                             tmp_path: Path) -> None:
    """Renders depend on the document and its assets only, not on where they are."""
    moved = tmp_path / "elsewhere"
    shutil.copytree(project, moved, ignore=shutil.ignore_patterns("*.mp4"))
    out = tmp_path / "again.mp4"
    engine.render(moved / "doc.json", out, frames=(30, 45))
    assert np.array_equal(decode_video(out), full[30:45])
