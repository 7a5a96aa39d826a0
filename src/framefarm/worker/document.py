"""A JSON document's task on a node: its snapshot, chunk or audio mix, made by the engine
from the document and the job's files (already fetched by the agent). The assemble step,
which fetches the other tasks' outputs, stays with the agent."""

from __future__ import annotations

import threading
from pathlib import Path

from framefarm import engine, errors, formats
from framefarm.document.timeline import Timeline
from framefarm.limits import Limits
from framefarm.protocol import ClaimedTask, TaskKind
from framefarm.worker.progress import Progress


def load(task: ClaimedTask, inputs: Path) -> Timeline:
    """The task's document with the job's options, checked as the server checked it, its
    files under ``inputs``."""
    options = {k: v for k, v in task.options.items()
               if k in ("quality", "size", "fps", "format")}
    return engine.load_timeline(task.document, base_dir=inputs, limits=_limits(task),
                                **options)


def run(task: ClaimedTask, tl: Timeline, folder: Path, cancel: threading.Event,
        progress: Progress, threads: int | None) -> tuple[Path | None, str]:
    """Make ``task``'s output (not an assemble's) into ``folder``: its file and extension
    (None: it has no output, the audio of a silent format)."""
    fmt = formats.get(tl.output.format)
    start, end = task.frames
    if task.kind is TaskKind.SNAPSHOT:
        ext = task.options.get("snapshot_format", "png")
        out = folder / ("frame.jpg" if ext == "jpeg" else "frame.png")
        engine.snapshot(tl, out, frame=start)
        return out, ext
    if task.kind is TaskKind.RENDER:
        out = folder / f"part.{fmt.part_suffix}"
        progress.watch()
        try:
            engine.render_part(tl, (start, end), out, cancel=cancel, threads=threads,
                               on_frames=progress.set_frames, on_frame=progress.offer,
                               timeout=tl.project.limits.render_timeout)
        finally:
            progress.unwatch()
        return out, fmt.part_suffix
    if task.kind is TaskKind.AUDIO:
        if fmt.audio_suffix is None:
            return None, ""
        out = folder / f"audio.{fmt.audio_suffix}"
        progress.watch()
        try:
            engine.render_audio(tl, out, (start, end), cancel=cancel,
                                on_progress=progress.touch)
        finally:
            progress.unwatch()
        return out, fmt.audio_suffix
    raise errors.RenderError(f"unknown task kind {task.kind!r}")


def _limits(task: ClaimedTask) -> Limits | None:
    """The limits the job was validated with; None (the node's own) if the server sent
    none. Names this node does not know are left out: the server already checked them."""
    if task.limits is None:
        return None
    return Limits(**{k: v for k, v in task.limits.items() if k in Limits.model_fields})
