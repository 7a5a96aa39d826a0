"""The table of output formats, and that the document's choices match it."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from framefarm import engine, errors, formats
from framefarm.compiler import encode
from framefarm.document import models


def test_the_table_has_every_format_the_document_allows() -> None:
    assert set(formats.FORMATS) == set(typing.get_args(models.Format))
    assert set(formats.VIDEO_FORMATS) <= set(formats.FORMATS)
    for name, spec in formats.FORMATS.items():
        assert spec.name == name
        assert formats.get(name) is spec


def test_formats() -> None:
    mp4, webm, gif, png = (formats.get(n) for n in ("mp4", "webm", "gif", "png"))
    assert (mp4.part_suffix, mp4.container, mp4.audio_suffix) == ("mp4", "mp4", "m4a")
    assert (mp4.video_codec, mp4.audio_codec, mp4.media_type) == ("libx264", "aac", "video/mp4")
    assert (webm.part_suffix, webm.container, webm.audio_suffix) == ("webm", "webm", "webm")
    assert (webm.video_codec, webm.audio_codec) == ("libvpx-vp9", "libopus")
    assert (gif.part_suffix, gif.container, gif.audio_suffix, gif.media_type) == (
        "gif", "gif", None, "image/gif")
    assert gif.single_chunk and png.single_chunk
    assert not mp4.single_chunk and not webm.single_chunk
    assert mp4.has_audio and webm.has_audio and not gif.has_audio and not png.has_audio
    assert png.media_type == formats.STILL_MEDIA_TYPES["png"] == "image/png"
    assert formats.STILL_MEDIA_TYPES["jpeg"] == "image/jpeg"


def test_unknown_format_is_a_document_error() -> None:
    with pytest.raises(errors.DocumentError, match=r"unknown format 'avi': use one of mp4, "
                       r"webm, gif, png"):
        formats.get("avi")


def test_output_format_from_the_suffix() -> None:
    assert engine.output_format(Path("a.MP4")) == "mp4"
    assert engine.output_format(Path("a.webm")) == "webm"
    assert engine.output_format(Path("a.gif"), "mp4") == "mp4"
    assert engine.output_format(Path("noext")) is None
    with pytest.raises(errors.DocumentError, match=r"^o\.avi: cannot tell the format from the "
                       r"suffix; use \.mp4, \.webm, \.gif or \.png, or pass --format$"):
        engine.output_format(Path("o.avi"))


def test_size_presets_match_the_document() -> None:
    assert set(models.SIZE_PRESETS) == set(typing.get_args(models.SizePreset))
    assert set(models.ASPECTS) == set(typing.get_args(models.Aspect))


def test_quality_presets_match_the_document() -> None:
    assert set(encode.QUALITY) == set(typing.get_args(models.Quality))


def test_a_part_is_encoded_by_its_format() -> None:
    args = {"width": 320, "height": 180, "fps": 30, "quality": "draft", "frames": 12}
    assert encode.part(fmt="gif", output=Path("/w/v.gif"), **args) == encode.gif(
        width=320, height=180, fps=30, frames=12, output=Path("/w/v.gif"))
    for fmt in ("mp4", "webm"):
        assert encode.part(fmt=fmt, output=Path(f"/w/p.{fmt}"), threads=2, **args) == (
            encode.video_part(fmt=fmt, output=Path(f"/w/p.{fmt}"), threads=2, **args))
    with pytest.raises(ValueError, match="gif is not encoded as a video part"):
        encode.video_codec_args("gif", "draft", 30, None)
