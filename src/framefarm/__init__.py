"""framefarm: declarative video documents rendered to finished video.

    import framefarm
    framefarm.render("story.json", "story.mp4", data={"hero_name": "Ada"})

The engine is imported on first use (PEP 562), so ``framefarm --help`` and the service's
processes do not pay for NumPy, OpenCV and the document models before they need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from framefarm.errors import DocumentError, FramefarmError, RenderError

if TYPE_CHECKING:
    from framefarm.client import Client
    from framefarm.engine import Progress, RenderResult, load_timeline, render, snapshot

__all__ = [
    "Client",
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
_FROM_ENGINE = ("Progress", "RenderResult", "load_timeline", "render", "snapshot")


def __getattr__(name: str) -> Any:
    if name in _FROM_ENGINE:
        return getattr(importlib.import_module("framefarm.engine"), name)
    if name == "Client":  # the render service's client (httpx and the API's models)
        return importlib.import_module("framefarm.client").Client
    raise AttributeError(f"module 'framefarm' has no attribute {name!r}")
