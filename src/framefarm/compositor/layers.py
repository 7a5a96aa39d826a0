"""One renderer per layer type, and the registry that picks them.

A renderer loads what it needs once (decode a still, rasterise text) in its constructor,
then ``draw(canvas, t)`` puts the layer on the canvas at scene time ``t`` seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import webvtt
from PIL import Image, ImageDraw

from framefarm import errors
from framefarm.compositor import bitmap, placement, text
from framefarm.compositor.bitmap import Array, Bitmap, Matrix
from framefarm.compositor.video import VideoReader
from framefarm.document import models


class Context(Protocol):
    """What renderers need from the scene: the frame size, assets and fonts."""

    size: tuple[int, int]
    fps: int
    fonts: text.FontBook

    def asset(self, src: str) -> Path: ...

    def duration(self, src: str) -> float | None:
        """A media asset's length in seconds, if known."""


class LayerRenderer(Protocol):
    def draw(self, canvas: Array, t: float) -> None: ...

    def covers(self, t: float) -> bool:
        """Whether ``draw`` at ``t`` writes every pixel of the canvas, opaquely."""

    def close(self) -> None: ...


class Base:
    """Timing and placement shared by all layers."""

    def __init__(self, layer: models.LayerBase, ctx: Context, scene_duration: float,
                 natural: tuple[float, float] | None = None) -> None:
        self.layer = layer
        self.ctx = ctx
        self.start = layer.start
        self.end = min(layer.end if layer.end is not None else scene_duration, scene_duration)
        self.box = placement.place(layer, ctx.size, natural or (float(ctx.size[0]),
                                                                 float(ctx.size[1])))

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    def progress(self, t: float) -> float:
        span = self.end - self.start
        return (t - self.start) / span if span > 0 else 1.0

    def state(self, t: float, span: tuple[float, float] | None = None) -> placement.State:
        return placement.state(self.layer, self.box, self.ctx.size, t, span or (self.start,
                                                                                  self.end))

    def covers(self, t: float) -> bool:
        return False

    def close(self) -> None:
        return None


def _box_size(box: placement.Box) -> tuple[int, int]:
    return max(1, round(box[2])), max(1, round(box[3]))


def _draw_content(canvas: Array, source: Bitmap, content: Matrix, st: placement.State,
                  box: placement.Box) -> None:
    """Draw content (mapped into box-local coordinates by ``content``), clipped to the box."""
    if st.upright:
        full = bitmap.compose(st.matrix, content)
        # Clip to the box as placed on the canvas.
        corners = np.array([[0, 0, 1], [box[2], box[3], 1]], float) @ st.matrix.T
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(canvas.shape[1], x1), min(canvas.shape[0], y1)
        if x1 > x0 and y1 > y0:
            local = full.copy()
            local[0, 2] -= x0
            local[1, 2] -= y0
            bitmap.draw(canvas[y0:y1, x0:x1], source, local, st.opacity)
        return
    # Rotated: render the box first (transparent where the content does not reach), then
    # rotate that.
    w, h = _box_size(box)
    pixels = source.pixels
    if source.opaque:
        pixels = bitmap.as_u8(cv2.cvtColor(pixels, cv2.COLOR_RGB2RGBA))
    boxed = bitmap.warp_rgba(pixels, content, (w, h))
    bitmap.draw(canvas, Bitmap(boxed), st.matrix, st.opacity)


def _covers(size: tuple[int, int], source: Bitmap, content: Matrix, st: placement.State,
            box: placement.Box) -> bool:
    """Whether :func:`_draw_content` writes every canvas pixel: an opaque, upright source at
    full opacity whose box and content both reach past every edge of the canvas (the
    region drawn is their bounds rounded outwards, clipped to the canvas)."""
    if not (source.opaque and st.upright and st.opacity >= 1.0):
        return False
    width, height = size
    shapes = ((st.matrix, (box[2], box[3])),
              (bitmap.compose(st.matrix, content), (source.width, source.height)))
    for matrix, (w, h) in shapes:
        corners = np.array([[0, 0, 1], [w, h, 1]], float) @ matrix.T
        (left, top), (right, bottom) = corners.min(axis=0), corners.max(axis=0)
        if (math.floor(left) > 0 or math.floor(top) > 0 or math.ceil(right) < width
                or math.ceil(bottom) < height):
            return False
    return True


def _max_side(box: placement.Box, layer: models.LayerBase, zooms: float) -> float:
    scale = max([layer.scale] + [k.value for k in layer.keyframes.get("scale", [])])
    return max(box[2], box[3]) * zooms * max(1.0, scale)


