"""Every error framefarm raises on purpose.

    FramefarmError
     ├── DocumentError        the document (or its data, or its assets) is invalid: exit code 2
     │    ├── TemplateError   a placeholder without a value, an unknown block
     │    ├── AssetError      an asset is missing, unreadable, not media, or outside the project
     │    └── FrameSelectionError  a frame, time, scene or frame range outside the video
     └── RenderError          a valid document failed to render: exit code 1
          ├── FfmpegError     FFmpeg exited with an error (carries the tail of its stderr)
          ├── RenderTimeout   a render ran past its time limit
          └── RenderCancelled the render was cancelled

Each message is written for the user: it says what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Sequence


class FramefarmError(Exception):
    """framefarm failed."""

    exit_code = 1


class DocumentError(FramefarmError):
    """The video document is invalid."""

    exit_code = 2

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems) or [message]
        super().__init__(message)

    def __str__(self) -> str:
        head = super().__str__()
        if len(self.problems) == 1 and self.problems[0] == head:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class TemplateError(DocumentError):
    """A template placeholder or block could not be resolved."""


class AssetError(DocumentError):
    """An asset is missing, unreadable, not a media file, or outside the project folder."""


class FrameSelectionError(DocumentError):
    """A frame, time, scene or frame range that is not in the video.

    ``field`` names the selector that failed ("frame", "at", "scene" or "frames") and
    ``value`` is what was given, as text. The message names no flag or field, so each front
    end adds its own: :meth:`labelled` gives ``"--at 9.0: the video lasts 3.50 s"``.
    """

    def __init__(self, field: str, value: str, problem: str, reason: str,
                 label: str | None = None) -> None:
        self.field = field
        self.value = value
        self.problem = problem  # what is wrong with the value, e.g. "9.0 s is past the end"
        self.reason = reason  # what the video has, e.g. "the video lasts 3.50 s"
        self.label = label
        super().__init__(f"{label} {value}: {reason}" if label else f"{problem}: {reason}")

    def labelled(self, label: str) -> FrameSelectionError:
        """The same error worded for a front end: ``<label> <value>: <reason>``."""
        return FrameSelectionError(self.field, self.value, self.problem, self.reason, label)

    def __reduce__(self) -> tuple[type[FrameSelectionError], tuple[str, str, str, str, str | None]]:
        # Exceptions pickle as cls(*args); this one's args are the message, not its fields.
        return FrameSelectionError, (self.field, self.value, self.problem, self.reason, self.label)


class RenderError(FramefarmError):
    """The render failed."""

    exit_code = 1


class FfmpegError(RenderError):
    """FFmpeg failed; the message ends with the last lines it printed."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        self.stderr_tail = stderr_tail
        full = message if not stderr_tail else f"{message}\nFFmpeg said:\n{stderr_tail}"
        super().__init__(full)


class RenderTimeout(RenderError):
    """The render ran past its time limit and was stopped."""


class RenderCancelled(RenderError):
    """The render was cancelled."""
