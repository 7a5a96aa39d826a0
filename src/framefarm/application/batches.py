"""Batches: one template rendered for many rows of data (a spreadsheet of names, photos,
numbers), a render job per good row.

Each row is checked as its own render would be: its cells converted by the variables'
types (:mod:`framefarm.batch.rows`), then the filled document validated and planned by
``Renders.prepare`` with the template's assets and the node count read once for the whole
batch. Bad rows are skipped and reported (mode ``skip``) or refuse the batch (``refuse``).
The batch and all its row jobs are queued in one transaction (``Queue.submit_batch``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm import errors
from framefarm.application import sharing
from framefarm.application.context import Context
from framefarm.application.exports import Exports
from framefarm.application.farm import tidy_parts
from framefarm.application.projects import Projects, template_variables
from framefarm.application.queue import TaskPlan
from framefarm.application.renders import JobView, Renders
from framefarm.batch import rows as batch_rows
from framefarm.db.database import new_id
from framefarm.document.timeline import Timeline
from framefarm.queue import states
from framefarm.queue.errors import Conflict
from framefarm.records import Batch
from framefarm.repos import batches
from framefarm.repos.batches import Counts, ManifestRow

Mode = Literal["skip", "refuse"]
BatchState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
CANCEL_CHUNK = 200  # row jobs cancelled per transaction
SHOWN_BAD_ROWS = 20  # bad rows named in a refusal's message (its details hold them all)
MANIFEST_COLUMNS = ("row", "job_id", "state", "error", "file", "download_url",
                    "download_expires_at")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w-]*)\s*\}\}")


class BadRows(errors.DocumentError):
    """Rows that cannot be rendered, in a batch that may not skip them (or has no good
    row left); ``rows`` holds every one."""

    def __init__(self, message: str, bad: Sequence[batch_rows.RowError]) -> None:
        super().__init__(message, [b.message for b in bad])
        self.rows = list(bad)


@dataclasses.dataclass(frozen=True)
class BatchView:
    """A batch as callers see it: its row, the counts of its current row jobs, its state
    and progress."""

    batch: Batch
    counts: Counts

    @property
    def rows_queued(self) -> int:
        return sum(self.counts.states.values())

    @property
    def unfinished(self) -> int:
        return sum(self.counts.states.get(s, 0) for s in ("queued", "running"))

    @property
    def state(self) -> BatchState:
        found = self.counts.states
        if self.batch.cancelled_at is not None:
            return "cancelled"
        if self.unfinished:
            started = self.rows_queued - found.get("queued", 0)
            return "running" if started else "queued"
        return "succeeded" if found.get("succeeded", 0) == self.rows_queued else "failed"

    @property
    def finished(self) -> bool:
        return self.unfinished == 0

    @property
    def percent(self) -> float:
        """Frames done over frames total, of every row queued."""
        if self.rows_queued and self.counts.states.get("succeeded", 0) == self.rows_queued:
            return 100.0
        total = self.counts.frames_total
        return round(100.0 * self.counts.frames_done / total, 1) if total else 0.0


@dataclasses.dataclass(frozen=True)
class BatchPage:
    items: list[BatchView]
    has_more: bool

    @property
    def next(self) -> str | None:
        return self.items[-1].batch.id if self.has_more and self.items else None


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    """One row of a manifest: its job (None for a skipped row), state, error, the file
    name it has in the archive and a signed link to its video."""

    row: int
    job_id: str | None
    state: str
    error: str | None
    file: str | None
    download_url: str | None
    download_expires_at: int | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Batches:
    ctx: Context
    projects: Projects
    renders: Renders
    exports: Exports

    # -- creating -----------------------------------------------------------------------------

    def create(
        self, tenant_id: str, template_id: str, *, csv_lines: Iterable[str] | None = None,
        items: Any = None, mode: Mode = "skip", options: Mapping[str, Any] | None = None,
        priority: int = 0, idempotency_key: str | None = None, notify_url: str | None = None,
    ) -> tuple[BatchView, bool]:
        """Check every row and queue a job per good one (``csv_lines`` or JSON ``items``).
        Returns (batch, created): with a known idempotency key the existing batch comes
        back and nothing is queued."""
        if idempotency_key:
            existing = self._by_key(tenant_id, idempotency_key)
            if existing is not None:
                return existing, False
        if notify_url:
            self.renders.check_notify_url(notify_url)
        template = self.projects.template(tenant_id, template_id)  # NotFound first
        variables = template_variables(template.document)
        max_rows = self.ctx.settings.batch_max_rows
        if csv_lines is not None:
            found = batch_rows.from_csv(csv_lines, variables, max_rows=max_rows)
        else:
            found = batch_rows.from_json(items, variables, max_rows=max_rows)
        if found.total == 0:
            raise errors.DocumentError("the batch has no rows")
        options = {k: v for k, v in (options or {}).items() if v is not None}
        items_out, bad = self._prepare_rows(tenant_id, template.document,
                                            template.project_id, found, options)
        if bad and (mode == "refuse" or not items_out):
            raise BadRows(_refusal(bad, found.total, refused=mode == "refuse"), bad)
        batch_id = new_id("bat")
        columns = dict(id=batch_id, tenant_id=tenant_id, template_id=template_id,
                       project_id=template.project_id, mode=mode, options=options,
                       priority=priority, rows_total=found.total,
                       skipped=[dataclasses.asdict(b) for b in bad],
                       idempotency_key=idempotency_key, notify_url=notify_url)
        jobs = [(dict(prepared, priority=priority, notify_url=notify_url, batch_row=row,
                      attempt=1), plan) for row, prepared, plan, _ in items_out]
        shared = self._share(tenant_id, template.project_id, [tl for *_, tl in items_out])
        if shared is not None:
            jobs = [(columns, plan) for (columns, _), plan in zip(jobs, shared.plans,
                                                                  strict=True)]
        try:
            self.ctx.queue.submit_batch(columns, jobs)
        except sa.exc.IntegrityError:
            # Two creates with one idempotency key at once: the loser gets the winner's.
            existing = self._by_key(tenant_id, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing, False
        return self.get(tenant_id, batch_id), True

    def _by_key(self, tenant_id: str, key: str) -> BatchView | None:
        with self.ctx.db.read() as conn:
            found = batches.by_idempotency_key(conn, tenant_id, key)
            return self._views(conn, [found])[0] if found is not None else None

    def _share(self, tenant_id: str, project_id: str | None,
               timelines: Sequence[Timeline | None]) -> sharing.Shared | None:
        """The rows' plans cut on the frames they all share (None: nothing shared)."""
        if any(tl is None for tl in timelines):
            return None  # code templates: known only once a node prepared them
        settings = self.ctx.settings
        return sharing.plans([tl for tl in timelines if tl is not None],
                             self.projects.asset_map(tenant_id, project_id),
                             nodes=self.renders.online_nodes(),
                             min_chunk_seconds=settings.min_chunk_seconds,
                             max_chunks=self.renders.limits.max_chunks)

    def _prepare_rows(
        self, tenant_id: str, document: dict[str, Any], project_id: str | None,
        found: batch_rows.Rows, options: Mapping[str, Any],
    ) -> tuple[list[tuple[int, dict[str, Any], list[TaskPlan], Timeline | None]],
               list[batch_rows.RowError]]:
        """Each good row's job columns and plan, checked by ``Renders.prepare`` exactly as
        a render of it would be; a row whose document fails joins the bad ones."""
        assets = self.projects.asset_map(tenant_id, project_id)
        online = self.renders.online_nodes()
        variables = set(template_variables(document))
        good: list[tuple[int, dict[str, Any], list[TaskPlan], Timeline | None]] = []
        bad = list(found.bad)
        for row, data in found.good:
            try:
                prepared = self.renders.prepare(
                    tenant_id, document=document, project_id=project_id, data=data,
                    options=options, assets=assets, online_nodes=online)
            except errors.DocumentError as exc:
                field = _field_of(exc.problems, document, variables)
                where = f"row {row}, {field}" if field else f"row {row}"
                shown = "; ".join(exc.problems[:3])
                bad.append(batch_rows.RowError(row, field, f"{where}: {shown}"))
                continue
            good.append((row, prepared.columns, prepared.plan, prepared.timeline))
        bad.sort(key=lambda b: b.row)
        return good, bad

    # -- reading ------------------------------------------------------------------------------

    def get(self, tenant_id: str | None, batch_id: str) -> BatchView:
        with self.ctx.db.read() as conn:
            return self._views(conn, [batches.get(conn, batch_id, tenant_id)])[0]

    def _views(self, conn: Connection, rows: Sequence[Batch]) -> list[BatchView]:
        found = batches.counts(conn, [b.id for b in rows])
        return [BatchView(b, found[b.id]) for b in rows]

    def page(self, tenant_id: str, *, limit: int = 50, before: str | None = None) -> BatchPage:
        """Up to ``limit`` batches, newest first, after ``before``."""
        with self.ctx.db.read() as conn:
            found = batches.list_for(conn, tenant_id, limit=limit + 1, before=before)
            return BatchPage(self._views(conn, found[:limit]), has_more=len(found) > limit)

    def jobs(self, tenant_id: str, batch_id: str, *, after_row: int = 0,
             limit: int = 50) -> tuple[list[JobView], bool]:
        """The current job of each row after ``after_row``, by row number, and whether
        more follow."""
        with self.ctx.db.read() as conn:
            batches.get(conn, batch_id, tenant_id)
            found = batches.row_jobs(conn, batch_id, after_row=after_row, limit=limit + 1)
        return self.renders.views(found[:limit]), len(found) > limit

    def job_ids(self, tenant_id: str, batch_id: str) -> list[str]:
        """Every job of the batch (each attempt of each row): what its events wake on."""
        with self.ctx.db.read() as conn:
            batches.get(conn, batch_id, tenant_id)
            return batches.job_ids(conn, batch_id)

    # -- changing -----------------------------------------------------------------------------

    def cancel(self, tenant_id: str, batch_id: str) -> BatchView:
        """Cancel every unfinished row job, a few hundred per transaction; the parts of
        rows that had started are deleted as a cancelled render's are."""
        view = self.get(tenant_id, batch_id)
        if view.finished:
            raise Conflict(f"batch {batch_id} already {view.state}")
        with self.ctx.db.tx() as conn:
            batches.set_cancelled(conn, batch_id, self.ctx.now())
        while True:
            with self.ctx.db.read() as conn:
                due = batches.unfinished_job_ids(conn, batch_id, limit=CANCEL_CHUNK)
            if not due:
                break
            for job in self.ctx.queue.cancel_many(tenant_id, due):
                if job.started_at is not None:
                    tidy_parts(self.ctx, job)
        return self.get(tenant_id, batch_id)

    def retry(self, tenant_id: str, batch_id: str) -> BatchView:
        """A new attempt of each row whose current job failed or was cancelled."""
        with self.ctx.db.read() as conn:
            batches.get(conn, batch_id, tenant_id)
            due = batches.retryable_job_ids(conn, batch_id)
        if not due:
            raise Conflict(f"batch {batch_id} has no failed or cancelled row to retry")
        with self.ctx.db.tx() as conn:
            batches.clear_cancelled(conn, batch_id)
        for job_id in due:
            self.ctx.queue.retry(tenant_id, job_id)
        return self.get(tenant_id, batch_id)

    # -- results ------------------------------------------------------------------------------

    def manifest(self, tenant_id: str, batch_id: str) -> list[ManifestEntry]:
        """Every row given, by row number: its current job, state, error, archive file
        name and a signed download link (skipped rows have no job)."""
        return self._manifest(tenant_id, batch_id)[0]

    def _manifest(self, tenant_id: str,
                  batch_id: str) -> tuple[list[ManifestEntry], list[ManifestRow]]:
        with self.ctx.db.read() as conn:
            batch = batches.get(conn, batch_id, tenant_id)
            found = batches.manifest(conn, batch_id)
        width = _row_digits(batch.rows_total)
        entries = [self._entry(r, width) for r in found]
        entries += [ManifestEntry(int(s["row"]), None, "skipped", str(s["message"]), None,
                                  None, None) for s in batch.skipped]
        return sorted(entries, key=lambda e: e.row), found

    def _entry(self, row: ManifestRow, width: int) -> ManifestEntry:
        if row.export_id is None or row.state != states.JobState.SUCCEEDED:
            return ManifestEntry(row.row, row.job_id, row.state, row.error, None, None, None)
        url, expires = self.exports.signed_url(row.export_id)
        return ManifestEntry(row.row, row.job_id, row.state, row.error,
                             archive_name(row.row, width, row.export_format or "mp4"),
                             url, expires)

    def archive(self, tenant_id: str, batch_id: str) -> Iterator[bytes]:
        """A ZIP of every succeeded row's video and ``manifest.csv``, made while it is
        sent: stored (videos do not compress), ZIP64, each file read in chunks. The
        batch is read now (NotFound before the first byte)."""
        entries, found = self._manifest(tenant_id, batch_id)
        return _zip_stream(self.ctx, entries, {r.job_id: r for r in found})


