"""Snapshots: one frame to an image, the same pixels the compositor draws for it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from framefarm import engine, errors
from framefarm.cli import app
from framefarm.compositor.frame import Compositor
from support.documents import write_doc
from support.files import files_in
from support.media import write_grid_png

pytestmark = pytest.mark.ffmpeg

DOC: dict[str, Any] = {
    "output": {"width": 320, "height": 180, "fps": 30},
    "scenes": [
        {"duration": 2, "background": "#101010", "transition": {"type": "wipe_up",
                                                                  "duration": 0.5},
         "layers": [{"type": "image", "src": "grid.png", "motion": {"zoom": [1, 1.4]}},
                    {"type": "text", "text": "one", "animation": {"in": "pop"}}]},
        {"duration": 2, "background": "#f0e0d0",
         "layers": [{"type": "shape", "shape": "rounded", "width": 100, "height": 60,
                     "fill": "#3050a0", "keyframes": {"rotation": [
                         {"time": 0, "value": 0}, {"time": 2, "value": 90}]}}]},
    ],
}  # 60 + 60 - 15 = 105 frames; scene 1 starts at frame 45


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_grid_png(tmp_path / "grid.png")
    write_doc(tmp_path, DOC)
    return tmp_path


def compositor_frame(project: Path, n: int) -> np.ndarray:
    tl = engine.load_timeline(DOC, base_dir=project)
    with Compositor(tl) as compositor:
        return compositor.render(n)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize(("at", "frame"), [(0.0, 0), (0.51, 15), (1.6, 48), (3.5, 104)])
def test_snapshot_at_a_time(project: Path, at: float, frame: int) -> None:
    out = project / "snap.png"
    assert engine.snapshot(DOC, out, at=at, base_dir=project) == frame
    assert np.array_equal(read_png(out), compositor_frame(project, frame))
    assert files_in(project) == {"grid.png", "doc.json", "snap.png"}  # no temp file left


@pytest.mark.parametrize(("scene", "frame"), [(0, 22), (1, 82)])  # outside the transition
def test_snapshot_of_a_scene(project: Path, scene: int, frame: int) -> None:
    out = project / "scene.png"
    assert engine.snapshot(DOC, out, scene=scene, base_dir=project) == frame
    assert np.array_equal(read_png(out), compositor_frame(project, frame))


def test_cli_snapshot_scene(project: Path) -> None:
    out = project / "k.png"
    result = CliRunner().invoke(app, ["snapshot", str(project / "doc.json"), "--scene", "1",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert re.search(r"\(frame\s+82\)", result.stdout)  # rich may wrap the line
    assert np.array_equal(read_png(out), compositor_frame(project, 82))


def test_cli_snapshot_frame_and_size(project: Path) -> None:
    out = project / "f.png"
    result = CliRunner().invoke(app, ["snapshot", str(project / "doc.json"), "--frame", "50",
                                      "--size", "360p", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size == (640, 360)


def test_jpeg_snapshot(project: Path) -> None:
    out = project / "snap.jpg"
    engine.snapshot(DOC, out, frame=60, base_dir=project)
    with Image.open(out) as img:
        assert img.format == "JPEG"
        pixels = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(pixels - compositor_frame(project, 60)).mean() < 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at": 9.0}, r"--at 9\.0: the video lasts 3\.50 s"),
        ({"at": -1.0}, r"--at -1\.0"),
        ({"frame": 105}, r"--frame 105: the video has frames 0-104"),
        ({"scene": 2}, r"--scene 2: the document has scenes 0\.\.1"),
    ],
)
def test_snapshot_out_of_range(project: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.DocumentError, match=message):
        engine.snapshot(DOC, project / "x.png", base_dir=project, **kwargs)
    assert not (project / "x.png").exists()


def test_snapshot_needs_an_image_suffix(project: Path) -> None:
    with pytest.raises(errors.DocumentError, match=r"x\.gif: a snapshot is written as \.png"):
        engine.snapshot(DOC, project / "x.gif", base_dir=project)


def test_cli_snapshot_refuses_two_positions(project: Path) -> None:
    result = CliRunner().invoke(app, ["snapshot", str(project / "doc.json"), "--at", "1",
                                      "--frame", "3", "-o", str(project / "x.png")])
    assert result.exit_code == 2
    assert "give only one of --at, --frame, --scene" in result.stderr
    assert not (project / "x.png").exists()
