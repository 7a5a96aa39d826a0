"""The command line for Remotion projects: what ``framefarm render``, ``snapshot`` and
``compositions`` do when their path is a folder with a package.json
(``framefarm.engines.remotion``). Kept apart from ``cli.py``, which branches here early;
the exit codes and messages are the same (``cli._fail``)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import typer

from framefarm import cli, errors


def is_project(path: Path) -> bool:
    from framefarm.engines.remotion import project

    return project.is_project(path)


def props(text: str | None, data: Path | None) -> dict[str, Any]:
    """The input props: ``--props`` (JSON text) or ``--data`` (a JSON file), not both."""
    if text is not None and data is not None:
        raise errors.DocumentError("give the props once: --props JSON or --data FILE")
    if data is not None:
        return cli._data(data) or {}
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise errors.DocumentError(f"--props: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise errors.DocumentError("--props: expected a JSON object of name -> value")
    return value


def render(project: Path, output: Path, *, composition: str | None, props_text: str | None,
           data: Path | None, quality: str | None, size: str | None, fps: int | None,
           format: str | None, frames: str | None, chunks: int | None, quiet: bool,
           captions: Path | None) -> None:
    from framefarm import engine
    from framefarm.engines.remotion import local

    cancel = threading.Event()
    try:
        with cli._terminate_like_interrupt():
            if captions is not None:
                raise errors.DocumentError("--captions: a Remotion project's captions are "
                                           "its own; framefarm writes none for it")
            values = props(props_text, data)
            with cli._progress_bar(quiet) as bar:
                task = bar.add_task("prepare", total=None, speed="")

                def show(p: engine.Progress) -> None:
                    bar.update(task, description=p.step, total=p.frames_total or None,
                               completed=p.frames_done, speed=f"{p.fps:5.1f} fps")

                result = local.render(project, output, composition=composition, props=values,
                                      quality=quality, size=size, fps=fps, format=format,
                                      frames=cli._frames(frames), chunks=chunks,
                                      on_progress=show, cancel=cancel)
    except KeyboardInterrupt as exc:
        cancel.set()
        cli.err.print("[yellow]cancelled[/]; no output was written")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except Exception as exc:
        raise cli._fail(exc) from None
    cli.out.print(f"[green]wrote[/] {result.output}  {result.width}x{result.height} "
                  f"{result.fps} fps  {result.duration:.2f} s  {result.frames} frames  "
                  f"in {result.elapsed:.1f} s")


def snapshot(project: Path, output: Path, *, composition: str | None, props_text: str | None,
             data: Path | None, frame: int | None, at: float | None, scene: int | None,
             size: str | None) -> None:
    from framefarm.engines.remotion import local

    try:
        with cli._terminate_like_interrupt():
            if scene is not None:
                raise errors.DocumentError("--scene: a Remotion composition has no scenes; "
                                           "use --frame or --at")
            n = local.snapshot(project, output, composition=composition,
                               props=props(props_text, data), frame=frame, at=at, size=size)
    except KeyboardInterrupt as exc:
        cli.err.print("[yellow]cancelled[/]; no output was written")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except Exception as exc:
        raise cli._fail(exc) from None
    cli.out.print(f"[green]wrote[/] {output} (frame {n})")


def compositions(project: Path, *, as_json: bool) -> None:
    from framefarm.engines.remotion import local

    try:
        with cli._terminate_like_interrupt():
            if not is_project(project):
                raise errors.DocumentError(f"{project}: not a Remotion project (a folder with "
                                           "package.json)")
            with cli.err.status("preparing the project (npm ci and bundle, once per version)"):
                found = local.compositions(project)
    except KeyboardInterrupt as exc:
        cli.err.print("[yellow]cancelled[/]")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except Exception as exc:
        raise cli._fail(exc) from None
    if as_json:
        cli.out.print_json(json.dumps([
            {"id": c.id, "width": c.width, "height": c.height, "fps": c.fps,
             "durationInFrames": c.frames, "defaultProps": c.default_props,
             "schema": c.has_schema} for c in found]))
        return
    for c in found:
        schema = "zod schema" if c.has_schema else "no schema"
        cli.out.print(f"{c.id}  {c.width}x{c.height}  {c.fps} fps  {c.frames} frames "
                      f"({c.duration:.2f} s)  {schema}  props {json.dumps(c.default_props)}",
                      soft_wrap=True, highlight=False, markup=False)
