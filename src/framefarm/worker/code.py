"""A code template's tasks on a node (a Remotion project): the same task graph as a JSON
document's, run by the Remotion engine.

The job's files are the project. It is prepared once per content hash (dependencies
installed from the lockfile, then bundled) in the node's cache, which every later task
and job of the same project version reuses. ``prepare`` answers with what the
composition is (size, rate, length: the server plans the other tasks from it, the props
already checked against the composition's schema); ``render`` makes a video-only part of
a frame range with the same encoder settings as every other part; ``audio`` makes the
whole range's sound once; the assemble step is the one JSON documents use.
"""

from __future__ import annotations

import threading
from pathlib import Path

from framefarm import errors, formats
from framefarm.engines import Description, Settings, Source
from framefarm.engines.remotion import RemotionEngine, local
from framefarm.engines.remotion.engine import output_size
from framefarm.protocol import ClaimedTask, TaskKind
from framefarm.protocol import Description as Planned
from framefarm.worker.progress import Progress


class CodeTasks:
    """Runs code-template tasks with the node's Remotion cache and thread budget."""

    def __init__(self, cache: Path, threads: int | None) -> None:
        self.engine = RemotionEngine(cache)
        self.threads = threads

    def available(self) -> bool:
        return not self.engine.available()

    def prepare(self, task: ClaimedTask, project: Path,
                cancel: threading.Event) -> Planned:
        source = _source(task, project)
        found = self.engine.validate(source, cancel=cancel)
        settings = self._settings(task, found)
        output_size(found, settings.scale, settings.format)  # refused here if unusable
        return Planned(id=found.id, width=found.width, height=found.height, fps=found.fps,
                       frames=found.frames)

    def run(self, task: ClaimedTask, project: Path, folder: Path, cancel: threading.Event,
            progress: Progress) -> tuple[Path | None, str]:
        """A render or audio task: its output file and extension (None: a silent format)."""
        source = _source(task, project)
        found = _prepared(task, source) or self.engine.describe(source, cancel=cancel)
        settings = self._settings(task, found)
        spec = formats.get(settings.format)
        progress.watch()
        try:
            if task.kind is TaskKind.RENDER:
                out = folder / f"part.{spec.part_suffix}"
                self.engine.render_range(source, task.frames, out, settings,
                                         on_frames=progress.set_frames, on_frame=progress.offer,
                                         cancel=cancel, description=found)
                return out, spec.part_suffix
            if task.kind is TaskKind.AUDIO:
                if spec.audio_suffix is None:
                    return None, ""
                out = folder / f"audio.{spec.audio_suffix}"
                self.engine.render_audio(source, out, settings, frames=task.frames,
                                         cancel=cancel, description=found)
                return out, spec.audio_suffix
        finally:
            progress.unwatch()
        raise errors.RenderError(f"a code template has no {task.kind} task")

    def _settings(self, task: ClaimedTask, found: Description) -> Settings:
        options = task.options
        chosen = local.settings_for(found, fmt=options.get("format", "mp4"),
                                    quality=options.get("quality"), size=options.get("size"),
                                    scale=None, fps=None)
        limits = task.limits or {}
        return Settings(quality=chosen.quality, format=chosen.format, scale=chosen.scale,
                        threads=self.threads, timeout=limits.get("render_timeout"))


def _prepared(task: ClaimedTask, source: Source) -> Description | None:
    """What the job's prepare task found (the server hands it to the later tasks), so a
    chunk does not start a browser only to be told the composition's size again."""
    found = task.options.get("composition")
    if not isinstance(found, dict):
        return None
    planned = Planned.model_validate(found)
    return Description(id=planned.id, width=planned.width, height=planned.height,
                       fps=planned.fps, frames=planned.frames, default_props={},
                       props=source.props)


def _source(task: ClaimedTask, project: Path) -> Source:
    return Source(project, task.document.get("composition"),
                  dict(task.document.get("props") or {}))
