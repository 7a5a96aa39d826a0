"""Every error framefarm raises on purpose.

    FramefarmError
     ├── DocumentError        the document (or its data, or its assets) is invalid: exit code 2
     │    ├── TemplateError   a placeholder without a value, an unknown block
     │    └── AssetError      an asset is missing, unreadable, not media, or outside the project
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
