"""Rendering a Remotion project on this machine, the way the farm will: prepare once,
frame ranges rendered apart (in parallel) into parts, the audio once, then framefarm's
assemble step (concat by stream copy, mux, verify). What ``framefarm render PATH`` runs
when PATH is a Remotion project."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from framefarm import chunks as chunking
from framefarm import engine, errors, formats
from framefarm.engines import Description, Settings, Source
from framefarm.engines.remotion import engine as remotion

ProgressCallback = Callable[[engine.Progress], None]


class _Tracker:
    """Frames done across the parts, reported at most every 0.2 s."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.total = 0
        self.step = "prepare"
        self._callback = callback
        self._parts: dict[int, int] = {}
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last = 0.0

    def part(self, index: int) -> Callable[[int], None]:
        def update(done: int) -> None:
            with self._lock:
                self._parts[index] = done
            self.report()

        return update

    def report(self, step: str | None = None, force: bool = False) -> None:
        self.step = step or self.step
        now = time.monotonic()
        if self._callback is None or (not force and now - self._last < 0.2):
            return
        self._last = now
        with self._lock:
            done = min(self.total, sum(self._parts.values()))
        elapsed = now - self._started
        self._callback(engine.Progress(self.step, done, self.total, elapsed,
                                       done / elapsed if elapsed > 0 else 0.0))


DEFAULT_QUALITY = "high"  # as a JSON document's default


def settings_for(description: Description, *, fmt: str, quality: str | None, size: str | None,
              scale: float | None, fps: int | None) -> Settings:
    if fps is not None and fps != description.fps:
        raise errors.DocumentError(
            f"--fps {fps}: composition {description.id} runs at {description.fps} fps, and "
            "Remotion renders a composition at its own rate")
    if scale is None:
        scale = remotion.scale_for(size, description)
        try:
            remotion.output_size(description, scale, fmt)
        except errors.DocumentError:
            raise errors.DocumentError(
                f"--size {size}: composition {description.id} is {description.width}x"
                f"{description.height}, which {size} would make "
                f"{description.width * scale:g}x{description.height * scale:g}; choose a size "
                "that gives whole, even sides") from None
    return Settings(quality=quality or DEFAULT_QUALITY, format=fmt, scale=scale)


def _range(frames: tuple[int, int] | None, total: int) -> tuple[int, int]:
    if frames is None:
        return 0, total
    start, end = frames
    if not 0 <= start < end <= total:
        raise errors.FrameSelectionError("frames", f"{start}-{end}", "not in the video",
                                         f"the composition has frames 0-{total}")
    return start, end


def render(
    project: Path | str,
    output: Path | str,
    *,
    composition: str | None,
    props: Mapping[str, Any] | None = None,
    quality: str | None = None,
    size: str | None = None,
    scale: float | None = None,
    fps: int | None = None,
    format: str | None = None,
    frames: tuple[int, int] | None = None,
    chunks: int | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    cache: Path | str | None = None,
    browser: str | Path | None = None,
    timeout: float | None = None,
) -> engine.RenderResult:
    """Render ``composition`` of the Remotion project at ``project`` to ``output``, in
    ``chunks`` frame ranges (default 1) joined by stream copy. The output appears only when
    complete and verified."""
    began = time.monotonic()
    output = Path(output)
    engine.check_output(output)
    fmt = engine.output_format(output, format) or "mp4"
    spec = formats.get(fmt)
    cancel = cancel or threading.Event()
    tracker = _Tracker(on_progress)
    tracker.report("prepare", force=True)
    remote = remotion.RemotionEngine(cache, browser=browser)
    remote.prepare(project, cancel=cancel)
    source = Source(Path(project), composition, dict(props or {}))
    desc = remote.validate(source, cancel=cancel)
    settings = settings_for(desc, fmt=fmt, quality=quality, size=size, scale=scale, fps=fps)
    width, height = remotion.output_size(desc, settings.scale, fmt)
    start, end = _range(frames, desc.frames)

    if fmt not in formats.VIDEO_FORMATS:  # a still: the first frame of the range
        remote.snapshot(source, start, output, settings, cancel=cancel)
        return engine.RenderResult(output, 1, 1 / desc.fps, width, height, desc.fps, fmt,
                                   time.monotonic() - began)

    count = end - start
    tracker.total = count
    ranges = [(start + a, start + b) for a, b in chunking.split(
        count, 1 if spec.single_chunk else (chunks or 1))]
    cores = engine.cores()
    workers = min(len(ranges), cores)
    threads = max(1, cores // workers)
    part_settings = Settings(quality=settings.quality, format=fmt, scale=settings.scale,
                             threads=threads, timeout=timeout)
    workdir = Path(tempfile.mkdtemp(prefix=f".{output.stem}-", dir=output.parent))
    try:
        parts = [workdir / f"part{i:04d}.{spec.part_suffix}" for i in range(len(ranges))]
        tracker.report("render", force=True)
        audio_file: Path | None = None
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers + 1) as pool:
            jobs = []
            if spec.audio_suffix is not None:
                audio_file = workdir / f"audio.{spec.audio_suffix}"
                jobs.append(pool.submit(remote.render_audio, source, audio_file, part_settings,
                                        frames=(start, end), cancel=cancel, description=desc))
            for i, (rng, part) in enumerate(zip(ranges, parts, strict=True)):
                jobs.append(pool.submit(remote.render_range, source, rng, part, part_settings,
                                        on_frames=tracker.part(i), cancel=cancel,
                                        description=desc))
            try:
                for job in concurrent.futures.as_completed(jobs):
                    job.result()
            except BaseException:
                cancel.set()  # stop the other parts at once
                raise
        tracker.report("assemble", force=True)
        final = workdir / f"final.{fmt}"
        if spec.single_chunk:
            final = parts[0]
        else:
            sized = [(part, b - a) for part, (a, b) in zip(parts, ranges, strict=True)]
            engine.assemble_parts(sized, audio_file, final, fmt=fmt, fps=desc.fps,
                                  workdir=workdir)
        os.replace(final, output)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    tracker.report("done", force=True)
    return engine.RenderResult(output, count, count / desc.fps, width, height, desc.fps, fmt,
                               time.monotonic() - began)


def snapshot(project: Path | str, output: Path | str, *, composition: str | None,
             frame: int | None = None, at: float | None = None,
             props: Mapping[str, Any] | None = None, size: str | None = None,
             scale: float | None = None, cache: Path | str | None = None,
             browser: str | Path | None = None,
             cancel: threading.Event | None = None) -> int:
    """Write one frame (``frame``, or the one at ``at`` seconds; default 0) as PNG or
    JPEG. Returns the frame drawn."""
    output = Path(output)
    engine.check_output(output)
    remote = remotion.RemotionEngine(cache, browser=browser)
    source = Source(Path(project), composition, dict(props or {}))
    desc = remote.validate(source, cancel=cancel)
    if frame is None:
        frame = round(at * desc.fps) if at is not None else 0
    settings = settings_for(desc, fmt="png", quality=None, size=size, scale=scale, fps=None)
    remote.snapshot(source, frame, output, settings, cancel=cancel)
    return frame


def compositions(project: Path | str, *, cache: Path | str | None = None,
                 browser: str | Path | None = None) -> list[Description]:
    return remotion.RemotionEngine(cache, browser=browser).compositions(project)
