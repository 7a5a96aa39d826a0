"""Pixel values are authored for the document's own output size. Rendering it at another
size (``--size 720p``) scales every pixel value by the same factor, so the picture is the
same, only smaller or larger."""

from __future__ import annotations

from typing import Any, TypeVar

from framefarm.document import models

_Scaled = TypeVar("_Scaled", bound=models.LayerBase)


def _length(value: float | str | None, k: float) -> float | str | None:
    return value * k if isinstance(value, float | int) else value


def _style(style: models.TextStyle, k: float) -> models.TextStyle:
    update: dict[str, Any] = {"size": style.size * k, "stroke_width": style.stroke_width * k}
    if style.shadow:
        update["shadow"] = style.shadow.model_copy(update={
            "offset": (style.shadow.offset[0] * k, style.shadow.offset[1] * k),
            "blur": style.shadow.blur * k})
    if style.background:
        update["background"] = style.background.model_copy(update={
            "padding": style.background.padding * k, "radius": style.background.radius * k})
    return style.model_copy(update=update)


def _layer(layer: _Scaled, k: float) -> _Scaled:
    update: dict[str, Any] = {name: _length(getattr(layer, name), k)
                              for name in ("x", "y", "width", "height")}
    keyframes = dict(layer.keyframes)
    for prop in ("x", "y"):
        if prop in keyframes:
            keyframes[prop] = [kf.model_copy(update={"value": kf.value * k})
                               for kf in keyframes[prop]]
    update["keyframes"] = keyframes
    if isinstance(layer, models.TextLayer | models.CaptionsLayer | models.SpokenCaptions):
        update["style"] = _style(layer.style, k)
    if isinstance(layer, models.ShapeLayer):
        update["radius"] = layer.radius * k
    return layer.model_copy(update=update)


def _scene(scene: models.Scene, k: float) -> models.Scene:
    update: dict[str, Any] = {"layers": [_layer(layer, k) for layer in scene.layers]}
    if scene.captions is not None:
        update["captions"] = _layer(scene.captions, k)
    return scene.model_copy(update=update)


def scale(doc: models.Document, k: float) -> models.Document:
    """The document with every pixel value multiplied by ``k``."""
    if k == 1.0:
        return doc
    scenes = [_scene(scene, k) for scene in doc.scenes]
    return doc.model_copy(update={"scenes": scenes})
