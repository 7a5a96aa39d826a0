"""``framefarm batch TEMPLATE ROWS -o DIR/``: a video per row of data, on this machine
(``framefarm.batch.local``). Registered on the command line app by ``cli.py``; the exit
codes and messages are the CLI's (``cli._fail``): 0 every row done, 1 a row failed to
render, 2 the template or rows are invalid (or only some rows' data is)."""

from __future__ import annotations

import contextlib
import csv
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from framefarm import cli
from framefarm.document import choices

if TYPE_CHECKING:
    from framefarm.api import models
    from framefarm.batch import rows as batch_rows
    from framefarm.batch.local import BatchResult
    from framefarm.client import Client

_SHOWN_FAILURES = 20  # the summary lists this many failed rows; the manifest has them all


def batch(
    template: Annotated[Path, typer.Argument(help="the template (a document with "
                                             "'variables')", show_default=False)],
    rows: Annotated[Path, typer.Argument(help="the rows: a .csv with a header naming the "
                                         "variables, or a .json array of objects",
                                         show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="the folder for the videos "
                                         "(row-00001.mp4, ...) and manifest.csv")],
    jobs: Annotated[int | None, typer.Option(min=1, help="rows rendered at once (default and "
                                             "at most: the cores)")] = None,
    quality: Annotated[choices.Quality | None, typer.Option(help="quality preset")] = None,
    size: Annotated[choices.SizePreset | None, typer.Option(help="size preset")] = None,
    no_share: Annotated[bool, typer.Option("--no-share", help="render every row whole, "
                                           "sharing no frames between rows")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    server: Annotated[str | None, typer.Option(
        help="run the batch on this framefarm service instead (its base URL): the "
        "template and the files the rows use are uploaded, the videos downloaded",
        envvar="FRAMEFARM_SERVER")] = None,
    key: Annotated[str | None, typer.Option(help="the service's API key (better: the "
                                            "FRAMEFARM_API_KEY variable)",
                                            envvar="FRAMEFARM_API_KEY")] = None,
) -> None:
    """Render a template once per row of data: a video per row into a folder.

    Frames that are the same in every row (an intro, an outro) are rendered once. Run it
    again after a stop: finished rows are kept.

    Example: framefarm batch examples/story.json rows.csv -o out/ --jobs 2
    """
    from framefarm.batch import local

    if server is not None:
        _on_service(server, key, template, rows, output, quality=quality, size=size,
                    quiet=quiet)
        return
    cancel = threading.Event()
    try:
        with cli._terminate_like_interrupt(), _rows_bar(quiet) as bar:
            task = bar.add_task("prepare", total=None, failed=0)

            def show(p: local.BatchProgress) -> None:
                bar.update(task, description=p.step, total=p.total,
                           completed=p.done + p.failed, failed=p.failed)

            result = local.run(template, rows, output, jobs=jobs, quality=quality,
                               size=size, share=not no_share, on_progress=show,
                               cancel=cancel)
    except KeyboardInterrupt as exc:
        cancel.set()
        cli.err.print(f"[yellow]cancelled[/]; finished rows are in {output}, run the same "
                      "command again to render the rest")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except Exception as exc:
        raise cli._fail(exc) from None
    _summary(result, output)


def _on_service(server: str, key: str | None, template: Path, rows: Path, output: Path, *,
                quality: str | None, size: str | None, quiet: bool) -> None:
    from framefarm import client

    if not key:
        cli.err.print("[red]error:[/] --server needs an API key (--key or FRAMEFARM_API_KEY)")
        raise typer.Exit(2)
    options = {k: v for k, v in {"quality": quality, "size": size}.items() if v is not None}
    remote = client.Client(server, key)
    made: list[str] = []
    try:
        with cli._terminate_like_interrupt(), _rows_bar(quiet) as bar:
            task = bar.add_task("upload", total=None, failed=0)

            def show(p: Any) -> None:
                done = p.counts.succeeded + p.counts.failed + p.counts.cancelled
                bar.update(task, description=p.state, total=p.rows_queued, completed=done,
                           failed=p.counts.failed)

            batch = _remote(remote, template, rows, output, options=options,
                            on_progress=show, on_batch=lambda b: made.append(b.id))
    except KeyboardInterrupt as exc:
        if made:
            with contextlib.suppress(Exception):
                remote.cancel_batch(made[0])
        cli.err.print("[yellow]cancelled[/] the batch on the service")
        raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
    except client.ClientError as exc:
        raise cli._remote_failure(exc) from None
    except Exception as exc:
        raise cli._fail(exc) from None
    finally:
        remote.close()
    counts = batch.counts
    cli.out.print(f"[green]{counts.succeeded} rendered[/] on the service, [red]"
                  f"{counts.failed} failed[/], {len(batch.skipped)} skipped (batch {batch.id});"
                  f" manifest: {output / 'manifest.csv'}", highlight=False)
    if counts.failed or batch.skipped:
        raise typer.Exit(1 if counts.failed else 2)


def _remote(client: Client, template: Path, rows: Path, folder: Path, *,
        options: dict[str, Any], on_progress: Callable[[models.BatchProgress], None],
        on_batch: Callable[[models.Batch], None] | None = None) -> models.Batch:
    """Create the batch on the service, wait for it, download its videos; returns it."""
    from framefarm import errors
    from framefarm.document import loader

    raw = loader.read_json(template)
    variables = raw.get("variables") or {} if isinstance(raw, dict) else {}
    if not variables:
        raise errors.DocumentError(f"{template}: a batch's template declares 'variables'")
    found = _rows(rows, variables)
    # Every file a row's document uses (a photo per row, say), found as the engine finds
    # it; a row that does not load is left to the service, which reports it by row.
    files: dict[str, Path] = {}
    for _, data in found.good:
        try:
            loaded = loader.load(template, data=data, overrides=options)
        except errors.DocumentError:
            continue
        for src, path in loaded.assets.items():
            files["/".join(p for p in src.replace("\\", "/").split("/") if p not in ("", "."))] \
                = path
    project = client.create_project((template.stem or "batch")[:200]).id
    if files:
        client.upload(project, files)
    made = client.create_template(template.stem[:200] or "batch", raw, project_id=project)
    if rows.suffix.lower() == ".csv":
        batch = client.create_batch(made.id, csv=rows, options=options)
    else:
        batch = client.create_batch(made.id, rows=json.loads(rows.read_text("utf-8")),
                                    options=options)
    if on_batch is not None:
        on_batch(batch)
    batch = client.wait_batch(batch.id, on_progress=on_progress)
    folder.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(batch.rows_total)))
    lines = [{"row": s.row, "file": "", "state": "skipped", "error": s.message}
             for s in batch.skipped]
    after = 0
    while True:
        page = client.batch_jobs(batch.id, after=after, limit=200)
        for job in page.items:
            name = ""
            if job.state == "succeeded" and job.export is not None:
                name = f"row-{job.row:0{width}d}.{job.export.format}"
                client.download(job, folder / name)
            lines.append({"row": job.row, "file": name, "state": job.state,
                          "error": job.error or ""})
        if not page.has_more or page.next is None:
            break
        after = page.next
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["row", "file", "state", "error"])
        writer.writeheader()
        writer.writerows(sorted(lines, key=lambda line: int(line["row"])))
    return batch


