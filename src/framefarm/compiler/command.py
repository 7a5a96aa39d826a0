"""What the compiler produces: an FFmpeg argument list (without the binary) and what it
needs from the caller."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FfmpegCommand:
    args: tuple[str, ...]
    """Arguments after the ``ffmpeg`` binary; paths are plain arguments, never in a filter."""
    frames: int | None = None
    """Video frames the command writes (for progress), if it writes video."""
    stdin_frames: tuple[int, int, int] | None = None
    """(width, height, count) of raw frames the caller pipes to stdin, if any."""
    stdin_pix_fmt: str = "rgb24"
    """Their pixel format: ``rgb24``, or ``yuv420p`` (BT.601 limited range, converted by
    the caller, which halves what goes through the pipe)."""
    description: str = ""

    def argv(self, binary: str) -> list[str]:
        return [binary, *self.args]


COMMON = ("-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1")
# With frames on stdin, -nostdin would stop FFmpeg from reading them.
COMMON_PIPED = ("-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1")

