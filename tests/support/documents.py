"""Document builders, and writing a document next to its assets.

The service and fault documents are small (360p, draft quality, a few seconds) so a real
render takes about a second; where a render must last long enough to be interrupted it has
more shapes (``long_doc(seconds, shapes=...)``) rather than more pixels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FPS = 30  # the frame rate of ``output()``


def write_doc(folder: Path, doc: Mapping[str, Any], name: str = "doc.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def small_output(**extra: Any) -> dict[str, Any]:
    """A tiny output block: 160x90, 30 fps, draft."""
    return {"width": 160, "height": 90, "fps": 30, "quality": "draft", **extra}


def output(**extra: Any) -> dict[str, Any]:
    """The service's output block: 360p, ``FPS``, draft."""
    return {"size": "360p", "fps": FPS, "quality": "draft", **extra}


def simple_doc(seconds: float = 1.0, text: str = "hello", **out: Any) -> dict[str, Any]:
    """An inline document without assets: a coloured background, a shape and a title."""
    return {"output": output(**out), "scenes": [{
        "duration": seconds, "background": "#1e3a5f",
        "layers": [
            {"type": "shape", "shape": "circle", "x": 40, "y": 40, "width": 120,
             "height": 120, "fill": "#ff5a00",
             "keyframes": {"x": [{"time": 0, "value": 40}, {"time": seconds, "value": 480}]}},
            {"type": "text", "text": text, "position": "bottom",
             "animation": {"in": "fade", "duration": 0.3}},
        ]}]}


def slideshow_doc() -> dict[str, Any]:
    """Seed 002's narrated slideshow, small: two scenes whose length is their voice-over
    (1.5 s and 1.0 s) plus 0.5 s padding, with slides and a title."""
    def scene(vo: str, images: list[str], title: str) -> dict[str, Any]:
        return {
            "duration": "auto", "auto": {"padding": 0.5, "min": 1.0, "max": 5.0},
            "voiceover": {"src": vo},
            "layers": [
                {"type": "slides", "crossfade": 0.3, "images": [
                    {"src": src, "motion": {"zoom": [1.0, 1.1], "pan": "left"}}
                    for src in images]},
                {"type": "text", "text": title, "position": "bottom",
                 "animation": {"in": "fade", "duration": 0.3}},
            ]}
    return {"output": output(), "scenes": [
        scene("voiceovers/vo1.m4a", ["images/a.jpg", "images/b.jpg"], "One"),
        scene("voiceovers/vo2.m4a", ["images/b.jpg"], "Two"),
    ]}


def long_doc(seconds: float, shapes: int = 4) -> dict[str, Any]:
    """A render with real per-frame work (rotating translucent shapes, a scaled title):
    about 100 frames a second with 4 shapes on one core; more shapes, slower frames, so a
    render can be caught (and hurt) mid-chunk."""
    colors = ["#ff5a00", "#00a0ff", "#40c040", "#c040c0"]
    layers: list[dict[str, Any]] = [
        {"type": "shape", "shape": "rounded", "x": 10 * i, "y": 8 * i, "width": 200,
         "height": 160, "radius": 20, "fill": colors[i % 4], "opacity": 0.7,
         "keyframes": {"x": [{"time": 0, "value": 0}, {"time": seconds, "value": 440}],
                       "rotation": [{"time": 0, "value": 0},
                                    {"time": seconds, "value": 360 + 15 * i}]}}
        for i in range(shapes)]
    layers.append({"type": "text", "text": "framefarm", "position": "center",
                   "keyframes": {"scale": [{"time": 0, "value": 0.5},
                                           {"time": seconds, "value": 1.5}]}})
    return {"output": output(), "scenes": [{"duration": seconds, "background": "#101820",
                                            "layers": layers}]}
