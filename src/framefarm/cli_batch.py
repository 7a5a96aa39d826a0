"""``framefarm batch TEMPLATE ROWS -o DIR/``: a video per row of data, on this machine
(``framefarm.batch.local``). Registered on the command line app by ``cli.py``; the exit
codes and messages are the CLI's (``cli._fail``): 0 every row done, 1 a row failed to
render, 2 the template or rows are invalid (or only some rows' data is)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    from framefarm.batch.local import BatchResult

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
) -> None:
    """Render a template once per row of data: a video per row into a folder.

    Frames that are the same in every row (an intro, an outro) are rendered once. Run it
    again after a stop: finished rows are kept.

    Example: framefarm batch examples/story.json rows.csv -o out/ --jobs 2
    """
    from framefarm.batch import local

    cancel = threading.Event()
    try:
        with cli._terminate_like_interrupt(), Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(), TaskProgressColumn(),
            MofNCompleteColumn(), TextColumn("rows  {task.fields[failed]} failed"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=cli.err, disable=quiet, transient=False,
        ) as bar:
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
