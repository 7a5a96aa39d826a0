"""``framefarm batch``: one template, many rows of data, one video per row, on this machine.

Every row's video is ``DIR/row-00001.mp4`` (the row's number, 1 the first data row). The
frames every row shows alike (:mod:`framefarm.batch.shared`) are rendered once, kept in
``DIR/.parts/<key>.mp4`` (so a later batch with the same frames reuses them too), and
each row is assembled from those parts, its own parts and its own audio mix — by stream
copy, exactly as a chunked ``framefarm render`` joins its chunks.

Safe to stop and run again: files appear only complete (written under a temporary name,
verified, renamed), and a row whose video is there and complete is kept. ``DIR/
manifest.csv`` says what became of every row (row, file, state, error).
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from framefarm import engine, errors, formats
from framefarm.batch import rows as batch_rows
from framefarm.batch import shared
from framefarm.document import loader
from framefarm.document.timeline import Timeline
from framefarm.limits import Limits

MAX_ROWS = 100_000  # a bound on the input, not a goal: 100,000 rows is weeks of rendering
FORMAT = "mp4"
PARTS = ".parts"
MANIFEST = "manifest.csv"

# A row's state in the manifest.
RENDERED, KEPT, FAILED, PENDING = "rendered", "kept", "failed", "pending"


@dataclasses.dataclass(frozen=True)
class RowOutcome:
    row: int
    file: str  # the video's name inside the folder ("" for a row that has none)
    state: str  # RENDERED, KEPT (complete from an earlier run), FAILED, PENDING (stopped)
    error: str = ""
    field: str | None = None  # the variable at fault, for a row whose data does not fit
    invalid: bool = False  # failed because its data (or what it names) is invalid


@dataclasses.dataclass(frozen=True)
class BatchProgress:
    total: int
    done: int  # rendered or kept
    failed: int
    elapsed: float
    step: str = "render"  # "prepare" while the rows' documents are loaded and planned


@dataclasses.dataclass(frozen=True)
class BatchResult:
    outcomes: list[RowOutcome]
    plan: shared.Plan
    parts_rendered: int  # shared parts rendered by this run
    parts_reused: int  # shared parts found complete in DIR/.parts
    elapsed: float

    @property
    def failed(self) -> list[RowOutcome]:
        return [o for o in self.outcomes if o.state == FAILED]


def row_file(row: int) -> str:
    return f"row-{row:05d}.{FORMAT}"


def part_threads(jobs: int) -> int:
    """Encoder threads for each part when ``jobs`` run at once: the cores shared out."""
    return max(1, engine.cores() // jobs)


def read_rows(path: Path, variables: Mapping[str, Any], *, max_rows: int = MAX_ROWS
              ) -> batch_rows.Rows:
    """The rows of a .csv or .json file (a JSON array of objects, name -> value)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return batch_rows.from_json(loader.read_json(path, what="rows file"), variables,
                                    max_rows=max_rows)
    if suffix != ".csv":
        raise errors.DocumentError(f"{path.name}: rows are read from a .csv or .json file")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return batch_rows.from_csv(f, variables, max_rows=max_rows)
    except FileNotFoundError:
        raise errors.DocumentError(f"rows file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.DocumentError(f"rows file {path}: cannot be read ({exc})") from None


def run(
    template: Path,
    rows_file: Path,
    folder: Path,
    *,
    jobs: int | None = None,
    quality: str | None = None,
    size: str | None = None,
    share: bool = True,
    min_shared_frames: int | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    cancel: threading.Event | None = None,
    limits: Limits | None = None,
) -> BatchResult:
    """Render every row of ``rows_file`` with ``template`` into ``folder``.

    Rows whose data does not fit, or whose video fails, are reported in the result (and the
    manifest) and the others still render; a problem of the template or of the rows file
    as a whole raises ``DocumentError`` before anything is rendered."""
    began = time.monotonic()
    cancel = cancel or threading.Event()
    raw = loader.read_json(template, what="template")
    if not isinstance(raw, dict):
        raise errors.DocumentError(f"template {template}: expected a JSON object with 'scenes'")
    variables = raw.get("variables") or {}
    if not isinstance(variables, dict):
        raise errors.DocumentError("variables: expected an object of name -> definition")
    given = read_rows(rows_file, variables)
    _prepare_folder(folder)
    outcomes: dict[int, RowOutcome] = {
        bad.row: RowOutcome(bad.row, "", FAILED, bad.message, bad.field, invalid=True)
        for bad in given.bad}
    timelines: dict[int, Timeline] = {}
    if on_progress is not None:
        on_progress(BatchProgress(given.total, 0, 0, time.monotonic() - began, "prepare"))
    for number, data in given.good:
        try:
            timelines[number] = engine.load_timeline(
                raw, data=data, base_dir=template.resolve().parent, limits=limits,
                quality=quality, size=size, format=FORMAT)
        except errors.FramefarmError as exc:
            outcomes[number] = RowOutcome(number, "", FAILED, str(exc),
                                          invalid=isinstance(exc, errors.DocumentError))
    todo = []
    for number, tl in timelines.items():
        if _complete(folder / row_file(number), tl):
            outcomes[number] = RowOutcome(number, row_file(number), KEPT)
        else:
            todo.append(number)
    loaded = list(timelines.values())
    if share:
        plan = shared.plan(loaded, min_frames=min_shared_frames)
    else:
        total = max((tl.total_frames for tl in loaded), default=0)
        plan = shared.Plan((shared.Segment(0, total, False),), total)
    progress = _Counter(given.total, on_progress, began)
    progress.count(outcomes.values())
    batch = _Batch(folder, plan, timelines, jobs, cancel)
    try:
        if todo:
            batch.render(todo, progress, outcomes)
    finally:
        for number in timelines:
            outcomes.setdefault(number, RowOutcome(number, row_file(number), PENDING))
        ordered = [outcomes[n] for n in sorted(outcomes)]
        write_manifest(folder / MANIFEST, ordered)
        batch.close()
    return BatchResult(ordered, plan, batch.parts_rendered, batch.parts_reused,
                       time.monotonic() - began)


def _prepare_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise errors.DocumentError(f"{folder}: exists and is not a folder")
    if not folder.parent.is_dir():
        raise errors.RenderError(f"{folder.parent}: the output folder's parent does not exist")
    (folder / PARTS).mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise errors.DocumentError(f"{folder}: the output folder is not writable")
    # Scratch left by a run that was killed (its process is gone): nothing in it is whole.
    for stale in folder.glob(".work-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _complete(path: Path, tl: Timeline) -> bool:
    """A video from an earlier run, kept if it has every frame of this row's video."""
    if not path.is_file():
        return False
    try:
        engine.verify(path, frames=tl.total_frames, fps=tl.fps)
    except errors.FramefarmError:
        return False
    return True


class _Counter:
    """Rows done and failed, reported after each row."""

    def __init__(self, total: int, callback: Callable[[BatchProgress], None] | None,
                 began: float) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self._callback, self._began = callback, began
        self._lock = threading.Lock()

    def count(self, outcomes: Sequence[RowOutcome] | Any) -> None:
        with self._lock:
            for outcome in outcomes:
                if outcome.state == FAILED:
                    self.failed += 1
                elif outcome.state in (RENDERED, KEPT):
                    self.done += 1
            snapshot = BatchProgress(self.total, self.done, self.failed,
                                     time.monotonic() - self._began)
        if self._callback is not None:
            self._callback(snapshot)


class _Batch:
    """The rendering: shared parts once, then every row from its parts and its audio."""

    def __init__(self, folder: Path, plan: shared.Plan, timelines: Mapping[int, Timeline],
                 jobs: int | None, cancel: threading.Event) -> None:
        self.folder, self.plan, self.timelines, self.cancel = folder, plan, timelines, cancel
        self.jobs = max(1, min(jobs or engine.cores(), engine.cores()))
        self.threads = part_threads(self.jobs)
        self.parts_rendered = self.parts_reused = 0
        self._lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix=f".work-{os.getpid()}-", dir=folder))

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def render(self, todo: Sequence[int], progress: _Counter,
               found: dict[int, RowOutcome]) -> None:
        """Render the rows ``todo``, each outcome put in ``found`` as soon as it is known
        (so a batch stopped half-way still says which rows it finished)."""
        needed = {seg.key: seg for n in todo
                  for seg in self.plan.for_row(self.timelines[n].total_frames)
                  if seg.key is not None}
        source = self.timelines[todo[0]]  # any row: these frames are the same in every row
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
            # Submitted first, so they are taken first and no row waits on a part that
            # waits for a free worker.
            parts = {key: pool.submit(self._shared_part, source, seg)
                     for key, seg in needed.items()}
            rows = {pool.submit(self._row, n, parts): n for n in todo}
            try:
                for done in concurrent.futures.as_completed(rows):
                    outcome = done.result()
                    found[outcome.row] = outcome
                    progress.count([outcome])
            except BaseException:
                self.cancel.set()  # stop the parts in hand at once
                raise

    def _shared_part(self, tl: Timeline, seg: shared.Segment) -> Path:
        path = shared.part_path(self.folder / PARTS, seg, formats.get(FORMAT).part_suffix)
        if path.is_file():
            try:
                engine.verify(path, frames=seg.frames, fps=tl.fps)
                with self._lock:
                    self.parts_reused += 1
                return path
            except errors.FramefarmError:
                pass  # damaged: made again below
        tmp = self.workdir / f"shared-{seg.key}.{path.suffix.lstrip('.')}"
        engine.render_part(tl, (seg.start, seg.end), tmp, threads=self.threads,
                           cancel=self.cancel, timeout=tl.project.limits.render_timeout)
        engine.verify(tmp, frames=seg.frames, fps=tl.fps)
        os.replace(tmp, path)
        with self._lock:
            self.parts_rendered += 1
        return path

    def _row(self, number: int, parts: Mapping[str, concurrent.futures.Future[Path]]
             ) -> RowOutcome:
        tl = self.timelines[number]
        name = row_file(number)
        scratch = Path(tempfile.mkdtemp(prefix=f"row-{number:05d}-", dir=self.workdir))
        try:
            spec = formats.get(FORMAT)
            timeout = tl.project.limits.render_timeout
            pieces: list[tuple[Path | concurrent.futures.Future[Path], int]] = []
            for i, seg in enumerate(self.plan.for_row(tl.total_frames)):
                if self.cancel.is_set():
                    raise errors.RenderCancelled("the batch was stopped")
                if seg.key is not None:
                    pieces.append((parts[seg.key], seg.frames))
                    continue
                own = scratch / f"part{i:04d}.{spec.part_suffix}"
                engine.render_part(tl, (seg.start, seg.end), own, threads=self.threads,
                                   cancel=self.cancel, timeout=timeout)
                pieces.append((own, seg.frames))
            audio = None
            if spec.audio_suffix is not None:  # per row: voices and music may differ
                audio = scratch / f"audio.{spec.audio_suffix}"
                engine.render_audio(tl, audio, (0, tl.total_frames), cancel=self.cancel,
                                    timeout=timeout)
            sized = [(_ready(piece), count) for piece, count in pieces]
            final = scratch / name
            engine.assemble_parts(sized, audio, final, fmt=FORMAT, fps=tl.fps, workdir=scratch)
            os.replace(final, self.folder / name)
            return RowOutcome(number, name, RENDERED)
        except errors.RenderCancelled:
            raise
        except errors.FramefarmError as exc:
            if self.cancel.is_set():
                raise errors.RenderCancelled("the batch was stopped") from exc
            return RowOutcome(number, "", FAILED, str(exc))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _ready(piece: Path | concurrent.futures.Future[Path]) -> Path:
    if isinstance(piece, Path):
        return piece
    try:
        return piece.result()
    except errors.RenderCancelled:
        raise
    except errors.FramefarmError as exc:
        raise errors.RenderError(f"the frames shared by every row failed: {exc}") from exc


def write_manifest(path: Path, outcomes: Sequence[RowOutcome]) -> None:
    """row, file, state, error — one line per row, written whole (temporary name, rename)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["row", "file", "state", "error"])
    for o in outcomes:
        writer.writerow([o.row, o.file, o.state, o.error])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
