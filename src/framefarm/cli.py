"""The ``framefarm`` command line.

Exit codes: 0 done, 1 the render failed, 2 the document (or its data/assets) is invalid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from framefarm import cli_admin, errors
from framefarm.document import choices

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="framefarm renders declarative video documents into finished video.",
)
err = Console(stderr=True, soft_wrap=True)
out = Console()

DocArg = Annotated[Path, typer.Argument(help="the video document (JSON)", show_default=False)]
DataOpt = Annotated[Path | None, typer.Option("--data", help="JSON values for the template's "
                                              "variables")]
# A Remotion project (a folder with package.json) in place of the document: cli_remotion.py.
CompositionOpt = Annotated[str | None, typer.Option(
    "--composition", help="a Remotion project's composition to render (its id)")]
PropsOpt = Annotated[str | None, typer.Option(
    "--props", help="a Remotion composition's input props as JSON (or --data FILE)")]


def _data(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from framefarm.document import loader

    value = loader.read_json(path, what="data file")
    if not isinstance(value, dict):
        raise errors.DocumentError(f"data file {path}: expected a JSON object of name -> value")
    return value


def _frames(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    try:
        a, b = (int(x) for x in spec.split("-", 1))
    except ValueError:
        raise errors.DocumentError(f"--frames {spec!r}: expected START-END, e.g. 0-90") from None
    return a, b


def _fail(exc: BaseException) -> typer.Exit:
    if isinstance(exc, errors.FrameSelectionError):
        exc = exc.labelled(f"--{exc.field}")  # its fields are named like our options
    if isinstance(exc, errors.FramefarmError):
        label = "invalid" if isinstance(exc, errors.DocumentError) else "failed"
        err.print(f"[bold red]{label}:[/] ", end="")
        err.print(str(exc), markup=False, highlight=False)
        return typer.Exit(exc.exit_code)
    if os.environ.get("FRAMEFARM_DEBUG"):
        raise exc
    err.print(f"[bold red]internal error:[/] {type(exc).__name__}: ", end="")
    err.print(str(exc), markup=False, highlight=False)
    err.print("Set FRAMEFARM_DEBUG=1 to see where it happened.")
    return typer.Exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the work in hand is cancelled and cleaned up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """While a command writes a file, SIGTERM raises :class:`Terminated` in the main
    thread (as SIGINT raises KeyboardInterrupt), so the same cleanup runs. Later SIGTERMs
    are ignored, so that cleanup itself is never cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def render(
    document: DocArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="the video file to write")],
    quality: Annotated[choices.Quality | None, typer.Option(help="quality preset")] = None,
    size: Annotated[choices.SizePreset | None, typer.Option(help="size preset")] = None,
    fps: Annotated[int | None, typer.Option(help="24, 25, 30, 50 or 60")] = None,
    format: Annotated[choices.Format | None, typer.Option(
        "--format", help="default: from the output's suffix")] = None,
    data: DataOpt = None,
    frames: Annotated[str | None, typer.Option(help="only frames START-END (end exclusive)")]
    = None,
    chunks: Annotated[int | None, typer.Option(
        help="render N frame ranges in parallel, then join them (default: the "
        "document's output.chunks, else two on two or more cores for 8 s or more)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    captions: Annotated[Path | None, typer.Option(
        "--captions", help="also write the captions made from spoken voice-overs to this "
        ".srt or .vtt file")] = None,
    composition: CompositionOpt = None,
    props: PropsOpt = None,
) -> None:
    """Render a document (or a Remotion project's composition) to a video file.

    Example: framefarm render examples/slideshow.json -o slideshow.mp4 --quality medium
    """
    from framefarm import cli_remotion, engine

    if cli_remotion.is_project(document):
        return cli_remotion.render(
            document, output, composition=composition, props_text=props, data=data,
            quality=quality, size=size, fps=fps, format=format, frames=frames, chunks=chunks,
            quiet=quiet, captions=captions)
    cancel = threading.Event()
    try:
        with _terminate_like_interrupt():
            engine.check_output(output)
            if captions is not None:
                engine.check_captions_output(captions)
            tl = engine.load_timeline(
                document, data=_data(data), quality=quality, size=size, fps=fps,
                format=engine.output_format(output, format), chunks=chunks)
            with Progress(
                TextColumn("[bold]{task.description:<9}"), BarColumn(), TaskProgressColumn(),
                MofNCompleteColumn(), TextColumn("frames  {task.fields[speed]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=err, disable=quiet, transient=False,
            ) as bar:
                task = bar.add_task("prepare", total=None, speed="")

                def show(p: engine.Progress) -> None:
                    bar.update(task, description=p.step, total=p.frames_total,
                               completed=p.frames_done, speed=f"{p.fps:5.1f} fps")

                result = engine.render(tl, output, frames=_frames(frames), on_progress=show,
                                       cancel=cancel, captions=captions)
    except KeyboardInterrupt as exc:
        cancel.set()
        err.print("[yellow]cancelled[/]; no output was written")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except Exception as exc:
        raise _fail(exc) from None
    out.print(f"[green]wrote[/] {result.output}  {result.width}x{result.height} "
              f"{result.fps} fps  {result.duration:.2f} s  {result.frames} frames  "
              f"in {result.elapsed:.1f} s")
    if captions is not None:
        out.print(f"[green]wrote[/] {captions}  {result.captions} caption(s)")


@app.command()
def snapshot(
    document: DocArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="the image (.png or .jpg)")],
    at: Annotated[float | None, typer.Option(help="time in seconds")] = None,
    frame: Annotated[int | None, typer.Option(help="frame number")] = None,
    scene: Annotated[int | None, typer.Option(help="a scene's key frame (0-based index)")]
    = None,
    size: Annotated[choices.SizePreset | None, typer.Option()] = None,
    data: DataOpt = None,
    composition: CompositionOpt = None,
    props: PropsOpt = None,
) -> None:
    """Render one frame to an image, without rendering what comes before it.

    Example: framefarm snapshot examples/slideshow.json --at 3.5 -o frame.png
    """
    from framefarm import cli_remotion, engine

    if sum(x is not None for x in (at, frame, scene)) > 1:
        err.print("[bold red]invalid:[/] give only one of --at, --frame, --scene")
        raise typer.Exit(2)
    if cli_remotion.is_project(document):
        return cli_remotion.snapshot(document, output, composition=composition,
                                     props_text=props, data=data, frame=frame, at=at,
                                     scene=scene, size=size)
    try:
        with _terminate_like_interrupt():
            n = engine.snapshot(document, output, frame=frame, at=at, scene=scene,
                                data=_data(data), size=size)
    except KeyboardInterrupt as exc:
        err.print("[yellow]cancelled[/]; no output was written")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except Exception as exc:
        raise _fail(exc) from None
    out.print(f"[green]wrote[/] {output} (frame {n})")


