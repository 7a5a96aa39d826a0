"""The engine's front door: ``render`` a document to a file, ``snapshot`` one frame.

A render is: video parts (frame ranges, composited in-process and piped to the encoder),
the audio mix once, then ``assemble`` (concat by stream copy, mux, faststart, verify).
The farm runs exactly these steps as tasks: :func:`render_part`, :func:`render_audio`,
:func:`assemble_parts`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import queue
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
from PIL import Image

from framefarm import chunks as chunking  # render() takes a ``chunks`` argument
from framefarm import errors, formats, media
from framefarm.compiler import assemble, audio, encode
from framefarm.compositor.bitmap import Array
from framefarm.compositor.frame import Compositor
from framefarm.document import loader, timeline
from framefarm.document.timeline import Timeline
from framefarm.ffmpeg import runner
from framefarm.limits import Limits
from framefarm.speech import captions as speech_captions
from framefarm.speech import resolve as speech


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far a render is; given to ``on_progress`` callbacks a few times a second."""

    step: str  # "prepare", "render", "assemble", "done"
    frames_done: int
    frames_total: int
    elapsed: float
    fps: float  # frames per second rendered so far

    @property
    def percent(self) -> float:
        return 100.0 * self.frames_done / self.frames_total if self.frames_total else 100.0

    @property
    def eta(self) -> float | None:
        """Seconds left, estimated from the speed so far."""
        if self.fps <= 0:
            return None
        return (self.frames_total - self.frames_done) / self.fps


ProgressCallback = Callable[[Progress], None]


@dataclasses.dataclass(frozen=True)
class RenderResult:
    output: Path
    frames: int
    duration: float
    width: int
    height: int
    fps: int
    format: str
    elapsed: float
    captions: int = 0  # cues written to the captions file, when one was asked for


class _Tracker:
    """Sums frames done across parallel parts and reports at most every 0.2 s."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self._callback = callback
        self._parts: dict[int, int] = {}
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last = 0.0
        self.step = "prepare"

    def part(self, index: int) -> Callable[[int], None]:
        def update(done: int) -> None:
            with self._lock:
                self._parts[index] = done
            self.report()

        return update

    def report(self, step: str | None = None, force: bool = False) -> None:
        if step:
            self.step = step
        now = time.monotonic()
        if not self._callback or (not force and now - self._last < 0.2):
            return
        self._last = now
        with self._lock:
            done = min(self.total, sum(self._parts.values()))
        elapsed = now - self._started
        self._callback(Progress(self.step, done, self.total, elapsed,
                                done / elapsed if elapsed > 0 else 0.0))


def load_timeline(
    document: Path | Mapping[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
    limits: Limits | None = None,
    **output_overrides: Any,
) -> Timeline:
    """Validate a document (path or dict), fill its template, give its spoken voice-overs
    their audio (``framefarm.speech``) and snap it to frames."""
    project = loader.load(document, data=data, base_dir=base_dir, limits=limits,
                          overrides=output_overrides)
    return timeline.build(speech.resolve(project))


def output_format(output: Path, given: str | None = None) -> str | None:
    """The format asked for: ``given``, else the output's suffix (None: the document's)."""
    if given or not output.suffix:
        return given
    suffix = output.suffix.lstrip(".").lower()
    if suffix not in formats.FORMATS:
        *first, last = (f".{name}" for name in formats.FORMATS)
        raise errors.DocumentError(
            f"{output.name}: cannot tell the format from the suffix; use {', '.join(first)} or "
            f"{last}, or pass --format")
    return suffix


def check_output(output: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done: every
    command and function that writes a file calls this first."""
    folder = output.parent
    if not folder.is_dir():
        raise errors.RenderError(f"{folder}: the output folder does not exist")
    try:
        mode = output.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise errors.DocumentError(f"{output}: cannot be written ({exc.strerror})") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise errors.DocumentError(f"{output}: is a folder; give the output's file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise errors.DocumentError(f"{output}: exists and is not a regular file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise errors.DocumentError(f"{folder}: the output folder is not writable")


def check_captions_output(path: Path) -> None:
    """Refuse a captions file that is not .srt or .vtt, or cannot be written."""
    if path.suffix.lower() not in (".srt", ".vtt"):
        raise errors.DocumentError(f"{path.name}: captions are written as .srt or .vtt")
    check_output(path)


def render_part(
    tl: Timeline,
    frames: tuple[int, int],
    output: Path,
    *,
    threads: int | None = None,
    on_frames: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    fmt: str | None = None,
    on_frame: Callable[[int, Array], None] | None = None,
    lookahead: int | None = None,
) -> None:
    """Composite frames [a, b) and encode them, video only, to ``output``.

    ``on_frame(n, pixels)`` sees every composited frame (a node samples previews there);
    ``lookahead`` caps the encoder's (see ``encode.SIDE_BY_SIDE_LOOKAHEAD``)."""
    start, end = frames
    cmd = encode.part(width=tl.width, height=tl.height, fps=tl.fps, fmt=fmt or tl.output.format,
                      quality=tl.output.quality, frames=end - start, output=output,
                      threads=threads, lookahead=lookahead)
    # A small queue lets the next frame be composited while FFmpeg takes the last one.
    frames_q: queue.Queue[bytes | None] = queue.Queue(maxsize=3)
    with runner.Process(cmd, on_frames=on_frames, cancel=cancel, timeout=timeout) as proc:
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                while (item := frames_q.get()) is not None:
                    proc.write(item)
            except BaseException as exc:  # handed to the compositing thread below
                failure.append(exc)
                while frames_q.get() is not None:  # drain so the producer never blocks
                    pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            with Compositor(tl) as compositor:
                for n in range(start, end):
                    if failure or (cancel is not None and cancel.is_set()):
                        break
                    pixels = compositor.render(n)
                    if on_frame is not None:
                        on_frame(n, pixels)
                    if cmd.stdin_pix_fmt == "yuv420p":
                        # BT.601 limited range 4:2:0, as the command's tags say.
                        frames_q.put(cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_I420).tobytes())
                    else:
                        frames_q.put(pixels.tobytes())
        finally:
            frames_q.put(None)
            writer.join()
        if cancel is not None and cancel.is_set():
            proc.close_input()
            proc.cancel()
        if failure:
            raise failure[0]
        proc.wait()


