"""The storage sweeper: deletes objects nothing references any more, and only those.

What the rest of the service leaves behind: the part a node uploaded under a lease it then
lost (it died mid-task; the task ran again under a new lease), the parts of jobs that
failed or were cancelled, asset contents no project and no unfinished job uses, staged
asset uploads of a request that died, old snapshot cache entries and old previews.

The rules, by key (``<lease>`` is the first 8 characters of the lease a part was uploaded
under, as ``Farm.output_key`` names it):

- ``jobs/<job>/<kind><idx>-<lease>.<ext>``: kept while the job needs it. A finished job
  keeps only its export's file (while the export exists) and, for a snapshot job, its
  result; an unfinished job keeps its succeeded tasks' outputs and anything uploaded under
  a lease one of its tasks holds now. Everything of a job that no longer exists goes.
- ``assets/<sha256>``: kept while a project's asset or a queued or running job uses it.
- ``uploads/...`` (asset uploads being staged): nothing references them.
- ``snapshots/...`` (the snapshot cache): kept ``snapshot_ttl`` after it was written.
- ``shared/<tenant>/<key>.<ext>`` (frames a batch's rows share): kept while a queued or
  running job takes it as a task's output.
- ``previews/<job>.jpeg``: kept until ``preview_after`` after its job finished (the job
  stops showing a preview first), or while the job exists.

The guard against deleting what is being written right now: an object is a candidate
only if it is older than ``min_age`` (an hour by default; at least twice the lease), by
the storage's own modification time. The listing is read first, the database after it: an
object the database did not know about when it was read was started after that read, so
it is younger than the guard. A part uploaded under a lease still held is kept whatever
its age (an S3 multipart upload is dated by when it started).

``Exports.sweeper.sweep()`` runs a sweep now (tests, the command line); the server's upkeep
calls :meth:`Sweeper.start_if_due`, which runs one in a thread of its own every
``every_seconds`` (ten minutes by default).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterator

from framefarm.application.context import Context
from framefarm.repos import jobs as job_rows
from framefarm.repos import projects, storage_refs
from framefarm.storage.local import StoredObject

log = logging.getLogger("framefarm.sweeper")

_PART = re.compile(r"^[a-z]+\d+-(?P<lease>[A-Za-z0-9_-]{1,8})\.[A-Za-z0-9]+$")
_PREVIEW = re.compile(r"^previews/(?P<job>[A-Za-z0-9_]+)\.jpeg$")


@dataclasses.dataclass(frozen=True)
class SweepRules:
    min_age: dt.timedelta = dt.timedelta(hours=1)
    snapshot_ttl: dt.timedelta = dt.timedelta(days=7)
    preview_after: dt.timedelta = dt.timedelta(days=1)
    every_seconds: float = 600.0


@dataclasses.dataclass
class Sweeper:
    ctx: Context
    rules: SweepRules = dataclasses.field(default_factory=SweepRules)
    _running: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False,
                                                 repr=False)
    _next: float = dataclasses.field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._next = time.monotonic() + self.rules.every_seconds

    @property
    def min_age(self) -> dt.timedelta:
        return max(self.rules.min_age,
                   dt.timedelta(seconds=2 * self.ctx.settings.lease_seconds))

    def start_if_due(self) -> bool:
        """From the upkeep loop: start a sweep in the background if one is due (and none
        is running); never waits for it."""
        if time.monotonic() < self._next or self._running.locked():
            return False
        self._next = time.monotonic() + self.rules.every_seconds
        threading.Thread(target=self._background, name="storage-sweeper", daemon=True).start()
        return True

    def wait(self, timeout: float) -> bool:
        """Wait for a sweep in progress to end; False if it still runs after ``timeout``."""
        if not self._running.acquire(timeout=timeout):
            return False
        self._running.release()
        return True

    def _background(self) -> None:
        try:
            swept = self.sweep()
            if any(swept.values()):
                log.info("storage sweep deleted %s", swept)
        except Exception:
            log.exception("storage sweep failed")

    def sweep(self, now: dt.datetime | None = None) -> dict[str, int]:
        """One sweep; returns how many objects of each kind it deleted."""
        with self._running:
            now = now or self.ctx.now()
            return {"parts": self._parts(now), "assets": self._assets(now),
                    "uploads": self._uploads(now), "snapshots": self._snapshots(now),
                    "previews": self._previews(now), "shared": self._shared(now)}

    def _old(self, prefix: str, now: dt.datetime) -> Iterator[StoredObject]:
        cutoff = now - self.min_age
        return (item for item in self.ctx.storage.list_objects(prefix)
                if item.modified < cutoff)

    def _delete(self, keys: list[str]) -> int:
        deleted = 0
        for key in keys:
            try:
                self.ctx.storage.delete(key)
                deleted += 1
            except Exception:  # one refusal must not stop the sweep
                log.exception("storage sweep could not delete %s", key)
        return deleted

    def _parts(self, now: dt.datetime) -> int:
        by_job: dict[str, list[str]] = {}
        for item in self._old("jobs/", now):
            job_id, _, name = item.key[len("jobs/"):].partition("/")
            by_job.setdefault(job_id, []).append(name)
        if not by_job:
            return 0
        with self.ctx.db.read() as conn:
            found = storage_refs.jobs(conn, list(by_job))
        doomed: list[str] = []
        for job_id, names in by_job.items():
            job = found.get(job_id)
            for name in names:
                key = f"jobs/{job_id}/{name}"
                if job is None or not _part_needed(job, key, name):
                    doomed.append(key)
        return self._delete(doomed)

    def _assets(self, now: dt.datetime) -> int:
        old = {item.key[len("assets/"):]: item.key for item in self._old("assets/", now)}
        if not old:
            return 0
        with self.ctx.db.read() as conn:
            used = projects.shas_in_use(conn, list(old))
            used |= storage_refs.shas_of_unfinished_jobs(conn)
        doomed = [key for sha, key in old.items() if sha not in used]
        if not doomed:
            return 0
        # Once more just before deleting: an upload of the same content may have just
        # pointed an asset at one of them.
        with self.ctx.db.read() as conn:
            used = projects.shas_in_use(conn, [key[len("assets/"):] for key in doomed])
            used |= storage_refs.shas_of_unfinished_jobs(conn)
        return self._delete([key for key in doomed if key[len("assets/"):] not in used])

    def _uploads(self, now: dt.datetime) -> int:
        return self._delete([item.key for item in self._old("uploads/", now)])

    def _snapshots(self, now: dt.datetime) -> int:
        cutoff = now - max(self.rules.snapshot_ttl, self.min_age)
        return self._delete([item.key for item in self.ctx.storage.list_objects("snapshots/")
                             if item.modified < cutoff])

    def _shared(self, now: dt.datetime) -> int:
        old = [item.key for item in self._old("shared/", now)]
        if not old:
            return 0
        with self.ctx.db.read() as conn:
            used = storage_refs.shared_in_use(conn, old)
        return self._delete([key for key in old if key not in used])

    def _previews(self, now: dt.datetime) -> int:
        by_job: dict[str, str] = {}
        for item in self._old("previews/", now):
            match = _PREVIEW.match(item.key)
            if match:
                by_job[match["job"]] = item.key
        if not by_job:
            return 0
        with self.ctx.db.read() as conn:
            found = storage_refs.jobs(conn, list(by_job))
        doomed: list[str] = []
        for job_id, key in by_job.items():
            job = found.get(job_id)
            if job is None:
                doomed.append(key)
            elif (job.finished and job.finished_at is not None
                  and job.finished_at < now - self.rules.preview_after):
                if job.preview_key == key:  # the job stops showing it first
                    with self.ctx.db.tx() as conn:
                        job_rows.update(conn, job_id, preview_key=None)
                doomed.append(key)
        return self._delete(doomed)


def _part_needed(job: storage_refs.JobRefs, key: str, name: str) -> bool:
    if job.finished:
        return key == job.export_key or (job.kind == "snapshot" and key == job.result_key)
    if key in job.output_keys or key == job.result_key:
        return True
    match = _PART.match(name)
    return match is not None and any(token.startswith(match["lease"])
                                     for token in job.lease_tokens)
