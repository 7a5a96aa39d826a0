"""Frames of a video clip by time, decoded with PyAV, frame-exactly wherever decoding starts.

Rule: the frame shown at source time ``s`` is the last frame whose timestamp is <= ``s``.
A reader decodes forward; it seeks (to the keyframe before) only when asked for an earlier
time or one far ahead, so a chunk starting mid-clip picks exactly the frames a full render
would.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from framefarm import errors
from framefarm.compositor.bitmap import Array

_EPSILON = 1e-4
_SEEK_AHEAD = 3.0  # seconds; decoding forward is cheaper than seeking for shorter gaps


class VideoReader:
    def __init__(self, path: Path, max_size: tuple[int, int] | None = None) -> None:
        self.path = path
        try:
            self._container = av.open(str(path))
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError) as exc:
            raise errors.AssetError(f"{path.name}: cannot be decoded as video ({exc})") from exc
        self._stream.thread_type = "AUTO"
        if not (self._stream.codec_context.width and self._stream.codec_context.height):
            self._container.close()
            raise errors.AssetError(f"{path.name}: FFmpeg cannot tell the size of its pictures")
        self._size = self._scaled_size(max_size)
        self._frames = self._decode()
        self._current: tuple[float, Array] | None = None
        self._pending: tuple[float, Array] | None = None

    def _scaled_size(self, max_size: tuple[int, int] | None) -> tuple[int, int] | None:
        w, h = self._stream.codec_context.width, self._stream.codec_context.height
        if not max_size or (w <= max_size[0] and h <= max_size[1]):
            return None
        k = min(max_size[0] / w, max_size[1] / h)
        return max(2, round(w * k)), max(2, round(h * k))

    def _decode(self, at: float = 0.0):  # type: ignore[no-untyped-def]
        time_base = self._stream.time_base
        assert time_base is not None
        # Always seek, even to 0: the reader may be past the start (a looping clip).
        self._container.seek(int(at / time_base), stream=self._stream, backward=True,
                             any_frame=False)
        for frame in self._container.decode(self._stream):
            pts = frame.pts
            if pts is None:
                continue
            if self._size:
                frame = frame.reformat(width=self._size[0], height=self._size[1])
            yield float(pts * time_base), frame

    def _next(self) -> tuple[float, Array] | None:
        try:
            for ts, frame in self._frames:
                return ts, frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, OSError, ValueError, MemoryError) as exc:
            # The loader decoded its first frame; this is damage further into the file.
            raise errors.AssetError(f"{self.path.name}: cannot be decoded as video ({exc})"
                                    ) from exc
        return None

    def frame_at(self, seconds: float) -> Array:
        target = seconds + _EPSILON
        if self._current is None or target < self._current[0] or (
            target - self._current[0] > _SEEK_AHEAD
        ):
            self._frames = self._decode(max(0.0, seconds - 0.5))
            self._current, self._pending = self._next(), None
            if self._current is None:
                raise errors.AssetError(f"{self.path.name}: no frame at {seconds:.3f}s")
        while True:
            if self._pending is None:
                self._pending = self._next()
            if self._pending is None or self._pending[0] > target:
                break
            self._current, self._pending = self._pending, None
        return np.ascontiguousarray(self._current[1])

    def close(self) -> None:
        self._container.close()
