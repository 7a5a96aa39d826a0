"""The document in integer frames: the one place where seconds are snapped.

Scene ``i`` starts at ``start`` and lasts ``frames``. A transition into the next scene
overlaps the two by ``transition_frames``: the next scene starts that many frames
before this one ends. Frame ``n`` shows time ``n / fps``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from framefarm import errors
from framefarm.document import loader, models


@dataclasses.dataclass(frozen=True)
class SceneSpan:
    index: int
    start: int
    frames: int
    transition: models.Transition | None
    transition_frames: int
    scene: models.Scene

    @property
    def end(self) -> int:
        return self.start + self.frames


@dataclasses.dataclass(frozen=True)
class Timeline:
    project: loader.Project
    width: int
    height: int
    fps: int
    total_frames: int
    scenes: Sequence[SceneSpan]

    @property
    def output(self) -> models.Output:
        return self.project.document.output

    @property
    def duration(self) -> float:
        return self.total_frames / self.fps

    def scenes_at(self, frame: int) -> list[SceneSpan]:
        """The one scene showing at ``frame``, or two during a transition (outgoing first)."""
        return [s for s in self.scenes if s.start <= frame < s.end]

    def select_frame(self, *, frame: int | None = None, at: float | None = None,
                     scene: int | None = None) -> int:
        """The frame a snapshot shows: a scene's key frame, the frame at ``at`` seconds, or
        ``frame`` (default 0), in that order of precedence. ``at`` may be the very end of the
        video, which shows its last frame. FrameSelectionError names the selector that
        failed."""
        if scene is not None:
            return self.key_frame(scene)
        if at is not None:
            if not 0 <= at <= self.duration:  # also refuses NaN
                where = "before the start" if at < 0 else "past the end"
                raise errors.FrameSelectionError(
                    "at", f"{at}", f"{at} s is {where}", f"the video lasts {self.duration:.2f} s")
            return min(round(at * self.fps), self.total_frames - 1)
        frame = frame or 0
        if not 0 <= frame < self.total_frames:
            raise errors.FrameSelectionError(
                "frame", f"{frame}", f"frame {frame} is not in the video",
                f"the video has frames 0-{self.total_frames - 1}")
        return frame

    def frame_range(self, frames: tuple[int, int] | None = None) -> tuple[int, int]:
        """Frames [start, end) to render, checked against the video (default: all)."""
        if frames is None:
            return 0, self.total_frames
        start, end = frames
        if not 0 <= start < end <= self.total_frames:
            problem = (f"frames {start}-{end} is an empty range" if start >= end
                       else f"frames {start}-{end} is not inside the video")
            raise errors.FrameSelectionError(
                "frames", f"{start}-{end}", problem,
                f"the video has frames 0-{self.total_frames} (end exclusive)")
        return start, end

    def key_frame(self, scene_index: int) -> int:
        """A scene's representative frame: its middle, outside any transition."""
        if not 0 <= scene_index < len(self.scenes):
            raise errors.FrameSelectionError(
                "scene", f"{scene_index}", f"scene {scene_index} does not exist",
                f"the document has scenes 0..{len(self.scenes) - 1}")
        span = self.scenes[scene_index]
        incoming = self.scenes[scene_index - 1].transition_frames if scene_index else 0
        first, last = span.start + incoming, span.end - span.transition_frames
        if first >= last:  # transitions cover the whole scene: take its middle
            return span.start + span.frames // 2
        return (first + last) // 2


def to_frames(seconds: float, fps: int) -> int:
    return round(seconds * fps)


def scene_duration(project: loader.Project, index: int) -> float:
    scene = project.document.scenes[index]
    if scene.duration != "auto":
        return float(scene.duration)
    assert scene.voiceover is not None  # the model guarantees it
    if scene.voiceover.src is None:  # engine.load_timeline resolves speech before this
        raise errors.RenderError(f"scenes[{index}].voiceover.text: not synthesised yet "
                                 "(framefarm.speech.resolve gives it its audio)")
    info = project.media[project.asset(scene.voiceover.src)]
    if info.audio is None:
        raise errors.AssetError(f"scenes[{index}].voiceover.src: has no audio stream")
    voice = (info.audio.duration or info.duration) + scene.voiceover.delay
    return min(max(voice + scene.auto.padding, scene.auto.min), scene.auto.max)


def build(project: loader.Project) -> Timeline:
    doc = project.document
    width, height = doc.output.dimensions
    fps = doc.output.fps
    spans: list[SceneSpan] = []
    start = 0
    problems: list[str] = []
    for i, scene in enumerate(doc.scenes):
        frames = max(1, to_frames(scene_duration(project, i), fps))
        transition = scene.transition if i + 1 < len(doc.scenes) else None
        overlap = to_frames(transition.duration, fps) if transition else 0
        if transition is not None:
            next_frames = max(1, to_frames(scene_duration(project, i + 1), fps))
            if overlap >= min(frames, next_frames):
                problems.append(
                    f"scenes[{i}].transition.duration: {transition.duration}s is not shorter "
                    f"than this scene or the next ({frames / fps:.2f}s, "
                    f"{next_frames / fps:.2f}s)"
                )
        spans.append(SceneSpan(i, start, frames, transition, overlap, scene))
        start += frames - overlap
    if problems:
        raise errors.DocumentError("the scenes' timing does not work", problems)
    total = spans[-1].end
    if total / fps > project.limits.max_duration:
        raise errors.DocumentError(
            f"scenes: the video lasts {total / fps:.1f} s, the limit is "
            f"{project.limits.max_duration:.0f} s"
        )
    _check_media_kinds(project)
    return Timeline(project, width, height, fps, total, spans)


def _check_media_kinds(project: loader.Project) -> None:
    doc = project.document
    problems: list[str] = []

    def need(where: str, src: str, kind: str) -> None:
        path = project.assets.get(src)
        info = project.media.get(path) if path else None
        if info is None:
            return
        if (kind == "audio" and info.audio is None) or (kind == "video" and info.video is None):
            problems.append(f"{where}: {src!r} has no {kind} stream")

    if doc.music:
        need("music.src", doc.music.src, "audio")
    for i, scene in enumerate(doc.scenes):
        if scene.voiceover and scene.voiceover.src is not None:
            need(f"scenes[{i}].voiceover.src", scene.voiceover.src, "audio")
        for j, layer in enumerate(scene.layers):
            if isinstance(layer, models.VideoLayer):
                need(f"scenes[{i}].layers[{j}].src", layer.src, "video")
    if problems:
        raise errors.AssetError(f"{len(problems)} asset problem(s)", problems)
