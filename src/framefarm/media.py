"""Probing media files with PyAV (the imageio-ffmpeg wheel ships no ffprobe).

This is the only module that opens media containers to ask what is inside. It sits below
the document (the loader probes every media asset) and needs nothing but ``errors``.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av

from framefarm import errors


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


def probe(path: Path, count_frames: bool = False) -> MediaInfo:
    """Describe a media file; raise AssetError if it is not one FFmpeg can read.

    ``count_frames`` demuxes every video packet, for an exact frame count even when
    the container does not store one.
    """
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
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise errors.AssetError(f"{path.name}: not a media file FFmpeg can read ({exc})") from exc
    if video is None and audio is None:
        raise errors.AssetError(f"{path.name}: contains no audio or video stream")
    return MediaInfo(path=path, format=fmt, duration=duration, video=video, audio=audio)

