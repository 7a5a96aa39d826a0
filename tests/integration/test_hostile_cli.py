"""A hostile tester at the command line: bad media and fonts, bombs, deep JSON, unwritable
outputs, SIGTERM and a big still. Exit 2 naming the JSON path and the file for invalid
input, never a partial file or debris, exit 1 only for a real render failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from framefarm.cli import app
from support.documents import long_doc, write_doc
from support.files import files_in
from support.hostile import garbage_font, png_bomb, truncated_jpeg

pytestmark = pytest.mark.ffmpeg

OUTPUT = {"width": 160, "height": 90, "fps": 30, "quality": "draft"}


def _doc(folder: Path, **scene: Any) -> Path:
    return write_doc(folder, {"output": OUTPUT, "scenes": [{"duration": 1, **scene}]})


def _refused(result: Any, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("invalid: "), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def _media(folder: Path) -> Path:
    media = folder / "media"
    media.mkdir()
    return media


@pytest.mark.parametrize("command", ["render", "snapshot", "validate"])
def test_png_bomb(tmp_path: Path, command: str) -> None:
    png_bomb(_media(tmp_path) / "bomb.png")
    doc = _doc(tmp_path, layers=[{"type": "image", "src": "media/bomb.png"}])
    out = {"render": ["-o", str(tmp_path / "o.mp4"), "--quiet"],
           "snapshot": ["-o", str(tmp_path / "o.png")], "validate": []}[command]
    result = CliRunner().invoke(app, [command, str(doc), *out])
    _refused(result, "scenes[0].layers[0].src", "'media/bomb.png'", "more pixels than the limit")
    assert files_in(tmp_path) == {"doc.json", "media"}


def test_png_bomb_as_video_layer(tmp_path: Path) -> None:
    png_bomb(_media(tmp_path) / "bomb.png")
    doc = _doc(tmp_path, layers=[{"type": "video", "src": "media/bomb.png"}])
    result = CliRunner().invoke(app, ["render", str(doc), "-o", str(tmp_path / "o.mp4"), "-q"])
    _refused(result, "scenes[0].layers[0].src", "media/bomb.png")
    assert files_in(tmp_path) == {"doc.json", "media"}


@pytest.mark.parametrize("chunks", ["1", "3"])
def test_truncated_jpeg_is_refused_by_validate_and_render(tmp_path: Path, chunks: str) -> None:
    truncated_jpeg(_media(tmp_path) / "cut.jpg")
    doc = _doc(tmp_path, layers=[{"type": "shape"}, {"type": "image", "src": "media/cut.jpg"}])
    _refused(CliRunner().invoke(app, ["validate", str(doc)]),
             "scenes[0].layers[1].src", "'media/cut.jpg' is not a readable image")
    result = CliRunner().invoke(app, ["render", str(doc), "-o", str(tmp_path / "o.mp4"), "-q",
                                      "--chunks", chunks])
    _refused(result, "scenes[0].layers[1].src", "'media/cut.jpg'")
    assert files_in(tmp_path) == {"doc.json", "media"}


@pytest.mark.parametrize("chunks", ["1", "3"])
def test_random_bytes_font_is_refused(tmp_path: Path, chunks: str) -> None:
    garbage_font(_media(tmp_path) / "Fancy.ttf")
    doc = write_doc(tmp_path, {"output": OUTPUT,
                               "fonts": [{"family": "Fancy", "src": "media/Fancy.ttf"}],
                               "scenes": [{"duration": 1, "layers": [
                                   {"type": "text", "text": "hi", "style": {"font": "Fancy"}}]}]})
    _refused(CliRunner().invoke(app, ["validate", str(doc)]),
             "fonts[0].src", "'media/Fancy.ttf' is not a font file")
    result = CliRunner().invoke(app, ["render", str(doc), "-o", str(tmp_path / "o.mp4"), "-q",
                                      "--chunks", chunks])
    _refused(result, "fonts[0].src", "'media/Fancy.ttf'")
    assert files_in(tmp_path) == {"doc.json", "media"}


def test_deeply_nested_document(tmp_path: Path) -> None:
    depth = 1000
    (tmp_path / "doc.json").write_text(
        '{"scenes": [{"duration": 1, "layers": [' + '{"a": [' * depth + "1"
        + "]}" * depth + "]}]}", encoding="utf-8")
    for command in (["validate"], ["render", "-o", str(tmp_path / "o.mp4"), "-q"]):
        result = CliRunner().invoke(app, [command[0], str(tmp_path / "doc.json"), *command[1:]])
        _refused(result, "nested deeper than 64 levels")
    assert files_in(tmp_path) == {"doc.json"}


def test_nan_duration_in_a_file(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_text('{"scenes": [{"duration": 1}, {"duration": NaN}]}',
                                       encoding="utf-8")
    result = CliRunner().invoke(app, ["render", str(tmp_path / "doc.json"), "-o",
                                      str(tmp_path / "o.mp4"), "-q"])
    _refused(result, "scenes[1].duration: NaN is not a finite number")


def test_snapshot_into_a_missing_folder(tmp_path: Path) -> None:
    """Like render: the output folder must exist (checked before any work)."""
    doc = _doc(tmp_path)
    result = CliRunner().invoke(app, ["snapshot", str(doc), "-o",
                                      str(tmp_path / "missing" / "x.png")])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("failed: ")
    assert "the output folder does not exist" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert files_in(tmp_path) == {"doc.json"}


@pytest.mark.parametrize("command", ["render", "snapshot"])
def test_output_that_is_a_folder(tmp_path: Path, command: str) -> None:
    # A long render: refused before any frame is drawn, not after.
    doc = write_doc(tmp_path, long_doc(600))
    target = tmp_path / ("video.mp4" if command == "render" else "frame.png")
    target.mkdir()
    began = time.monotonic()
    result = CliRunner().invoke(app, [command, str(doc), "-o", str(target), *(
        ["-q"] if command == "render" else [])])
    assert time.monotonic() - began < 10
    _refused(result, f"{target}: is a folder")
    assert files_in(tmp_path) == {"doc.json", target.name}
    assert files_in(target) == set()


def _cli(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "FRAMEFARM_DEBUG"}
    return subprocess.Popen([sys.executable, "-m", "framefarm", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize("chunks", ["1", "2"])
def test_sigterm_mid_render_leaves_nothing(tmp_path: Path, chunks: str) -> None:
    write_doc(tmp_path, long_doc(120))
    proc = _cli(["render", "doc.json", "-o", "out.mp4", "-q", "--chunks", chunks], tmp_path)
    deadline = time.monotonic() + 60
    # Mid-way: the parts are being written.
    while not any(p.name.startswith(".out-") and any(p.iterdir())
                  for p in tmp_path.iterdir() if p.is_dir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "cancelled" in stderr and "Traceback" not in stderr
    assert files_in(tmp_path) == {"doc.json"}


def test_a_big_still_renders_in_bounded_memory(tmp_path: Path) -> None:
    """An 8900x8900 RGBA PNG (79 MP, inside the 80 MP limit), a 360p render in two chunks:
    the render process stays under 1 GiB."""
    side = 8900
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    pixels = np.empty((side, side, 4), np.uint8)
    pixels[:, :, 0] = ramp[None, :]
    pixels[:, :, 1] = ramp[:, None]
    pixels[:, :, 2] = 128
    pixels[:, :, 3] = 200
    Image.fromarray(pixels, "RGBA").save(tmp_path / "big.png", compress_level=1)
    del pixels
    write_doc(tmp_path, {"output": {"size": "360p", "fps": 30, "quality": "draft"},
                         "scenes": [{"duration": 1, "layers": [
                             {"type": "image", "src": "big.png"}]}]})
    script = ("import resource, subprocess, sys\n"
              "proc = subprocess.run([sys.executable, '-m', 'framefarm', 'render', 'doc.json', "
              "'-o', 'out.mp4', '-q', '--chunks', '2'], capture_output=True, text=True)\n"
              "print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
              "sys.stderr.write(proc.stderr)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, check=False)
    code, peak_kib = (int(x) for x in done.stdout.split())
    assert code == 0, done.stderr
    assert (tmp_path / "out.mp4").is_file()
    assert peak_kib < 1024 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"
