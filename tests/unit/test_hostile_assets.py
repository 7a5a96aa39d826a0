"""Hostile assets: what ``validate`` accepts must decode. Bombs, truncated data, fonts that
are not fonts, and files that are not regular files are refused by the loader, each named
by its JSON path and as the document names it (never by a path on this machine)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from framefarm import errors
from framefarm.document import loader
from support.hostile import garbage_font, png_bomb, truncated_jpeg


def _problems(doc: dict[str, Any], base: Path) -> list[str]:
    with pytest.raises(errors.AssetError) as caught:
        loader.load(doc, base_dir=base)
    return caught.value.problems


def _image_doc(src: str, kind: str = "image") -> dict[str, Any]:
    return {"output": {"width": 160, "height": 90},
            "scenes": [{"duration": 1, "layers": [{"type": "shape"}, {"type": kind, "src": src}]}]}


def test_png_bomb_is_refused_by_its_header(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    png_bomb(tmp_path / "media" / "bomb.png")
    problems = _problems(_image_doc("media/bomb.png"), tmp_path)
    (problem,) = problems
    assert problem.startswith("scenes[0].layers[1].src: 'media/bomb.png' ")
    assert "more pixels than the limit" in problem


def test_png_bomb_as_a_video_layer(tmp_path: Path) -> None:
    png_bomb(tmp_path / "bomb.png")
    (problem,) = _problems(_image_doc("bomb.png", "video"), tmp_path)
    assert problem == ("scenes[0].layers[1].src: bomb.png: FFmpeg cannot tell the size of "
                       "its pictures (too large, or corrupt)")


def test_oversized_video_pictures_are_refused(tmp_path: Path) -> None:
    Image.new("RGB", (300, 200), "red").save(tmp_path / "still.png")
    with pytest.raises(errors.AssetError) as caught:
        loader.load(_image_doc("still.png", "video"), base_dir=tmp_path,
                    limits=loader.Limits(max_image_pixels=300 * 200 - 1))
    assert caught.value.problems == [
        "scenes[0].layers[1].src: still.png: its pictures are 300x200, more pixels than the "
        "limit"]


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    truncated_jpeg(tmp_path / "cut.jpg")
    (problem,) = _problems(_image_doc("cut.jpg"), tmp_path)
    assert problem.startswith("scenes[0].layers[1].src: 'cut.jpg' is not a readable image")


def test_truncated_jpeg_in_slides_and_background(tmp_path: Path) -> None:
    truncated_jpeg(tmp_path / "cut.jpg")
    doc = {"scenes": [{"duration": 1, "background_image": "cut.jpg", "layers": [
        {"type": "slides", "images": [{"src": "cut.jpg"}]}]}]}
    problems = _problems(doc, tmp_path)
    assert [p.split(":")[0] for p in problems] == [
        "scenes[0].background_image", "scenes[0].layers[0].images[0].src"]


def test_random_bytes_font_is_refused(tmp_path: Path) -> None:
    garbage_font(tmp_path / "Fancy.ttf")
    doc = {"fonts": [{"family": "Fancy", "src": "Fancy.ttf"}],
           "scenes": [{"duration": 1, "layers": [{"type": "text", "text": "hi",
                                                   "style": {"font": "Fancy"}}]}]}
    (problem,) = _problems(doc, tmp_path)
    assert problem.startswith("fonts[0].src: 'Fancy.ttf' is not a font file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_named_for_what_it_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    (problem,) = _problems(_image_doc("pipe.png"), tmp_path)
    assert problem == ("scenes[0].layers[1].src: 'pipe.png' is a named pipe (FIFO), not a "
                       "regular file")


def test_folder_is_named_for_what_it_is(tmp_path: Path) -> None:
    (tmp_path / "album.png").mkdir()
    (problem,) = _problems(_image_doc("album.png"), tmp_path)
    assert problem == "scenes[0].layers[1].src: 'album.png' is a folder, not a regular file"


def test_messages_never_show_where_the_assets_are(tmp_path: Path) -> None:
    """The API validates in a scratch folder of the server: no message may show it."""
    base = tmp_path / "scratch-folder"
    (base / "media").mkdir(parents=True)
    (base / "media" / "a.png").write_bytes(random.Random(1).randbytes(3000))
    (base / "media" / "b.mp4").write_bytes(random.Random(2).randbytes(3000))
    (base / "media" / "c.jpg").write_bytes(b"\xff\xd8\xff" + random.Random(3).randbytes(3000))
    doc = {"scenes": [{"duration": 1, "voiceover": {"src": "media/b.mp4"}, "layers": [
        {"type": "image", "src": "media/a.png"}, {"type": "image", "src": "media/c.jpg"},
        {"type": "video", "src": "media/b.mp4"}]}]}
    problems = _problems(doc, base)
    assert len(problems) == 4
    for problem in problems:
        assert str(tmp_path) not in problem and "scratch-folder" not in problem, problem
        assert "media/" in problem, problem


def test_a_good_jpeg_and_font_still_load(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), "navy").save(tmp_path / "ok.jpg", quality=90)
    doc = _image_doc("ok.jpg")
    project = loader.load(doc, base_dir=tmp_path)
    assert set(project.assets) == {"ok.jpg"}