@app.command()
def compositions(
    project: Annotated[Path, typer.Argument(help="a Remotion project (a folder with "
                                            "package.json)", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
) -> None:
    """List a Remotion project's compositions: id, size, fps, frames, default props.

    Example: framefarm compositions examples/remotion-card
    """
    from framefarm import cli_remotion

    cli_remotion.compositions(project, as_json=as_json)


@app.command()
def validate(document: DocArg, data: DataOpt = None) -> None:
    """Check a document, its template data and its assets; list every problem.

    Example: framefarm validate examples/story.json --data examples/story.data.json
    """
    from framefarm import engine

    try:
        tl = engine.load_timeline(document, data=_data(data))
    except Exception as exc:
        raise _fail(exc) from None
    out.print(f"[green]valid[/]: {len(tl.scenes)} scenes, {tl.total_frames} frames, "
              f"{tl.duration:.2f} s at {tl.width}x{tl.height} {tl.fps} fps")


@app.command()
def schema() -> None:
    """Print the document's JSON Schema (for editors' autocompletion).

    Example: framefarm schema > framefarm.schema.json
    """
    from framefarm.document import models

    sys.stdout.write(json.dumps(models.Document.model_json_schema(by_alias=True), indent=2))
    sys.stdout.write("\n")


app.add_typer(cli_admin.admin_app, name="admin")  # framefarm admin ...: cli_admin.py


def _settings(data_dir: Path | None, **extra: Any) -> Any:
    from framefarm.settings import Settings

    values = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="default: "
                                                 "FRAMEFARM_DATA_DIR or ./framefarm-data")]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8700,
    workers: Annotated[int | None, typer.Option(help="local render nodes (default: one per "
                                                "core; 0 for none)")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the render service: the HTTP API, the queue, and local render nodes.

    Example: framefarm serve --port 8700 --workers 2
    """
    from framefarm.serve import serve as run_service

    settings = _settings(data_dir, public_url=None if host in ("0.0.0.0", "::") else
                         f"http://{host}:{port}")
    try:
        run_service(settings, host=host, port=port, workers=workers, console=err)
    except Exception as exc:
        raise _fail(exc) from None


@app.command()
def worker(
    server: Annotated[str, typer.Option(help="the API's base URL")],
    token: Annotated[str, typer.Option(help="the enrolment token (FRAMEFARM_ENROLMENT_TOKEN "
                                       "of the server)", envvar="FRAMEFARM_ENROLMENT_TOKEN")],
    name: Annotated[str | None, typer.Option(help="node name (default: host-pid-random)",
                                            envvar="FRAMEFARM_NODE_NAME")] = None,
    workdir: Annotated[Path | None, typer.Option(help="cache and scratch folder")] = None,
    patience: Annotated[float, typer.Option(help="seconds to keep retrying reports while "
                                            "the server is unreachable")] = 300.0,
    hang_seconds: Annotated[float, typer.Option(help="stop and fail a render that makes no "
                                                "progress for this long")] = 300.0,
    poll_seconds: Annotated[float, typer.Option(help="how often an idle node asks for work")]
    = 1.0,
    threads: Annotated[int | None, typer.Option(
        min=1, envvar="FRAMEFARM_NODE_THREADS",
        help="encoder and compositor threads (default: all cores; give each of N nodes on "
        "one machine cores/N)")] = None,
    cpus: Annotated[str | None, typer.Option(
        envvar="FRAMEFARM_NODE_CPUS",
        help="pin the node and its FFmpeg to these CPUs, e.g. 0-3 or 0,2 (default: any)")]
    = None,
    exit_with_parent: Annotated[bool, typer.Option(
        hidden=True, help="stop when the parent process exits (serve's local nodes)")] = False,
) -> None:
    """Run a render node that claims tasks from a framefarm server.

    SIGTERM or Ctrl-C drains the node: it finishes the task in hand, then exits. A second
    one stops it at once (the task is requeued when its lease runs out).

    Example: framefarm worker --server http://10.0.0.5:8700 --token $FRAMEFARM_ENROLMENT_TOKEN
    """
    from framefarm import logs
    from framefarm.worker.agent import Agent

    logs.setup()
    if cpus is not None:
        try:
            wanted, usable = _cpu_list(cpus), os.sched_getaffinity(0)
            if not wanted <= usable:
                raise ValueError(f"CPU {min(wanted - usable)} is not one this process may use "
                                 f"({', '.join(map(str, sorted(usable)))})")
            os.sched_setaffinity(0, wanted)
        except (ValueError, OSError, AttributeError) as exc:  # AttributeError: not Linux
            err.print(f"[red]error:[/] --cpus {cpus!r}: {exc}")
            raise typer.Exit(2) from None
    if threads is not None:
        import cv2

        cv2.setNumThreads(threads)
    agent = Agent(server, token, name=name, workdir=workdir, report_patience=patience,
                  hang_seconds=hang_seconds, poll_seconds=poll_seconds, threads=threads,
                  parent_pid=os.getppid() if exit_with_parent else None)

    def stop(signum: int, _frame: object) -> None:
        if agent.stopping.is_set():
            raise KeyboardInterrupt  # the second signal: stop now
        agent.drain()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        agent.run()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _cpu_list(text: str) -> set[int]:
    """'0-3,6' -> {0, 1, 2, 3, 6}."""
    cpus: set[int] = set()
    for item in text.split(","):
        first, _, last = item.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError("expected CPU numbers and ranges, e.g. 0-3,6")
        cpus.update(range(int(first), int(last or first) + 1))
    if not cpus:
        raise ValueError("no CPUs given")
    return cpus


@app.command()
def migrate(data_dir: DataDirOpt = None) -> None:
    """Create or upgrade the database schema (FRAMEFARM_DATABASE_URL).

    Example: FRAMEFARM_DATABASE_URL=postgresql+psycopg://ff@db/ff framefarm migrate
    """
    from framefarm.db import migrate as migrations

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.db_url)
    out.print(f"[green]database at revision[/] {migrations.current(settings.db_url)}")


# -- the render service, remotely --------------------------------------------------------------


def _progress_bar(quiet: bool) -> Progress:
    """The bar ``render`` shows (step, bar, percent, frames, speed, elapsed, eta), for the
    commands that follow a remote render."""
    return Progress(
        TextColumn("[bold]{task.description:<9}"), BarColumn(), TaskProgressColumn(),
        MofNCompleteColumn(), TextColumn("frames  {task.fields[speed]}"),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=err, disable=quiet, transient=False)


def _asset_name(src: str) -> str:
    """The name an asset is uploaded under: its ``src`` as the document gives it, with
    ``.`` parts and doubled slashes dropped (the server names assets the same way), so
    the server finds it where the document says."""
    return "/".join(p for p in src.replace("\\", "/").split("/") if p not in ("", "."))


def _remote_failure(exc: BaseException) -> typer.Exit:
    """A refusal of the service, worded like the local errors: 422 is invalid (exit 2),
    anything else failed (exit 1)."""
    from framefarm import client

    if isinstance(exc, client.Invalid):
        problems = [p if isinstance(p, str) else f"{p.get('path')}: {p.get('message')}"
                    for p in exc.details if isinstance(p, str | dict)] \
            if isinstance(exc.details, list) else []
        return _fail(errors.DocumentError(exc.message, problems))
    if isinstance(exc, client.ApiError):
        return _fail(errors.RenderError(f"the server refused ({exc.status} {exc.code}): "
                                        f"{exc.message}"))
    return _fail(errors.RenderError(str(exc)))


@app.command()
def submit(
    document: DocArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="the video file to write")],
    server: Annotated[str, typer.Option(help="the render service's base URL",
                                        envvar="FRAMEFARM_SERVER")],
    key: Annotated[str, typer.Option(help="an API key of the service (better: the "
                                     "FRAMEFARM_API_KEY variable)", envvar="FRAMEFARM_API_KEY")],
    data: DataOpt = None,
    quality: Annotated[choices.Quality | None, typer.Option(help="quality preset")] = None,
    size: Annotated[choices.SizePreset | None, typer.Option(help="size preset")] = None,
    fps: Annotated[int | None, typer.Option(help="24, 25, 30, 50 or 60")] = None,
    format: Annotated[choices.Format | None, typer.Option(
        "--format", help="default: from the output's suffix")] = None,
    project: Annotated[str | None, typer.Option(
        help="use this project of the service (uploading only the assets it lacks or that "
        "changed) instead of a new one")] = None,
    priority: Annotated[int, typer.Option(min=-100, max=100)] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Render a document on a framefarm server: upload what it uses, render, download.

    The document is checked here first (with its assets, as the server will); the result is
    written to OUTPUT only once it is complete. Ctrl-C cancels the remote render.

    Example: framefarm submit examples/story.json --data examples/story.data.json
    --server http://10.0.0.5:8700 -o story.mp4
    """
    import hashlib
    import time

    from framefarm import client, engine
    from framefarm.api import models
    from framefarm.document import loader

    job: models.Job | None = None
    remote: client.Client | None = None
    started = time.monotonic()
    try:
        with _terminate_like_interrupt():
            engine.check_output(output)
            wanted = engine.output_format(output, format)
            if wanted == "png":
                raise errors.DocumentError("submit renders videos; for a still use "
                                           "'framefarm snapshot'")
            values = _data(data)
            raw = loader.read_json(document)
            options = {k: v for k, v in {"quality": quality, "size": size, "fps": fps,
                                         "format": wanted}.items() if v is not None}
            # The assets the document uses, found and checked as the engine finds them
            # (with the options, as the server will apply them).
            found = loader.load(document, data=values, overrides=options).assets
            remote = client.Client(server, key)
            if project is None:
                project = remote.create_project((document.stem or "submit")[:200]).id
                stored: dict[str, str] = {}
            else:
                stored = {a.name: a.sha256 for a in remote.assets(project)}
            uploads: dict[str, Path] = {}
            for src, path in found.items():
                with path.open("rb") as stream:
                    sha = hashlib.file_digest(stream, "sha256").hexdigest()
                if stored.get(_asset_name(src)) != sha:
                    uploads[_asset_name(src)] = path
            if uploads:
                remote.upload(project, uploads)
            err.print(f"project {project}: {len(uploads)} asset(s) uploaded, "
                      f"{len(found) - len(uploads)} already there", highlight=False)
            remote.put_document(project, raw)
            job = remote.submit(project_id=project, data=values, priority=priority,
                                options=options)
            err.print(f"render {job.id} {job.state}", highlight=False)
            with _progress_bar(quiet) as bar:
                task = bar.add_task("queued", total=None, speed="")
                first: list[tuple[float, int]] = []

                def show(p: models.JobProgress) -> None:
                    now = time.monotonic()
                    if p.frames.done and not first:
                        first.append((now, p.frames.done))
                    speed = ""
                    if first and now > first[0][0]:
                        speed = f"{(p.frames.done - first[0][1]) / (now - first[0][0]):5.1f} fps"
                    bar.update(task, description=p.step, total=p.frames.total or None,
                               completed=p.frames.done, speed=speed)

                job = remote.wait(job.id, on_progress=show)
            if job.state != "succeeded":
                raise errors.RenderError(f"render {job.id} {job.state}"
                                         + (f": {job.error}" if job.error else ""))
            remote.download(job, output)
    except KeyboardInterrupt as exc:
        if remote is not None and job is not None and not job.finished:
            with contextlib.suppress(Exception):
                remote.cancel(job.id)
        err.print("[yellow]cancelled[/]; no output was written")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except client.ClientError as exc:
        raise _remote_failure(exc) from None
    except Exception as exc:
        raise _fail(exc) from None
    finally:
        if remote is not None:
            remote.close()
    assert job is not None and job.export is not None
    export = job.export
    out.print(f"[green]wrote[/] {output}  {export.width}x{export.height}  "
              f"{export.duration:.2f} s  {job.frames.total} frames  "
              f"in {time.monotonic() - started:.1f} s (render {job.id})")


from framefarm import cli_batch  # noqa: E402, F401  (registers `framefarm batch` on the app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
