"""What the database still points at in storage, for the storage sweeper
(``application/sweeper.py``): the jobs behind ``jobs/<job>/`` and ``previews/<job>.jpeg``,
their tasks' leases and outputs, and the asset contents unfinished jobs need."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.queue.states import JobState

FINISHED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
_BATCH = 500


@dataclasses.dataclass(frozen=True)
class JobRefs:
    """One job as the sweeper sees it."""

    id: str
    kind: str
    state: str
    finished_at: dt.datetime | None
    result_key: str | None
    preview_key: str | None
    export_key: str | None  # the export's file, while the export exists
    output_keys: frozenset[str]  # outputs of its succeeded tasks
    lease_tokens: frozenset[str]  # leases its tasks hold now

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def _batches(ids: Sequence[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i:i + _BATCH] for i in range(0, len(unique), _BATCH)]


def jobs(conn: Connection, job_ids: Sequence[str]) -> dict[str, JobRefs]:
    """These jobs (those that exist), with what they reference; a few queries per 500."""
    found: dict[str, JobRefs] = {}
    for batch in _batches(job_ids):
        exports = dict(conn.execute(sa.select(t.exports.c.job_id, t.exports.c.storage_key)
                                    .where(t.exports.c.job_id.in_(batch))).all())
        outputs: dict[str, set[str]] = {}
        leases: dict[str, set[str]] = {}
        for job_id, state, token, key in conn.execute(sa.select(
                t.tasks.c.job_id, t.tasks.c.state, t.tasks.c.lease_token, t.tasks.c.output_key)
                .where(t.tasks.c.job_id.in_(batch))):
            if token:
                leases.setdefault(job_id, set()).add(token)
            if key and state == "succeeded":
                outputs.setdefault(job_id, set()).add(key)
        for row in conn.execute(sa.select(
                t.jobs.c.id, t.jobs.c.kind, t.jobs.c.state, t.jobs.c.finished_at,
                t.jobs.c.result_key, t.jobs.c.preview_key).where(t.jobs.c.id.in_(batch))
                ).mappings():
            found[row["id"]] = JobRefs(
                id=row["id"], kind=row["kind"], state=row["state"],
                finished_at=row["finished_at"], result_key=row["result_key"],
                preview_key=row["preview_key"], export_key=exports.get(row["id"]),
                output_keys=frozenset(outputs.get(row["id"], ())),
                lease_tokens=frozenset(leases.get(row["id"], ())))
    return found


def shas_of_unfinished_jobs(conn: Connection) -> set[str]:
    """The asset contents every queued or running job renders from."""
    found: set[str] = set()
    assets: Any
    for (assets,) in conn.execute(sa.select(t.jobs.c.assets).where(
            t.jobs.c.state.not_in([str(s) for s in FINISHED]))):
        found.update(str(sha) for sha in (assets or {}).values())
    return found


def shared_in_use(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Of these shared parts (``shared/<tenant>/<key>``), the ones a queued or running job
    still takes as a task's output (its assemble has not read it yet)."""
    found: set[str] = set()
    for start in range(0, len(keys), _BATCH):
        found.update(conn.execute(
            sa.select(t.tasks.c.output_key).join(t.jobs, t.jobs.c.id == t.tasks.c.job_id)
            .where(t.tasks.c.output_key.in_(list(keys[start:start + _BATCH])),
                   t.jobs.c.state.not_in([str(s) for s in FINISHED]))).scalars())
    return found
