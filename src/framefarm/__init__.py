"""framefarm: declarative video documents rendered to finished video.

    import framefarm
    framefarm.render("story.json", "story.mp4", data={"hero_name": "Ada"})
"""

from __future__ import annotations

from framefarm.engine import Progress, RenderResult, load_timeline, render, snapshot
from framefarm.errors import DocumentError, FramefarmError, RenderError

__all__ = [
    "DocumentError",
    "FramefarmError",
    "Progress",
    "RenderError",
    "RenderResult",
    "load_timeline",
    "render",
    "snapshot",
]
__version__ = "0.1.0"