def archive_name(row: int, width: int, extension: str) -> str:
    return f"row-{row:0{width}d}.{extension}"


def _row_digits(rows_total: int) -> int:
    return max(5, len(str(rows_total)))


def manifest_csv(entries: Iterable[ManifestEntry]) -> Iterator[str]:
    """The manifest as CSV text, a line at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    for entry in entries:
        writer.writerow(["" if v is None else v for v in dataclasses.astuple(entry)])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


class _Pipe(io.RawIOBase):
    """Where zipfile writes: the bytes are kept until the generator hands them on.
    Not seekable, so zipfile writes each member's sizes after its data."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        found = b"".join(self.chunks)
        self.chunks.clear()
        return found


_READ = 1024 * 1024


def _zip_stream(ctx: Context, entries: Sequence[ManifestEntry],
                rows: Mapping[str, ManifestRow]) -> Iterator[bytes]:
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for entry in entries:
            row = rows.get(entry.job_id or "")
            if entry.file is None or row is None or row.storage_key is None:
                continue
            stamp = row.export_created.timetuple()[:6] if row.export_created else None
            info = zipfile.ZipInfo(entry.file, date_time=stamp or (1980, 1, 1, 0, 0, 0))
            with ctx.storage.local_path(row.storage_key).open("rb") as source, \
                    zf.open(info, "w", force_zip64=True) as member:
                while chunk := source.read(_READ):
                    member.write(chunk)
                    yield pipe.take()
        zf.writestr("manifest.csv", "".join(manifest_csv(entries)))
    yield pipe.take()


