"""Joining video parts and the audio into the final file, by stream copy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from framefarm import formats
from framefarm.compiler.command import COMMON, FfmpegCommand


def concat_list(parts: Sequence[tuple[Path, int]], fps: int) -> str:
    """The concat demuxer's list file for (part, frame count) pairs.

    Each part's duration is stated exactly: otherwise the demuxer takes it from the MP4,
    whose last-frame duration x264's B-frame delay shortens, and the next part starts a
    fraction of a frame early. Paths are quoted the demuxer's way ('\\'' inside quotes).
    """
    lines = ["ffconcat version 1.0"]
    for part, frames in parts:
        quoted = str(part.resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        lines.append(f"duration {frames / fps:.6f}")
    return "\n".join(lines) + "\n"


def assemble(*, list_file: Path, audio: Path | None, output: Path, fmt: str,
             frames: int) -> FfmpegCommand:
    """Concatenate the parts listed in ``list_file``, add the audio, and move the index to
    the front of an MP4 (faststart) so players start before the download ends."""
    args: list[str] = [*COMMON, "-f", "concat", "-safe", "0", "-i", str(list_file)]
    if audio is not None:
        args += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0"]
    else:
        args += ["-map", "0:v:0"]
    args += ["-c", "copy"]
    container = formats.get(fmt).container
    if container == "mp4":
        args += ["-movflags", "+faststart"]
    args += ["-f", container]
    args += ["-y", str(output)]
    return FfmpegCommand(tuple(args), frames=frames, description="assemble")
