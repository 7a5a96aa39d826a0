"""The output formats framefarm writes, in one table: what each one's files are called, which
muxer and codecs make them, and how they are served.

Everything that branches on a format (the engine, the compiler, the CLI, the farm) looks it
up here instead of comparing names.
"""

from __future__ import annotations

import dataclasses

from framefarm import errors


@dataclasses.dataclass(frozen=True)
class OutputFormat:
    name: str  # "mp4" | "webm" | "gif" | "png"
    part_suffix: str  # suffix of a rendered video chunk
    container: str  # FFmpeg muxer name
    audio_suffix: str | None  # suffix of the mixed audio; None: the format has no sound
    video_codec: str | None
    audio_codec: str | None
    media_type: str
    single_chunk: bool  # rendered in one piece (a GIF's palette needs the whole clip)

    @property
    def has_audio(self) -> bool:
        return self.audio_suffix is not None


FORMATS: dict[str, OutputFormat] = {
    "mp4": OutputFormat("mp4", "mp4", "mp4", "m4a", "libx264", "aac", "video/mp4", False),
    "webm": OutputFormat("webm", "webm", "webm", "webm", "libvpx-vp9", "libopus", "video/webm",
                         False),
    "gif": OutputFormat("gif", "gif", "gif", None, "gif", None, "image/gif", True),
    # One frame, written by Pillow rather than FFmpeg.
    "png": OutputFormat("png", "png", "image2", None, "png", None, "image/png", True),
}

VIDEO_FORMATS = ("mp4", "webm", "gif")

# A snapshot (one frame) is written as one of these.
STILL_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


def get(name: str) -> OutputFormat:
    """The format called ``name``; a DocumentError naming the known ones if there is none."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise errors.DocumentError(f"unknown format {name!r}: use one of {known}") from None
