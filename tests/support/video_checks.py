"""The checks made on a farm's final video: its frame count and length, and (lossless)
every frame against the same document rendered once in this process."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from framefarm import engine
from framefarm import media as probe
from support.documents import FPS
from support.media import video_frames


def check_video(path: Path, frames_total: int, size: tuple[int, int] = (640, 360)) -> None:
    """Exactly the job's frames, lasting them to within one frame."""
    info = probe.probe(path, count_frames=True)
    assert info.video is not None and info.video.codec == "h264", info
    assert (info.video.width, info.video.height) == size, info
    assert info.video.frames == frames_total, (info.video.frames, frames_total)
    assert abs(info.video.duration - frames_total / FPS) <= 1 / FPS, info.video.duration


def assert_frames_equal(farm_video: Path, document: dict[str, Any], folder: Path) -> int:
    """Render ``document`` once in this process (lossless, one chunk) and compare every
    decoded frame of ``farm_video`` with it, bit for bit. Returns the frame count."""
    reference = folder / "reference.mp4"
    engine.render(document, reference, quality="lossless", chunks=1)
    count = 0
    sentinel = object()
    pairs = itertools.zip_longest(video_frames(farm_video), video_frames(reference),
                                  fillvalue=sentinel)
    for i, (a, b) in enumerate(pairs):
        assert a is not sentinel and b is not sentinel, f"frame counts differ at frame {i}"
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        if not np.array_equal(a, b):
            diff = int(np.abs(a.astype(int) - b.astype(int)).max())
            raise AssertionError(f"frame {i} differs from the in-process render "
                                 f"(max difference {diff})")
        count += 1
    return count
