"""The FFmpeg runner: errors carry FFmpeg's words, timeouts and cancellation stop it."""

from __future__ import annotations

import gc
import threading
import time
import warnings
from pathlib import Path

import pytest

from framefarm import errors
from framefarm.compiler.command import COMMON, FfmpegCommand
from framefarm.ffmpeg import runner

pytestmark = pytest.mark.ffmpeg

SLOW = FfmpegCommand((*COMMON, "-re", "-f", "lavfi", "-i", "sine=duration=30", "-f", "null", "-"),
                     description="slow")


def test_version_is_reported() -> None:
    version = runner.ffmpeg_version()
    assert version
    assert version[0].isdigit() or version.startswith("n")


def test_ffmpeg_error_carries_the_tail_of_stderr(tmp_path: Path) -> None:
    cmd = FfmpegCommand((*COMMON, "-i", str(tmp_path / "missing.wav"), "-f", "null", "-"),
                        description="probe a missing file")
    with pytest.raises(errors.FfmpegError) as caught:
        runner.run(cmd)
    message = str(caught.value)
    assert message.startswith("probe a missing file: FFmpeg exited with code ")
    assert "missing.wav" in caught.value.stderr_tail
    assert "No such file or directory" in message


def test_progress_reports_frames(tmp_path: Path) -> None:
    seen: list[int] = []
    cmd = FfmpegCommand((*COMMON, "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=30:duration=1",
                         "-f", "null", "-"), frames=30)
    runner.run(cmd, on_frames=seen.append)
    assert seen[-1] == 30


def test_timeout_stops_ffmpeg() -> None:
    began = time.monotonic()
    with pytest.raises(errors.RenderTimeout, match="slow: stopped after the time limit"):
        runner.run(SLOW, timeout=0.3)
    assert time.monotonic() - began < 5


def test_cancel_stops_ffmpeg() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(errors.RenderCancelled, match="slow: cancelled"):
        runner.run(SLOW, cancel=cancel)
    assert time.monotonic() - began < 5


def test_missing_binary_is_a_render_error(
    monkeypatch: pytest.MonkeyPatch, fresh_ffmpeg_binary: None, tmp_path: Path
) -> None:
    monkeypatch.setenv("FRAMEFARM_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    assert runner.ffmpeg_binary() == str(tmp_path / "no-such-ffmpeg")
    with pytest.raises(errors.RenderError, match=r"cannot start FFmpeg .*set FRAMEFARM_FFMPEG"):
        runner.run(FfmpegCommand(("-version",)))


def test_a_finished_command_leaves_no_open_pipes() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner.run(FfmpegCommand(("-hide_banner", "-version")))
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]
