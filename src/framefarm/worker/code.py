"""A code template's tasks on a node (a Remotion project): the same task graph as a JSON
document's, run by the Remotion engine.

The job's files are the project. It is prepared once per content hash (dependencies
installed from the lockfile, then bundled) in the node's cache, which every later task
and job of the same project version reuses. ``prepare`` answers with what the
composition is (size, rate, length: the server plans the other tasks from it, the props
already checked against the composition's schema); ``render`` makes a part of a frame
range with the same encoder settings as every other part, carrying the range's sound
from the same pass over its frames; the assemble step joins the parts' video by stream
copy, as for JSON documents, and their sound sample for sample, encoded once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from framefarm import errors, formats
from framefarm.engines import Description, Settings, Source
from framefarm.engines.remotion import RemotionEngine, local, sandbox
from framefarm.engines.remotion import project as remotion_project
from framefarm.engines.remotion.engine import (
    SOUND_PART_SUFFIX,
    join_sound,
    output_size,
    sound_part_command,
)
from framefarm.ffmpeg import runner
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

    def execute(self, task: ClaimedTask, project: Path, folder: Path,
                cancel: threading.Event, progress: Progress
                ) -> tuple[Path | None, str, Planned | None]:
        """Run a task of a code template (``project``: its files) as its tenant's own
        sandbox user: its output file and extension, and a prepare task's description."""
        owner = (remotion_project.owner_number(self.engine.cache, task.owner)
                 if task.owner else None)
        with sandbox.owned_by(owner):
            if task.kind is TaskKind.PREPARE:
                return None, "", self.prepare(task, project, cancel)
            if task.kind is TaskKind.SNAPSHOT:
                return (*self.snapshot(task, project, folder, cancel), None)
            return (*self.run(task, project, folder, cancel, progress), None)

    def prepare(self, task: ClaimedTask, project: Path,
                cancel: threading.Event) -> Planned:
        source = _source(task, project)
        found = self.engine.validate(source, cancel=cancel)
        settings = self._settings(task, found)
        output_size(found, settings.scale, settings.format)  # refused here if unusable
        return Planned(id=found.id, width=found.width, height=found.height, fps=found.fps,
                       frames=found.frames)

    def snapshot(self, task: ClaimedTask, project: Path, folder: Path,
                 cancel: threading.Event) -> tuple[Path, str]:
        """A snapshot task: its frame as PNG or JPEG, at the job's size."""
        source = _source(task, project)
        ext = task.options.get("snapshot_format", "png")
        out = folder / ("frame.jpg" if ext == "jpeg" else "frame.png")
        found = self.engine.describe(source, cancel=cancel)
        chosen = local.settings_for(found, fmt="png", quality=None,
                                    size=task.options.get("size"), scale=None, fps=None)
        self.engine.snapshot(source, task.frames[0], out, chosen, cancel=cancel,
                             description=found)
        return out, ext

    def run(self, task: ClaimedTask, project: Path, folder: Path, cancel: threading.Event,
            progress: Progress) -> tuple[Path | None, str]:
        """A render or audio task: its output file and extension (None: a silent format)."""
        source = _source(task, project)
        found = _prepared(task, source) or self.engine.describe(source, cancel=cancel)
        settings = self._settings(task, found)
        spec = formats.get(settings.format)
        if task.kind is not TaskKind.RENDER:
            raise errors.RenderError(f"a code template has no {task.kind} task")
        video = folder / f"video.{spec.part_suffix}"
        sound = folder / "sound.wav" if spec.audio_suffix else None
        progress.watch()
        try:
            self.engine.render_range(source, task.frames, video, settings,
                                     on_frames=progress.set_frames, on_frame=progress.offer,
                                     cancel=cancel, description=found, sound=sound)
        finally:
            progress.unwatch()
        if sound is None:
            return video, spec.part_suffix
        suffix = self.part_suffix(spec)
        out = folder / f"part.{suffix}"
        runner.run(sound_part_command(video, sound, out), cancel=cancel)
        return out, suffix

    @staticmethod
    def part_suffix(fmt: formats.OutputFormat) -> str:
        """The suffix of a render task's part (one with sound beside its video)."""
        return SOUND_PART_SUFFIX.get(fmt.name, fmt.part_suffix)

    def join_sound(self, task: ClaimedTask, parts: Sequence[tuple[Path, int]], folder: Path
                   ) -> Path | None:
        """An assemble task's audio: the parts' own sound joined and encoded once (None
        for a silent format)."""
        fmt = formats.get(task.options.get("format", "mp4"))
        if fmt.audio_suffix is None:
            return None
        if not task.fps:
            raise errors.RenderError("the server sent no frame rate for this assemble task")
        out = folder / f"audio.{fmt.audio_suffix}"
        quality = task.options.get("quality") or local.DEFAULT_QUALITY
        join_sound(parts, out, fmt=fmt.name, quality=quality, fps=task.fps, workdir=folder)
        return out

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
