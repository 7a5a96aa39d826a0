"""Engines: what turns a job's source into video, behind one seam.

framefarm's own engine renders JSON documents (``framefarm.engine``); others, such as
:mod:`framefarm.engines.remotion`, render code. The farm (task graph, leases, retries,
progress, previews, exports, webhooks) is the same for every engine; an engine supplies
the five steps of :class:`Engine`, each on a :class:`Source` (what to render) and
:class:`Settings` (how):

- ``validate``: refuse a source that cannot render, before any work (a DocumentError
  naming the step and the cause);
- ``describe``: size, fps, frame count and default props (what the farm plans chunks
  from);
- ``render_range``: frames [a, b) to a video-only part that joins the others by stream
  copy (each part starts on a keyframe, with identical encoder settings);
- ``render_audio``: the sound of a frame range (the whole video, once) as one file;
- ``snapshot``: one frame as PNG.

An engine also says whether this machine can run it (``available``), which is what a
node reports. Nothing here knows the service: the engine layer imports nothing from it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FramesCallback = Callable[[int], None]
"""Frames done so far in the range being rendered."""
FrameCallback = Callable[[int, npt.NDArray[np.uint8]], None]
"""Sees frame ``n`` as RGB pixels (height x width x 3) as it is encoded (previews)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """What to render: a project folder (or document file), the composition in it (None
    where the source has one), and the input props (a template's data)."""

    path: Path
    composition: str | None = None
    props: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to render: the names mean what they mean for JSON documents
    (``framefarm.formats``, the quality table in ``framefarm.compiler.encode``)."""

    quality: str = "high"
    format: str = "mp4"
    scale: float = 1.0  # output size = the source's size times this
    threads: int | None = None  # the node's thread budget (None: every core)
    timeout: float | None = None  # seconds a step may take


@dataclasses.dataclass(frozen=True)
class Description:
    """What ``describe`` tells: the output's size at scale 1, its rate and length, and
    the props (defaults, and the ones the render will use)."""

    id: str
    width: int
    height: int
    fps: int
    frames: int
    default_props: Mapping[str, Any]
    props: Mapping[str, Any]
    has_schema: bool | None = None  # props checked against a declared schema (None: unknown)

    @property
    def duration(self) -> float:
        return self.frames / self.fps


class Engine(Protocol):
    """The seam every engine fills (see the module's docstring)."""

    name: str

    def available(self) -> list[str]:
        """Why this machine cannot run the engine (empty: it can)."""
        ...

    def validate(self, source: Source) -> Description:
        """Check the source and its props; raise a DocumentError naming step and cause."""
        ...

    def describe(self, source: Source) -> Description:
        ...

    def render_range(self, source: Source, frames: tuple[int, int], output: Path,
                     settings: Settings, *, on_frames: FramesCallback | None = None,
                     on_frame: FrameCallback | None = None,
                     cancel: threading.Event | None = None) -> None:
        ...

    def render_audio(self, source: Source, output: Path, settings: Settings, *,
                     frames: tuple[int, int] | None = None,
                     cancel: threading.Event | None = None) -> None:
        ...

    def snapshot(self, source: Source, frame: int, output: Path, settings: Settings, *,
                 cancel: threading.Event | None = None) -> None:
        ...
