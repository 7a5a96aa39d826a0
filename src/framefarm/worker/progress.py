"""What a render node knows about its machine and about the task in hand, for the reports
its heartbeats carry."""

from __future__ import annotations

import base64
import io
import os
import platform
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from framefarm import engine
from framefarm.compositor.bitmap import Array
from framefarm.ffmpeg import runner
from framefarm.protocol import Sample

PREVIEW_EVERY = 2.0  # seconds between preview frames sent with heartbeats


def capabilities(threads: int | None = None,
                 engines: Sequence[str] = ("framefarm",)) -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    try:
        ffmpeg = runner.ffmpeg_version()
    except Exception:
        ffmpeg = "unavailable"
    return {"cores": engine.cores(), "threads": threads, "memory_bytes": pages * page,
            "ffmpeg": ffmpeg, "python": platform.python_version(),
            "engines": list(engines), "host": socket.gethostname()}


def machine_sample() -> Sample:
    """Load and memory in use on this machine, for the node's health history."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        total = int(info["MemTotal"].split()[0]) * 1024
        available = int(info["MemAvailable"].split()[0]) * 1024
        used: int | None = max(0, total - available)
    except (OSError, KeyError, ValueError):
        used = None
    return Sample(load=load, memory_used=used)


class Progress:
    """Shared between the render thread and the heartbeat thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.frames = 0
        self.finished = False
        self.stalled = False
        self._clock = clock
        self._watching_since: float | None = None
        self._preview: str | None = None
        self._last_offer: float | None = None
        self._lock = threading.Lock()

    def set_frames(self, done: int) -> None:
        if done != self.frames and self._watching_since is not None:
            self._watching_since = self._clock()
        self.frames = done

    def touch(self) -> None:
        """Output advanced (an FFmpeg phase without frames: audio)."""
        if self._watching_since is not None:
            self._watching_since = self._clock()

    def watch(self) -> None:
        """Start timing stalls: the render phase reports frames as it goes."""
        self._watching_since = self._clock()

    def unwatch(self) -> None:
        self._watching_since = None

    def idle_seconds(self) -> float:
        """Seconds since the last frame while rendering; 0 outside the render phase."""
        since = self._watching_since
        return 0.0 if since is None else self._clock() - since

    def offer(self, _frame: int, pixels: Array) -> None:
        now = self._clock()
        if self._last_offer is not None and now - self._last_offer < PREVIEW_EVERY:
            return
        self._last_offer = now
        image = Image.fromarray(pixels)
        image.thumbnail((320, 320))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
        with self._lock:
            self._preview = base64.b64encode(buffer.getvalue()).decode()

    def take_preview(self) -> str | None:
        with self._lock:
            preview, self._preview = self._preview, None
        return preview
