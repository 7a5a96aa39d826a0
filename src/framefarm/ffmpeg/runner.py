"""The only place that starts FFmpeg: progress from ``-progress``, a timeout, clean
cancellation, and the tail of stderr for error messages."""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable
from functools import cache
from types import TracebackType
from typing import Any

import imageio_ffmpeg

from framefarm import errors
from framefarm.compiler.command import FfmpegCommand

_TAIL_LINES = 20
_KILL_GRACE = 3.0


@cache
def ffmpeg_binary() -> str:
    """FFmpeg from ``FRAMEFARM_FFMPEG``, else the one in the imageio-ffmpeg wheel."""
    override = os.environ.get("FRAMEFARM_FFMPEG")
    if override:
        return override
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_binary(), "-hide_banner", "-version"], capture_output=True,
                         text=True, check=False, timeout=30)
    return out.stdout.split("\n", 1)[0].removeprefix("ffmpeg version ").split(" ")[0]


class Process:
    """A running FFmpeg command. Write frames to it (if it reads stdin), then ``wait()``.

    ``on_frames`` receives the number of frames FFmpeg reports done. ``cancel`` is checked
    continuously; setting it terminates FFmpeg and makes ``wait`` raise RenderCancelled.
    """

    def __init__(
        self,
        command: FfmpegCommand,
        *,
        on_frames: Callable[[int], None] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.command = command
        self._on_frames = on_frames
        self._on_progress = on_progress
        self._deadline = time.monotonic() + timeout if timeout else None
        self._cancel = cancel or threading.Event()
        self._stopped: str | None = None  # "timeout" or "cancel"
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        try:
            self._proc = subprocess.Popen(
                command.argv(ffmpeg_binary()),
                stdin=subprocess.PIPE if command.stdin_frames else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Its own process group: a Ctrl-C at the terminal reaches Python, which
                # decides (a render node finishes its task), not FFmpeg directly.
                process_group=0,
            )
        except OSError as exc:
            raise errors.RenderError(
                f"cannot start FFmpeg ({ffmpeg_binary()}): {exc}; set FRAMEFARM_FFMPEG to a "
                "working binary"
            ) from exc
        self._readers = [
            threading.Thread(target=self._read_progress, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._watch, daemon=True),
        ]
        for thread in self._readers:
            thread.start()

    def _read_progress(self) -> None:
        assert self._proc.stdout is not None
        seen: dict[str, str] = {}
        for raw in self._proc.stdout:
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            if key == "frame" and self._on_frames and value.isdigit():
                self._on_frames(int(value))
            if key in ("frame", "out_time_us", "total_size") and seen.get(key) != value:
                seen[key] = value
                if self._on_progress:
                    self._on_progress()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._tail.append(line)

    def _watch(self) -> None:
        while self._proc.poll() is None:
            if self._cancel.is_set():
                self._stop("cancel")
            elif self._deadline and time.monotonic() > self._deadline:
                self._stop("timeout")
            time.sleep(0.05)

    def _stop(self, reason: str) -> None:
        if self._stopped:
            return
        self._stopped = reason
        self._proc.terminate()
        try:
            self._proc.wait(_KILL_GRACE)
        except subprocess.TimeoutExpired:
            self._proc.kill()

    def write(self, frame: bytes | memoryview) -> None:
        """Send one raw frame; raises the reason if FFmpeg is gone."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(frame)
        except (BrokenPipeError, ValueError, OSError):
            self.wait()  # raises the real reason (cancel, timeout or FFmpeg's error)
            raise errors.FfmpegError(f"{self.command.description}: FFmpeg stopped reading "
                                     "frames", self.stderr_tail) from None

    def cancel(self) -> None:
        self._cancel.set()
        self._stop("cancel")

    @property
    def stderr_tail(self) -> str:
        return "\n".join(self._tail)

    def close_input(self) -> None:
        """End of frames. (Also lets a cancelled FFmpeg that waits for input exit at once
        instead of after the kill grace period.) Only from the thread that writes."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.close()

    def _reap(self) -> None:
        self._proc.wait()
        for thread in self._readers:
            thread.join(timeout=5)
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()

    def wait(self) -> None:
        self.close_input()
        self._reap()
        if self._stopped == "cancel":
            raise errors.RenderCancelled(f"{self.command.description}: cancelled")
        if self._stopped == "timeout":
            raise errors.RenderTimeout(f"{self.command.description}: stopped after the time "
                                       "limit")
        if self._proc.returncode != 0:
            raise errors.FfmpegError(
                f"{self.command.description}: FFmpeg exited with code {self._proc.returncode}",
                self.stderr_tail,
            )

    def __enter__(self) -> Process:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            if self._proc.poll() is None:
                self.close_input()
                self._stop("cancel" if isinstance(exc, errors.RenderCancelled) else "error")
            self._reap()


def run(command: FfmpegCommand, **options: Any) -> None:
    """Run a command that needs no input to completion (``options``: as for
    :class:`Process`)."""
    Process(command, **options).wait()
