"""The Remotion engine's errors: each names the step that failed and its cause.

    framefarm.errors.DocumentError (exit code 2: the project, its code or its props)
     ├── ProjectError        not a Remotion project, or one framefarm refuses to read
     ├── InstallError        ``npm ci`` failed for a reason of the project's (a lockfile
     │                       out of step with package.json, a version that does not exist)
     ├── BundleError         the bundle failed: a compile error in the project's code
     ├── CompositionError    no composition of that id (the available ones are listed)
     ├── PropsError          the props fail the composition's schema (path: message each)
     └── OverMemory          it used more memory than the sandbox allows
    framefarm.errors.RenderError (exit code 1: a valid project failed to render)
     ├── ToolMissing         Node.js, npm or Chromium is not on this machine
     ├── InstallUnavailable  ``npm ci`` could not reach the registry (worth a retry)
     └── BridgeError         Remotion failed while rendering (Chromium, a timeout)
"""

from __future__ import annotations

from collections.abc import Sequence

from framefarm import errors


class _Step:
    step = ""

    def _message(self, cause: str) -> str:
        return f"{self.step}: {cause}" if self.step else cause


class ProjectError(_Step, errors.DocumentError):
    """The folder is not a Remotion project framefarm can render."""

    step = "project"

    def __init__(self, cause: str, problems: Sequence[str] = ()) -> None:
        super().__init__(self._message(cause), problems)


class InstallError(_Step, errors.DocumentError):
    """``npm ci`` refused the project's dependencies (its message follows)."""

    step = "npm install failed"

    def __init__(self, cause: str) -> None:
        super().__init__(self._message(cause))


class BundleError(_Step, errors.DocumentError):
    """The project's code did not compile (the bundler's message, with file:line)."""

    step = "bundle failed"

    def __init__(self, cause: str) -> None:
        super().__init__(self._message(cause))


class CompositionError(_Step, errors.DocumentError):
    """No composition of that id; the message lists the ones there are."""

    def __init__(self, cause: str, available: Sequence[str] = ()) -> None:
        self.available = list(available)
        super().__init__(cause)


class PropsError(_Step, errors.DocumentError):
    """The input props fail the composition's schema: one problem per field path."""

    def __init__(self, cause: str, problems: Sequence[str] = ()) -> None:
        super().__init__(cause, problems)


class OverMemory(_Step, errors.DocumentError):
    """The project's processes outgrew the sandbox's memory limit (every node would stop
    it alike, so it is not retried)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)


class ToolMissing(_Step, errors.RenderError):
    """A program the engine needs is not on this machine."""


class InstallUnavailable(_Step, errors.RenderError):
    """``npm ci`` could not fetch the packages (the network or the registry)."""

    step = "npm install failed"

    def __init__(self, cause: str) -> None:
        super().__init__(self._message(cause))


class BridgeError(_Step, errors.RenderError):
    """Remotion failed in a step of a valid project (its message follows)."""

    def __init__(self, step: str, cause: str) -> None:
        self.step = step
        super().__init__(self._message(cause))
