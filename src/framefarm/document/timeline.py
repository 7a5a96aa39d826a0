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

    def seconds(self, frame: int) -> float:
        return frame / self.fps

    def scenes_at(self, frame: int) -> list[SceneSpan]:
        """The one scene showing at ``frame``, or two during a transition (outgoing first)."""
        return [s for s in self.scenes if s.start <= frame < s.end]

    def key_frame(self, scene_index: int) -> int:
        """A scene's representative frame: its middle, outside any transition."""
        if not 0 <= scene_index < len(self.scenes):
            raise errors.DocumentError(
                f"--scene {scene_index}: the document has scenes 0..{len(self.scenes) - 1}"
            )
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
    info = project.media[project.asset(scene.voiceover.src)]
    if info.audio is None:
        raise errors.AssetError(f"scenes[{index}].voiceover.src: has no audio stream")
    voice = (info.audio.duration or info.duration) + scene.voiceover.delay
    return min(max(voice + scene.auto.padding, scene.auto.min), scene.auto.max)


def build(project: loader.Project) -> Timeline:
    doc = project.document
    width, height = loader.output_size(doc.output)
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
        if scene.voiceover:
            need(f"scenes[{i}].voiceover.src", scene.voiceover.src, "audio")
        for j, layer in enumerate(scene.layers):
            if isinstance(layer, models.VideoLayer):
                need(f"scenes[{i}].layers[{j}].src", layer.src, "video")
    if problems:
        raise errors.AssetError(f"{len(problems)} asset problem(s)", problems)