class ImageRenderer(Base):
    def __init__(self, layer: models.ImageLayer, ctx: Context, scene_duration: float) -> None:
        super().__init__(layer, ctx, scene_duration)
        self.model = layer
        zmax = max(layer.motion.zoom) if layer.motion else 1.0
        # Sources bigger than needed are shrunk once; cover can need up to the aspect ratio
        # difference more, hence the factor 2 bound on the longer side.
        self.bitmap = bitmap.load_image(ctx.asset(layer.src), _max_side(self.box, layer, zmax) * 2)

    def _content(self, t: float) -> Matrix:
        return placement.ken_burns((self.bitmap.width, self.bitmap.height),
                                   (self.box[2], self.box[3]), self.model.fit,
                                   self.model.motion, self.progress(t))

    def covers(self, t: float) -> bool:
        return (bitmap.FAST_PATHS and self.active(t)
                and _covers(self.ctx.size, self.bitmap, self._content(t), self.state(t),
                            self.box))

    def draw(self, canvas: Array, t: float) -> None:
        if not self.active(t):
            return
        _draw_content(canvas, self.bitmap, self._content(t), self.state(t), self.box)


class SlidesRenderer(Base):
    """Images in turn over the layer's time; neighbours overlap by ``crossfade``."""

    def __init__(self, layer: models.SlidesLayer, ctx: Context, scene_duration: float) -> None:
        super().__init__(layer, ctx, scene_duration)
        self.model = layer
        n = len(layer.images)
        span = self.end - self.start
        self.fade = min(layer.crossfade, span / (2 * n)) if n > 1 else 0.0
        self.slot = (span + (n - 1) * self.fade) / n
        self.bitmaps = [
            bitmap.load_image(ctx.asset(s.src), _max_side(
                self.box, layer, max(s.motion.zoom) if s.motion else 1.0) * 2)
            for s in layer.images
        ]

    def draw(self, canvas: Array, t: float) -> None:
        if not self.active(t):
            return
        local = t - self.start
        st = self.state(t)
        for i, (slide, bm) in enumerate(zip(self.model.images, self.bitmaps, strict=True)):
            begin = i * (self.slot - self.fade)
            if not begin <= local < begin + self.slot:
                continue
            weight = 1.0 if i == 0 or self.fade == 0 else min(1.0, (local - begin) / self.fade)
            content = placement.ken_burns((bm.width, bm.height), (self.box[2], self.box[3]),
                                          self.model.fit, slide.motion,
                                          (local - begin) / self.slot)
            faded = placement.State(st.matrix, st.opacity * weight, st.upright)
            _draw_content(canvas, bm, content, faded, self.box)


class VideoRenderer(Base):
    def __init__(self, layer: models.VideoLayer, ctx: Context, scene_duration: float) -> None:
        super().__init__(layer, ctx, scene_duration)
        self.model = layer
        limit = _max_side(self.box, layer, 1.0)
        self.reader = VideoReader(ctx.asset(layer.src), (round(limit), round(limit)))

    def source_time(self, t: float, clip_duration: float | None) -> float:
        offset = t - self.start
        length = None
        if self.model.trim_end is not None:
            length = self.model.trim_end - self.model.trim_start
        elif clip_duration:
            length = clip_duration - self.model.trim_start
        if length and length > 0:
            # In whole microseconds: 1.2 % 0.4 must wrap to 0, not to a hair below the end
            # of the trim (as float modulo does).
            us, span = round(offset * 1e6), round(length * 1e6)
            # Past its end a clip holds its last frame inside the trim.
            offset = (us % span if self.model.loop else min(us, span - 1000)) / 1e6
        return self.model.trim_start + offset

    def draw(self, canvas: Array, t: float) -> None:
        if not self.active(t):
            return
        clip = self.ctx.duration(self.model.src)
        frame = self.reader.frame_at(self.source_time(t, clip))
        source = Bitmap(frame)
        content = bitmap.fit_matrix(source.width, source.height, (0, 0, self.box[2], self.box[3]),
                                    self.model.fit)
        _draw_content(canvas, source, content, self.state(t), self.box)

    def close(self) -> None:
        self.reader.close()


def _text_box(layer: models.LayerBase, style: models.TextStyle, sample: str,
              ctx: Context) -> tuple[float, float]:
    fw, fh = ctx.size
    width = placement.length(layer.width, fw, fw * 0.9)
    if layer.height is not None:
        return width, placement.length(layer.height, fh, fh)
    return text.measure(sample, style, ctx.fonts, width)


