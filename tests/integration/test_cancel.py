"""Cancelling a render: RenderCancelled, and nothing left in the output folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from framefarm import engine, errors
from support.files import files_in

pytestmark = pytest.mark.ffmpeg

# Long enough that FFmpeg reports progress (every 0.5 s) well before the end.
LONG = {
    "output": {"size": "360p", "fps": 30, "quality": "draft", "chunks": 2},
    "scenes": [{"duration": 60, "layers": [
        {"type": "text", "text": "cancel me", "animation": {"in": "zoom", "duration": 2}},
        {"type": "shape", "shape": "circle", "width": 80, "height": 80,
         "keyframes": {"x": [{"time": 0, "value": 0}, {"time": 60, "value": 500}]}},
    ]}],
}
TOTAL = 1800


def test_cancel_from_the_progress_callback(tmp_path: Path) -> None:
    out = tmp_path / "out" / "long.mp4"
    out.parent.mkdir()
    cancel = threading.Event()
    seen: list[engine.Progress] = []
    cancelled_at: list[float] = []

    def on_progress(p: engine.Progress) -> None:
        seen.append(p)
        if p.step == "render" and p.frames_done > 0 and not cancel.is_set():
            cancelled_at.append(time.monotonic())
            cancel.set()

    with pytest.raises(errors.RenderCancelled):
        engine.render(LONG, out, base_dir=tmp_path, cancel=cancel, on_progress=on_progress)
    assert cancelled_at, "no progress with frames was reported before the render ended"
    stopped_after = time.monotonic() - cancelled_at[0]
    assert stopped_after < 10
    assert 0 < seen[-1].frames_done < TOTAL
    assert all(p.step != "done" for p in seen)
    assert files_in(out.parent) == set()


def test_cancelled_before_it_starts(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    out = tmp_path / "never.mp4"
    began = time.monotonic()
    with pytest.raises(errors.RenderCancelled):
        engine.render(LONG, out, base_dir=tmp_path, cancel=cancel)
    assert time.monotonic() - began < 10
    assert files_in(tmp_path) == set()


def test_progress_fields() -> None:
    p = engine.Progress("render", 30, 120, 2.0, 15.0)
    assert p.percent == 25.0
    assert p.eta == 6.0
    assert engine.Progress("prepare", 0, 0, 0.0, 0.0).percent == 100.0
    assert engine.Progress("prepare", 0, 10, 0.0, 0.0).eta is None