def render_audio(tl: Timeline, output: Path, frames: tuple[int, int] | None = None, *,
                 cancel: threading.Event | None = None, timeout: float | None = None,
                 on_progress: Callable[[], None] | None = None) -> None:
    gain = None
    if tl.project.document.audio.normalize:
        gain = _loudness_gain(tl, cancel=cancel, timeout=timeout)
    runner.run(audio.mix(tl, output, frames, gain_db=gain), cancel=cancel, timeout=timeout,
               on_progress=on_progress)


def _loudness_gain(tl: Timeline, **options: Any) -> float:
    """The gain that brings the whole mix to its target loudness, from two measurements:
    the mix as it is, then after that gain and the true-peak limiter (which takes some
    loudness off a spiky mix: short loud sounds in silence), corrected once. The same for
    every chunk and every run, so the mix stays the same however it is split."""
    target = tl.project.document.audio.loudness
    gain = audio.gain_for(_measure(tl, None, **options), target)
    if gain == 0.0:
        return 0.0
    return gain + (target - _measure(tl, gain, **options).integrated)


def _measure(tl: Timeline, gain: float | None, **options: Any) -> audio.Loudness:
    process = runner.Process(audio.measure(tl, gain), **options)
    process.wait()
    return audio.parse_loudness(process.stderr_tail)


def assemble_parts(
    parts: Sequence[tuple[Path, int]], audio_file: Path | None, output: Path, *, fmt: str,
    fps: int, workdir: Path,
) -> None:
    """Join (part, frame count) pairs and the audio into ``output``, then check its frame
    count and duration."""
    frames = sum(count for _, count in parts)
    list_file = workdir / "parts.ffconcat"
    list_file.write_text(assemble.concat_list(parts, fps), encoding="utf-8")
    runner.run(assemble.assemble(list_file=list_file, audio=audio_file, output=output,
                                 fmt=fmt, frames=frames))
    verify(output, frames=frames, fps=fps)


def verify(path: Path, *, frames: int, fps: int) -> media.MediaInfo:
    info = media.probe(path, count_frames=True)
    if info.video is None or info.video.frames != frames:
        got = info.video.frames if info.video else 0
        raise errors.RenderError(f"{path.name}: expected {frames} video frames, found {got}")
    expected = frames / fps
    if abs(info.video.duration - expected) > 1.5 / fps:
        raise errors.RenderError(
            f"{path.name}: video lasts {info.video.duration:.3f}s, expected {expected:.3f}s")
    return info


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# A render of this many seconds or more is split in two by default (see auto_chunks).
AUTO_CHUNK_SECONDS = 4.0


def auto_chunks(frames: int, fps: int) -> int:
    """How many ranges a render splits into when its document does not say: two when the
    machine has two cores or more and each range would last at least
    ``AUTO_CHUNK_SECONDS``, else one. Two single-threaded encoders, each fed by its own
    compositor thread, keep two cores busier than one frame-threaded encoder fed by one
    compositor (bench/run.py measures both); more chunks than two buy little more and
    each costs an encoder's memory."""
    if cores() < 2 or frames < 2 * AUTO_CHUNK_SECONDS * fps:
        return 1
    return 2


