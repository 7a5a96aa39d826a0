"""Code templates: renders of a project's code (a Remotion composition) instead of a JSON
document.

The submission is a small document that names the engine, the composition and its input
props; the project's files (package.json, the lockfile, ``src/``, ``public/``) are the
source, uploaded as assets. A template's ``{{placeholders}}`` fill the props like any
document's. The server has no Node.js or browser to run the code, so what it checks is
the request's shape and the project's layout; the rest (installing, bundling, the
composition's size, rate and length, the props against its schema) is the job's first
task, ``prepare``, on a node that has the engine, which plans the job's other tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from framefarm import errors
from framefarm.application.queue import TaskPlan
from framefarm.engines.remotion.project import ENTRY_POINTS
from framefarm.queue.states import TaskKind

ENGINES = ("remotion",)
OUTPUT_FORMATS = ("mp4", "webm", "mov")


class CodeRender(pydantic.BaseModel):
    """What a code template's document holds once its placeholders are filled."""

    model_config = pydantic.ConfigDict(extra="forbid")

    engine: Literal["remotion"]
    composition: str = pydantic.Field(min_length=1, max_length=200,
                                      pattern=r"^[A-Za-z0-9\-_\u00C0-\uFFFF]+$")
    props: dict[str, Any] = pydantic.Field(default_factory=dict)


def engine_of(document: Mapping[str, Any]) -> str:
    """The engine a filled document asks for (``framefarm`` when it names none)."""
    found = document.get("engine", "framefarm")
    return found if isinstance(found, str) else "framefarm"


def check(document: Mapping[str, Any], assets: Mapping[str, str],
          options: Mapping[str, Any]) -> CodeRender:
    """The request, refused with what is wrong and where when it cannot be rendered."""
    try:
        spec = CodeRender.model_validate(dict(document))
    except pydantic.ValidationError as exc:
        problems = [f"document.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in exc.errors()]
        raise errors.DocumentError("not a code template's render", problems) from None
    if not assets:
        raise errors.DocumentError(
            "a Remotion render needs a project_id whose files are the Remotion project "
            "(package.json, package-lock.json, src/...)")
    missing = [name for name in ("package.json", "package-lock.json") if name not in assets]
    if not any(name in assets for name in ENTRY_POINTS):
        missing.append(f"an entry point ({' or '.join(ENTRY_POINTS)})")
    if missing:
        raise errors.DocumentError(f"the project is not a Remotion project: it lacks "
                                   f"{', '.join(missing)}")
    fmt = options.get("format")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise errors.DocumentError(f"options.format: a Remotion render makes "
                                   f"{', '.join(OUTPUT_FORMATS)}, not {fmt}")
    if options.get("fps") is not None:
        raise errors.DocumentError("options.fps: Remotion renders a composition at its own "
                                   "rate; leave fps out")
    return spec


def plan() -> list[TaskPlan]:
    """A code template's job starts as one task: prepare, which plans the others."""
    return [TaskPlan(TaskKind.PREPARE, 0, 0, 0)]