def _refusal(bad: Sequence[batch_rows.RowError], total: int, *, refused: bool) -> str:
    head = (f"{len(bad)} of {total} rows cannot be rendered" if refused
            else f"none of the {total} rows can be rendered")
    shown = "; ".join(b.message for b in bad[:SHOWN_BAD_ROWS])
    more = f"; and {len(bad) - SHOWN_BAD_ROWS} more" if len(bad) > SHOWN_BAD_ROWS else ""
    return f"{head}: {shown}{more}"


def _field_of(problems: Sequence[str], document: Any, variables: set[str]) -> str | None:
    """The variable a document problem comes from: named by the problem (``data.x``), or
    the placeholder at the problem's path in the template (``scenes[0].layers[1].src``
    holding ``{{photo}}``)."""
    for problem in problems:
        path = problem.split(": ", 1)[0].strip()
        head, _, rest = path.partition(".")
        if head in ("data", "variables") and rest.split(".")[0] in variables:
            return rest.split(".")[0]
        value = document
        for name, index in _PATH_PART.findall(path):
            if index and isinstance(value, list) and int(index) < len(value):
                value = value[int(index)]
            elif name and isinstance(value, dict) and name in value:
                value = value[name]
            else:
                value = None
                break
        if isinstance(value, str):
            for name in _PLACEHOLDER.findall(value):
                if name in variables:
                    return str(name)
    return None