class TextRenderer(Base):
    """Rasterised the first time it shows (a scene of spoken captions has a layer per word;
    most of them never show in a given chunk); its font is checked at once."""

    def __init__(self, layer: models.TextLayer, ctx: Context, scene_duration: float) -> None:
        natural = _text_box(layer, layer.style, layer.text, ctx)
        super().__init__(layer, ctx, scene_duration, natural)
        self.model = layer
        text.check(layer.text, layer.style, ctx.fonts)
        self._sprite: tuple[Bitmap, Matrix] | None = None

    def sprite(self) -> tuple[Bitmap, Matrix]:
        if self._sprite is None:
            rendered = text.render(self.model.text, self.model.style, self.ctx.fonts,
                                   _box_size(self.box), self.model.highlight)
            self._sprite = bitmap.trimmed(bitmap.from_pil(rendered.image),
                                          bitmap.affine(1, 1, -rendered.margin, -rendered.margin))
        return self._sprite

    def draw(self, canvas: Array, t: float) -> None:
        if self.active(t):
            st = self.state(t)
            sprite, offset = self.sprite()
            bitmap.draw(canvas, sprite, bitmap.compose(st.matrix, offset), st.opacity)


class ShapeRenderer(Base):
    _SUPERSAMPLE = 4  # shapes are drawn 4x larger and reduced once, for smooth edges

    def __init__(self, layer: models.ShapeLayer, ctx: Context, scene_duration: float) -> None:
        super().__init__(layer, ctx, scene_duration)
        w, h = _box_size(self.box)
        colour = bitmap.parse_color(layer.fill)
        if layer.shape == "rectangle":
            image = Image.new("RGBA", (w, h), colour)
        else:
            k = self._SUPERSAMPLE
            big = Image.new("RGBA", (w * k, h * k), (0, 0, 0, 0))
            draw = ImageDraw.Draw(big)
            if layer.shape == "circle":
                draw.ellipse((0, 0, w * k - 1, h * k - 1), fill=colour)
            else:
                draw.rounded_rectangle((0, 0, w * k - 1, h * k - 1),
                                       radius=layer.radius * k, fill=colour)
            image = big.resize((w, h), Image.Resampling.LANCZOS)
        self.sprite = bitmap.from_pil(image)
        self.fit = bitmap.affine(self.box[2] / w, self.box[3] / h, 0, 0)

    def draw(self, canvas: Array, t: float) -> None:
        if self.active(t):
            st = self.state(t)
            bitmap.draw(canvas, self.sprite, bitmap.compose(st.matrix, self.fit), st.opacity)


_VTT_TIME = re.compile(r"(?:(\d+):)?(\d+):(\d+)[.,](\d+)")


def _cue_seconds(stamp: str) -> float:
    m = _VTT_TIME.fullmatch(stamp.strip())
    if not m:
        raise ValueError(f"bad timestamp {stamp!r}")
    h, mi, s, frac = m.groups()
    return float(int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(frac) / 10 ** len(frac))


def read_cues(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of an SRT or WebVTT file."""
    try:
        reader = webvtt.from_srt if path.suffix.lower() == ".srt" else webvtt.read
        captions = reader(str(path)).captions
        cues = [(_cue_seconds(c.start), _cue_seconds(c.end), c.text) for c in captions]
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError, ValueError,
            UnicodeDecodeError) as exc:
        raise errors.AssetError(f"{path.name}: not a valid caption file ({exc})") from exc
    return [(a, b, t) for a, b, t in cues if b > a and t.strip()]


class CaptionsRenderer(Base):
    """Each cue is rasterised the first time it shows; animations play per cue."""

    def __init__(self, layer: models.CaptionsLayer, ctx: Context, scene_duration: float) -> None:
        self.cues = read_cues(ctx.asset(layer.src))
        longest = max((c[2] for c in self.cues), key=len, default=" ")
        natural = _text_box(layer, layer.style, longest, ctx)
        if layer.position is None and layer.y is None:
            layer = layer.model_copy(update={"position": "bottom"})
        super().__init__(layer, ctx, scene_duration, natural)
        self.model = layer
        self._sprites: dict[int, tuple[Bitmap, Matrix]] = {}

    def draw(self, canvas: Array, t: float) -> None:
        if not self.active(t):
            return
        local = t - self.start
        for i, (a, b, words) in enumerate(self.cues):
            if not a <= local < b:
                continue
            if i not in self._sprites:
                rendered = text.render(words, self.model.style, self.ctx.fonts,
                                       _box_size(self.box))
                self._sprites[i] = bitmap.trimmed(
                    bitmap.from_pil(rendered.image),
                    bitmap.affine(1, 1, -rendered.margin, -rendered.margin))
            sprite, offset = self._sprites[i]
            st = self.state(t, (self.start + a, min(self.start + b, self.end)))
            bitmap.draw(canvas, sprite, bitmap.compose(st.matrix, offset), st.opacity)


REGISTRY: dict[str, Callable[..., LayerRenderer]] = {
    "image": ImageRenderer,
    "slides": SlidesRenderer,
    "video": VideoRenderer,
    "text": TextRenderer,
    "shape": ShapeRenderer,
    "captions": CaptionsRenderer,
}


def create(layer: models.AnyLayer, ctx: Context, scene_duration: float) -> LayerRenderer:
    return REGISTRY[layer.type](layer, ctx, scene_duration)
