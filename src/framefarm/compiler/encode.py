"""Video encoding: the quality table and the commands that turn piped frames into files.

Every chunk of a render uses exactly the same encoder settings and starts on a keyframe,
so parts join with a stream copy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from framefarm.compiler.command import COMMON_PIPED, FfmpegCommand


@dataclasses.dataclass(frozen=True)
class Quality:
    x264_preset: str
    x264_crf: int  # 0 with lossless means -qp 0
    vp9_crf: int
    vp9_cpu_used: int
    audio_kbps: int
    lossless: bool = False


# One table for every format: quality preset -> encoder settings.
QUALITY: dict[str, Quality] = {
    "draft": Quality("ultrafast", 30, 45, 8, 96),
    "low": Quality("veryfast", 26, 38, 6, 128),
    "medium": Quality("faster", 23, 34, 5, 160),
    "high": Quality("medium", 20, 31, 4, 192),
    "max": Quality("slow", 17, 24, 2, 256),
    "lossless": Quality("veryfast", 0, 0, 4, 320, lossless=True),
}

# RGB -> Y'CbCr with the BT.709 matrix in limited range, tagged as such, so players show
# the colours that were composited.
_COLOR_TAGS = ("-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
               "-color_range", "tv")


def video_codec_args(fmt: str, quality: str, fps: int, threads: int | None) -> tuple[str, ...]:
    """Encoder arguments for a video-only part (also used by the benchmark's limit)."""
    q = QUALITY[quality]
    thread_args = ("-threads", str(threads)) if threads else ()
    gop = str(fps * 2)
    if fmt == "webm":
        rate = ("-lossless", "1") if q.lossless else ("-crf", str(q.vp9_crf), "-b:v", "0")
        return ("-c:v", "libvpx-vp9", *rate, "-deadline", "good", "-cpu-used",
                str(q.vp9_cpu_used), "-row-mt", "1", "-g", gop,
                "-pix_fmt", "yuv444p" if q.lossless else "yuv420p", *thread_args)
    if q.lossless:
        return ("-c:v", "libx264", "-preset", q.x264_preset, "-qp", "0", "-pix_fmt", "yuv444p",
                "-g", gop, *thread_args)
    return ("-c:v", "libx264", "-preset", q.x264_preset, "-crf", str(q.x264_crf),
            "-pix_fmt", "yuv420p", "-profile:v", "high", "-g", gop, *thread_args)


def _raw_input(width: int, height: int, fps: int) -> tuple[str, ...]:
    return ("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", str(fps), "-i", "pipe:0")


def video_part(
    *, width: int, height: int, fps: int, fmt: str, quality: str, frames: int, output: Path,
    threads: int | None = None,
) -> FfmpegCommand:
    """Raw RGB frames on stdin -> a video-only part (mp4 or webm) of exactly ``frames``."""
    container = "webm" if fmt == "webm" else "mp4"
    convert = ("-vf", "scale=out_color_matrix=bt709:out_range=tv")
    extra = ("-video_track_timescale", str(fps * 1000)) if container == "mp4" else ()
    args = (*COMMON_PIPED, *_raw_input(width, height, fps), "-an", *convert,
            *video_codec_args(fmt, quality, fps, threads), *_COLOR_TAGS, *extra,
            "-frames:v", str(frames), "-f", container, "-y", str(output))
    return FfmpegCommand(args, frames=frames, stdin_frames=(width, height, frames),
                         description=f"encode {frames} frames")


def gif(*, width: int, height: int, fps: int, frames: int, output: Path) -> FfmpegCommand:
    """Raw RGB frames -> an animated GIF with a palette computed from the whole clip."""
    graph = ("split[a][b];[a]palettegen=stats_mode=diff[p];"
             "[b][p]paletteuse=dither=bayer:bayer_scale=4")
    args = (*COMMON_PIPED, *_raw_input(width, height, fps), "-vf", graph,
            "-frames:v", str(frames), "-loop", "0", "-f", "gif", "-y", str(output))
    return FfmpegCommand(args, frames=frames, stdin_frames=(width, height, frames),
                         description=f"encode {frames} frames as GIF")
