"""Frames shared by a batch's rows, rendered once on the farm (docs/shared-frames.md).

When a batch is queued, :func:`plans` compares the rows' timelines frame by frame
(``framefarm.batch.shared``: what each frame depends on, never by drawing it) and cuts
every row's video on the same segments. A shared segment is one render task with the
part's content key (``tasks.shared_key``): the first row's task makes it; every other
row's task for it waits. When the part is made, the server keeps a copy under
``shared/<tenant>/<key>`` and, in the same transaction, every waiting task of that key
succeeds with it as its output (:meth:`Queue.complete`); a row's assemble task is
released once its own chunks, its audio and its shared parts are all there. If the row
that makes a part fails or is cancelled first, the next waiting row makes it instead.

Rows are charged for their whole video as a solo render would be (they are billed by
output); the farm's node time is what sharing saves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from framefarm import chunks
from framefarm.application.plans import TaskPlan, job_plan
from framefarm.batch import shared
from framefarm.db.database import Database
from framefarm.document.timeline import Timeline
from framefarm.queue.states import TaskEvent, TaskKind
from framefarm.records import Job
from framefarm.repos import jobs

PREFIX = "shared/"


def storage_key(tenant_id: str, key: str, output_key: str) -> str:
    """Where a made part is kept for the rows that share it (per tenant: a shared cache
    across tenants would tell one what another rendered)."""
    suffix = output_key.rsplit(".", 1)[-1]
    return f"{PREFIX}{tenant_id}/{key}.{suffix}"


class _ByName(shared.AssetDigests):
    """Asset digests from the batch's asset map (name -> sha256) instead of the files:
    the rows were checked in folders that are gone, and the map already says what each
    file holds."""

    def __init__(self, assets: Mapping[str, str]) -> None:
        super().__init__()
        self.names = sorted(assets.items(), key=lambda kv: -len(kv[0]))

    def __call__(self, path: Path) -> bytes:
        text = path.as_posix()
        for name, sha in self.names:
            if text.endswith("/" + name):
                return bytes.fromhex(sha)
        return hashlib.sha256(text.encode()).digest()  # not an asset: only itself


@dataclasses.dataclass(frozen=True)
class Shared:
    """What sharing did to a batch: each row's plan, and how many frames are shared."""

    plans: list[list[TaskPlan]]
    shared_frames: int
    total_frames: int


def plans(timelines: Sequence[Timeline], assets: Mapping[str, str], *, nodes: int,
          min_chunk_seconds: float, max_chunks: int) -> Shared | None:
    """Every row's task plan cut on the segments its batch shares (the first row makes
    the shared parts; the others wait for them), or None when nothing is worth sharing
    (fewer than two rows, or no shared stretch long enough)."""
    if len(timelines) < 2 or any(tl.output.format not in ("mp4", "webm")
                                 for tl in timelines):
        return None
    found = shared.plan(timelines, assets=_ByName(assets))
    if not found.shared:
        return None
    out = []
    for row, tl in enumerate(timelines):
        tasks: list[TaskPlan] = []
        for segment in found.for_row(tl.total_frames):
            if segment.shared:
                tasks.append(TaskPlan(TaskKind.RENDER, len(tasks), segment.start, segment.end,
                                      waiting=row > 0, shared_key=segment.key))
                continue
            for a, b in chunks.plan(segment.frames, tl.fps, nodes=nodes,
                                    min_chunk_seconds=min_chunk_seconds,
                                    max_chunks=max_chunks):
                tasks.append(TaskPlan(TaskKind.RENDER, len(tasks), segment.start + a,
                                      segment.start + b))
        out.append(job_plan(tasks, tl.total_frames))  # with the audio and the assemble
    return Shared(out, found.shared_frames, found.total_frames)


class SharedParts:
    """The queue's side of shared parts (a mixin of
    :class:`~framefarm.application.queue.Queue`, whose transactions these run in)."""

    db: Database

    if TYPE_CHECKING:  # the queue's own
        def _refresh_job(self, conn: Connection, job_id: str) -> Job: ...

    def _share(self, conn: Connection, tenant_id: str, key: str, output_key: str,
               now: dt.datetime) -> None:
        """A part shared by a batch's rows is made (kept at its shared storage key, which
        the caller copied it to): every row's task waiting for it succeeds with it, and
        each row that now has all its inputs gets its assemble task released."""
        waiting = jobs.waiting_for(conn, tenant_id, key)
        for job_id in waiting:  # sorted: concurrent makers lock in the same order
            self.db.lock_job(conn, job_id)
        jobs.share(conn, tenant_id, key, output_key=storage_key(
            tenant_id, key, output_key), now=now)
        for job_id in waiting:
            if jobs.count_pending_inputs(conn, job_id) == 0:
                jobs.move_tasks(conn, job_id, TaskEvent.READY, not_before=now)
            self._refresh_job(conn, job_id)

    def _hand_over(self, conn: Connection, job: Job, now: dt.datetime) -> None:
        """A row that was to make shared parts finished without them: the next row
        waiting for each makes it instead."""
        for key in jobs.unmade_parts(conn, job.id):
            if jobs.part_in_hand(conn, job.tenant_id, key):
                continue  # another row is making it (this one only waited for it)
            task = jobs.first_waiting(conn, job.tenant_id, key)
            if task is not None:
                self.db.lock_job(conn, task.job_id)
                jobs.move_task(conn, task, TaskEvent.READY, not_before=now)
                jobs.log(conn, task.job_id, "info", f"render {task.idx}: makes the frames "
                         "its batch shares (the row that was to make them did not)", now=now)