def _rows(path: Path, variables: dict[str, Any]) -> batch_rows.Rows:
    from framefarm.batch import rows as batch_rows

    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as lines:
            return batch_rows.from_csv(lines, variables, max_rows=10_000)
    return batch_rows.from_json(json.loads(path.read_text("utf-8")), variables,
                                max_rows=10_000)


def _rows_bar(quiet: bool) -> Progress:
    """The one progress bar of a batch, here or on a service: rows done, failed, ETA."""
    return Progress(
        TextColumn("[bold]{task.description:<9}"), BarColumn(), TaskProgressColumn(),
        MofNCompleteColumn(), TextColumn("rows  {task.fields[failed]} failed"),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=cli.err, disable=quiet, transient=False)


def _summary(result: BatchResult, folder: Path) -> None:
    from framefarm.batch import local

    counts = {state: sum(1 for o in result.outcomes if o.state == state)
              for state in (local.RENDERED, local.KEPT, local.FAILED)}
    plan = result.plan
    share = (f"{plan.shared_frames} of {plan.total_frames} frames shared by every row "
             f"({result.parts_rendered} part(s) rendered, {result.parts_reused} reused)"
             if plan.shared else "no frames shared")
    cli.out.print(f"[green]{counts[local.RENDERED]} rendered[/], {counts[local.KEPT]} kept "
                  f"from an earlier run, [red]{counts[local.FAILED]} failed[/] in "
                  f"{result.elapsed:.1f} s; {share}", highlight=False)
    failed = result.failed
    for o in failed[:_SHOWN_FAILURES]:
        # The rows' own messages may already say which row and field they are about.
        head = f"row {o.row}" + (f" {o.field}" if o.field else "")
        text = o.error if o.error.startswith(f"row {o.row}") else f"{head}: {o.error}"
        cli.err.print(text, markup=False, highlight=False)
    if len(failed) > _SHOWN_FAILURES:
        cli.err.print(f"... and {len(failed) - _SHOWN_FAILURES} more")
    cli.out.print(f"manifest: {folder / local.MANIFEST}", highlight=False)
    if failed:
        # Data that does not fit is the user's to fix (2); a render that failed is ours (1).
        raise typer.Exit(2 if all(o.invalid for o in failed) else 1)


def _register() -> None:
    # In a function, so that the type checker sees ``cli.app`` once ``cli`` (which imports
    # this module at its end) is complete.
    cli.app.command()(batch)


_register()
