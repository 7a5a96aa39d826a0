"""The compositor: frame number -> RGB pixels, a pure function of the timeline.

Nothing here depends on which frame was drawn before, which is what makes any frame
range render exactly like the same frames of a full render. Scenes are prepared (stills
decoded, text rasterised) the first time one of their frames is drawn and released when
the render moves past them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framefarm.compositor import layers, text, transitions
from framefarm.compositor.bitmap import Array, parse_color
from framefarm.document import models
from framefarm.document.timeline import SceneSpan, Timeline


class _Context:
    def __init__(self, timeline: Timeline) -> None:
        self.size = (timeline.width, timeline.height)
        self.fps = timeline.fps
        self._project = timeline.project
        declared = {(f.family, f.weight): timeline.project.asset(f.src)
                    for f in timeline.project.document.fonts}
        self.fonts = text.FontBook(declared)

    def asset(self, src: str) -> Path:
        return self._project.asset(src)

    def duration(self, src: str) -> float | None:
        info = self._project.media.get(self._project.asset(src))
        return info.duration if info else None


class _SceneRenderer:
    def __init__(self, span: SceneSpan, ctx: _Context, default_bg: str) -> None:
        self.span = span
        scene = span.scene
        self.duration = span.frames / ctx.fps
        r, g, b, _ = parse_color(scene.background or default_bg)
        # Filled once: copying a frame is ~20x faster than broadcasting a colour into it.
        self.background = np.empty((ctx.size[1], ctx.size[0], 3), np.uint8)
        self.background[:] = (r, g, b)
        self.layers: list[layers.LayerRenderer] = []
        if scene.background_image:
            backdrop = models.ImageLayer(type="image", src=scene.background_image, fit="cover")
            self.layers.append(layers.create(backdrop, ctx, self.duration))
        self.layers += [layers.create(layer, ctx, self.duration) for layer in scene.layers]

    def render(self, frame: int, fps: int) -> Array:
        t = (frame - self.span.start) / fps
        # A still covering the whole frame overwrites every pixel: no background under it.
        covered = bool(self.layers) and self.layers[0].covers(t)
        canvas = np.empty_like(self.background) if covered else self.background.copy()
        for layer in self.layers:
            layer.draw(canvas, t)
        return canvas

    def close(self) -> None:
        for layer in self.layers:
            layer.close()


class Compositor:
    """Draws frames of a timeline. Use as a context manager so decoders are closed."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._ctx = _Context(timeline)
        self._scenes: dict[int, _SceneRenderer] = {}

    def _scene(self, span: SceneSpan) -> _SceneRenderer:
        renderer = self._scenes.get(span.index)
        if renderer is None:
            renderer = _SceneRenderer(span, self._ctx, self.timeline.output.background)
            self._scenes[span.index] = renderer
        return renderer

    def _release_before(self, frame: int) -> None:
        for index in [i for i, r in self._scenes.items() if r.span.end <= frame]:
            self._scenes.pop(index).close()

    def render(self, frame: int) -> Array:
        """The RGB pixels of ``frame`` (height x width x 3, uint8)."""
        if not 0 <= frame < self.timeline.total_frames:
            raise IndexError(f"frame {frame} is outside 0..{self.timeline.total_frames - 1}")
        self._release_before(frame)
        spans = self.timeline.scenes_at(frame)
        fps = self.timeline.fps
        current = self._scene(spans[0]).render(frame, fps)
        if len(spans) == 1:
            return current
        outgoing, incoming = spans[0], spans[1]
        assert outgoing.transition is not None
        p = transitions.progress(frame, incoming.start, outgoing.transition_frames)
        following = self._scene(incoming).render(frame, fps)
        return transitions.blend(outgoing.transition.type, current, following, p)

    def close(self) -> None:
        for renderer in self._scenes.values():
            renderer.close()
        self._scenes.clear()

    def __enter__(self) -> Compositor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
