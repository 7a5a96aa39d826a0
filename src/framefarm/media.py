"""Probing media files with PyAV (the imageio-ffmpeg wheel ships no ffprobe), and
opening stills with Pillow.

This is the only module that opens media containers to ask what is inside. It sits below
the document (the loader probes every media asset) and needs nothing but ``errors``.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from framefarm import errors

# The still formats a document may use. Anything else is refused even when Pillow could
# open it (some of its plugins hand the file to other programs, e.g. EPS to Ghostscript).
STILL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")


def open_still(path: Path) -> Image.Image:
    """Open a still lazily (only its header is read) in one of ``STILL_FORMATS``; Pillow's
    errors (``UnidentifiedImageError``, ``DecompressionBombError``, ...) pass through."""
    return Image.open(path, formats=STILL_FORMATS)


@dataclasses.dataclass(frozen=True)
class VideoStream:
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    pix_fmt: str


@dataclasses.dataclass(frozen=True)
class AudioStream:
    codec: str
    sample_rate: int
    channels: int
    duration: float


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    path: Path
    format: str
    duration: float
    video: VideoStream | None
    audio: AudioStream | None


def _seconds(value: int | None, time_base: Fraction | None) -> float:
    if value is None or time_base is None:
        return 0.0
    return float(value * time_base)


def probe(path: Path, count_frames: bool = False, *, name: str | None = None,
          max_pixels: int | None = None, decode: bool = False) -> MediaInfo:
    """Describe a media file; raise AssetError if it is not one FFmpeg can read.

    ``count_frames`` demuxes every video packet, for an exact frame count even when
    the container does not store one. ``max_pixels`` refuses a video picture larger than
    that (from the header, before decoding); ``decode`` decodes the first frame of the
    first video and audio streams, so a file that only looks right is refused. Messages
    name the file ``name`` (default: its file name).
    """
    name = name or path.name
    try:
        with av.open(str(path)) as container:
            duration = container.duration / 1_000_000 if container.duration else 0.0
            video = audio = None
            if container.streams.video:
                vs = container.streams.video[0]
                rate = vs.average_rate or vs.base_rate or vs.guessed_rate
                frames = vs.frames
                vdur = _seconds(vs.duration, vs.time_base) or duration
                if count_frames or not frames:
                    frames = sum(1 for p in container.demux(vs) if p.size)
                    container.seek(0)
                video = VideoStream(
                    codec=vs.codec_context.name,
                    width=vs.codec_context.width,
                    height=vs.codec_context.height,
                    fps=float(rate) if rate else 0.0,
                    frames=frames,
                    duration=vdur,
                    pix_fmt=vs.codec_context.pix_fmt or "",
                )
            if container.streams.audio:
                aus = container.streams.audio[0]
                audio = AudioStream(
                    codec=aus.codec_context.name,
                    sample_rate=aus.codec_context.sample_rate,
                    channels=aus.codec_context.channels,
                    duration=_seconds(aus.duration, aus.time_base) or duration,
                )
            fmt = container.format.name
            if video is not None and decode and not (video.width and video.height):
                raise errors.AssetError(f"{name}: FFmpeg cannot tell the size of its pictures "
                                        "(too large, or corrupt)")
            if video is not None and max_pixels is not None and (
                    video.width * video.height > max_pixels):
                raise errors.AssetError(f"{name}: its pictures are {video.width}x"
                                        f"{video.height}, more pixels than the limit")
            if decode:
                for stream in (container.streams.video[:1], container.streams.audio[:1]):
                    if stream:
                        _decode_first(container, stream[0], name)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError, MemoryError) as exc:
        raise errors.AssetError(f"{name}: not a media file FFmpeg can read ({exc})") from exc
    if video is None and audio is None:
        raise errors.AssetError(f"{name}: contains no audio or video stream")
    return MediaInfo(path=path, format=fmt, duration=duration, video=video, audio=audio)



def _decode_first(container: av.container.InputContainer, stream: av.stream.Stream,
                  name: str) -> None:
    container.seek(0)
    for _frame in container.decode(stream):
        return
    raise errors.AssetError(f"{name}: its {stream.type} stream has no frame that decodes")
