"""Video encoding: the quality table and the commands that turn piped frames into files.

Every chunk of a render uses exactly the same encoder settings and starts on a keyframe,
so parts join with a stream copy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from framefarm import formats
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

# Frames are converted to Y'CbCr before the encoder: in-process with OpenCV (BT.601 matrix,
# limited range, 4:2:0; about 1.5 ms a 1080p frame, against ~5 ms in FFmpeg's swscale, and
# half the bytes through the pipe), or by FFmpeg for lossless 4:4:4 (BT.709). Either way
# the output is tagged with what the frames really are, so players show the composited
# colours: that matrix and range, and the compositor's RGB, which is sRGB (BT.709 primaries,
# the sRGB transfer curve). The tags are set on the frames (``setparams``): FFmpeg takes the
# encoder's -color_primaries/-color_trc from the frames for a raw-video input, so the
# options alone left the primaries and transfer "unknown". The options stay for the codec.
_PRIMARIES, _TRANSFER = "bt709", "iec61966-2-1"


def _tags(matrix: str) -> tuple[str, ...]:
    return ("-colorspace", matrix, "-color_primaries", _PRIMARIES, "-color_trc", _TRANSFER,
            "-color_range", "tv")


def _setparams(matrix: str) -> str:
    return (f"setparams=field_mode=prog:range=tv:color_primaries={_PRIMARIES}"
            f":color_trc={_TRANSFER}:colorspace={matrix}")


# x264 frames of look-ahead for parts encoded side by side (a split local render): preset
# medium's 40 take about 6.5 MB a frame at 1080p, so two encoders held 870 MiB between
# them; at 20 the pair fits a render under 1 GiB, for 0.1-0.25 dB of PSNR at the same CRF
# (and a 3% smaller file), at the same speed.
SIDE_BY_SIDE_LOOKAHEAD = 20


def video_codec_args(fmt: str, quality: str, fps: int, threads: int | None,
                     lookahead: int | None = None) -> tuple[str, ...]:
    """Encoder arguments for a video-only part (also used by the benchmark's limit);
    ``lookahead`` caps x264's frames of look-ahead below its preset's."""
    q = QUALITY[quality]
    codec = formats.get(fmt).video_codec
    thread_args: tuple[str, ...] = ("-threads", str(threads)) if threads else ()
    if codec == "libx264" and lookahead is not None and not q.lossless:
        thread_args += ("-rc-lookahead", str(lookahead))
    gop = str(fps * 2)
    if codec == "libvpx-vp9":
        rate = ("-lossless", "1") if q.lossless else ("-crf", str(q.vp9_crf), "-b:v", "0")
        return ("-c:v", codec, *rate, "-deadline", "good", "-cpu-used",
                str(q.vp9_cpu_used), "-row-mt", "1", "-g", gop,
                "-pix_fmt", "yuv444p" if q.lossless else "yuv420p", *thread_args)
    if codec != "libx264":
        raise ValueError(f"{fmt} is not encoded as a video part")
    if q.lossless:
        return ("-c:v", codec, "-preset", q.x264_preset, "-qp", "0", "-pix_fmt", "yuv444p",
                "-g", gop, *thread_args)
    return ("-c:v", codec, "-preset", q.x264_preset, "-crf", str(q.x264_crf),
            "-pix_fmt", "yuv420p", "-profile:v", "high", "-g", gop, *thread_args)


def _raw_input(width: int, height: int, fps: int, pix_fmt: str = "rgb24") -> tuple[str, ...]:
    return ("-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{width}x{height}",
            "-framerate", str(fps), "-i", "pipe:0")


def video_part(
    *, width: int, height: int, fps: int, fmt: str, quality: str, frames: int, output: Path,
    threads: int | None = None, lookahead: int | None = None,
) -> FfmpegCommand:
    """Raw frames on stdin -> a video-only part (mp4 or webm) of exactly ``frames``:
    4:2:0 frames converted by the caller, or RGB for lossless 4:4:4."""
    container = formats.get(fmt).container
    lossless = QUALITY[quality].lossless
    pix_fmt = "rgb24" if lossless else "yuv420p"
    matrix = "bt709" if lossless else "smpte170m"
    graph = f"scale=out_color_matrix=bt709:out_range=tv,{_setparams(matrix)}" if lossless else (
        _setparams(matrix))
    convert = ("-vf", graph)
    tags = _tags(matrix)
    extra = ("-video_track_timescale", str(fps * 1000)) if container == "mp4" else ()
    args = (*COMMON_PIPED, *_raw_input(width, height, fps, pix_fmt), "-an", *convert,
            *video_codec_args(fmt, quality, fps, threads, lookahead), *tags, *extra,
            "-frames:v", str(frames), "-f", container, "-y", str(output))
    return FfmpegCommand(args, frames=frames, stdin_frames=(width, height, frames),
                         stdin_pix_fmt=pix_fmt, description=f"encode {frames} frames")


def gif(*, width: int, height: int, fps: int, frames: int, output: Path) -> FfmpegCommand:
    """Raw RGB frames -> an animated GIF with a palette computed from the whole clip."""
    graph = ("split[a][b];[a]palettegen=stats_mode=diff[p];"
             "[b][p]paletteuse=dither=bayer:bayer_scale=4")
    args = (*COMMON_PIPED, *_raw_input(width, height, fps), "-vf", graph,
            "-frames:v", str(frames), "-loop", "0", "-f", "gif", "-y", str(output))
    return FfmpegCommand(args, frames=frames, stdin_frames=(width, height, frames),
                         description=f"encode {frames} frames as GIF")


def part(
    *, width: int, height: int, fps: int, fmt: str, quality: str, frames: int, output: Path,
    threads: int | None = None, lookahead: int | None = None,
) -> FfmpegCommand:
    """The command for one rendered chunk in ``fmt``: a GIF's palette pipeline (always the
    whole clip), else a video-only part."""
    if formats.get(fmt).video_codec == "gif":
        return gif(width=width, height=height, fps=fps, frames=frames, output=output)
    return video_part(width=width, height=height, fps=fps, fmt=fmt, quality=quality,
                      frames=frames, output=output, threads=threads, lookahead=lookahead)