def render(
    document: Path | Mapping[str, Any] | Timeline,
    output: Path | str,
    *,
    data: Mapping[str, Any] | None = None,
    quality: str | None = None,
    size: str | None = None,
    fps: int | None = None,
    format: str | None = None,
    frames: tuple[int, int] | None = None,
    chunks: int | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    base_dir: Path | None = None,
    limits: Limits | None = None,
    captions: Path | str | None = None,
) -> RenderResult:
    """Render a document (a path, a dict, or a built Timeline) to ``output``; with
    ``captions``, also write the captions made from its spoken voice-overs there (``.srt``
    or ``.vtt``), timed like the output (its frame range). ``chunks`` (else the document's
    ``output.chunks``, else :func:`auto_chunks`) frame ranges are rendered in parallel.

    The output appears only when complete and verified; on any error nothing is left there.
    """
    began = time.monotonic()
    output = Path(output)
    check_output(output)
    captions = Path(captions) if captions is not None else None
    if captions is not None:
        check_captions_output(captions)
    if isinstance(document, Timeline):
        tl = document
    else:
        tl = load_timeline(document, data=data, base_dir=base_dir, limits=limits,
                           quality=quality, size=size, fps=fps,
                           format=output_format(output, format), chunks=chunks)
    start, end = tl.frame_range(frames)
    fmt = tl.output.format
    spec = formats.get(fmt)
    limits = tl.project.limits

    if fmt not in formats.VIDEO_FORMATS:  # a still: the first frame of the range
        snapshot(tl, output, frame=start)
        cues = speech_captions.write(tl, captions, (start, start + 1)) if captions else 0
        return RenderResult(output, 1, 1 / tl.fps, tl.width, tl.height, tl.fps, fmt,
                            time.monotonic() - began, cues)

    count = end - start
    tracker = _Tracker(count, on_progress)
    tracker.report("prepare", force=True)
    wanted = tl.output.chunks or auto_chunks(count, tl.fps)
    ranges = [(start + a, start + b) for a, b in chunking.split(
        count, 1 if spec.single_chunk else wanted)]
    workers = min(len(ranges), cores())
    threads = max(1, cores() // workers) if len(ranges) > 1 else None
    lookahead = encode.SIDE_BY_SIDE_LOOKAHEAD if workers > 1 else None
    cancel = cancel or threading.Event()
    workdir = Path(tempfile.mkdtemp(prefix=f".{output.stem}-", dir=output.parent))
    try:
        parts = [workdir / f"part{i:04d}.{spec.part_suffix}" for i in range(len(ranges))]
        tracker.report("render", force=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers + 1) as pool:
            jobs = []
            audio_file: Path | None = None
            if spec.audio_suffix is not None:
                audio_file = workdir / f"audio.{spec.audio_suffix}"
                jobs.append(pool.submit(render_audio, tl, audio_file, (start, end),
                                        cancel=cancel, timeout=limits.render_timeout))
            for i, (rng, part) in enumerate(zip(ranges, parts, strict=True)):
                jobs.append(pool.submit(render_part, tl, rng, part, threads=threads,
                                        lookahead=lookahead, on_frames=tracker.part(i),
                                        cancel=cancel, timeout=limits.render_timeout))
            try:
                for job in concurrent.futures.as_completed(jobs):
                    job.result()
            except BaseException:
                cancel.set()  # stop the other parts at once
                raise
        tracker.report("assemble", force=True)
        final = workdir / f"final.{fmt}"
        if spec.single_chunk:  # one part, no sound: the part is the video
            final = parts[0]
        else:
            sized = [(part, b - a) for part, (a, b) in zip(parts, ranges, strict=True)]
            assemble_parts(sized, audio_file, final, fmt=fmt, fps=tl.fps, workdir=workdir)
        os.replace(final, output)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    cues = speech_captions.write(tl, captions, (start, end)) if captions is not None else 0
    tracker.report("done", force=True)
    return RenderResult(output, count, count / tl.fps, tl.width, tl.height, tl.fps, fmt,
                        time.monotonic() - began, cues)


def snapshot(
    document: Path | Mapping[str, Any] | Timeline,
    output: Path | str,
    *,
    frame: int | None = None,
    at: float | None = None,
    scene: int | None = None,
    data: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
    **output_overrides: Any,
) -> int:
    """Write one frame as PNG or JPEG (by suffix) without rendering what comes before it.
    Returns the frame number drawn: see :meth:`Timeline.select_frame`."""
    output = Path(output)
    suffix = output.suffix.lower().lstrip(".")
    still = "jpeg" if suffix == "jpg" else suffix
    if still not in formats.STILL_MEDIA_TYPES:
        raise errors.DocumentError(f"{output.name}: a snapshot is written as .png or .jpg")
    check_output(output)
    tl = document if isinstance(document, Timeline) else load_timeline(
        document, data=data, base_dir=base_dir, **output_overrides)
    try:
        frame = tl.select_frame(frame=frame, at=at, scene=scene)
    except errors.FrameSelectionError as exc:
        # Worded with the command line's options, as the CLI (this function's main caller)
        # and its tests have always shown it.
        raise exc.labelled(f"--{exc.field}") from None
    with Compositor(tl) as compositor:
        pixels = compositor.render(frame)
    tmp = output.with_name(f".{output.name}.part")
    try:
        if still == "jpeg":
            Image.fromarray(pixels).save(tmp, format="JPEG", quality=92)
        else:
            # PNG at zlib level 1: lossless all the same, a tenth larger, and about five
            # times faster to write than level 6, the larger part of a snapshot's time;
            # OpenCV's libpng writes it in about 0.7x Pillow's time at 1080p.
            ok, png = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_PNG_COMPRESSION, 1])
            if not ok:
                raise errors.RenderError(f"{output.name}: the frame could not be written "
                                         "as PNG")
            tmp.write_bytes(png.tobytes())
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return frame
