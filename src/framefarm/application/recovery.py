"""The queue's recovery, run by the server's upkeep loop and by admins: tasks whose lease
expired are requeued (no retry spent), a node's tasks released, and jobs that no live
node may take any more failed. A part of :class:`~framefarm.application.queue.Queue`
(a mixin: the transitions it makes go through the queue's own ``_refresh_job`` and
``_finished``), kept apart so the queue's everyday life reads on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from framefarm.application.plans import QueueSettings
from framefarm.db.database import Database, retry_deadlocks
from framefarm.queue.states import TaskEvent, TaskState
from framefarm.records import Job, Task
from framefarm.repos import jobs, nodes


class Recovery:
    db: Database
    settings: QueueSettings

    if TYPE_CHECKING:  # the queue's own, which every transition goes through
        def now(self) -> dt.datetime: ...

        def _refresh_job(self, conn: Connection, job_id: str) -> Job: ...

        def _fail_job(self, conn: Connection, job: Job, error: str, step: str, said: str,
                      task_id: str | None = None) -> None: ...

    # -- jobs no node may take ----------------------------------------------------------------

    @retry_deadlocks
    def fail_stranded(self) -> int:
        """Fail the jobs that no live node (online, not draining) may take any more: each
        has a queued task and every live node is blocked from the job after failing it,
        and nothing changed for ``stranded_seconds``. Without this such a job stays
        running for ever. A farm with no live node at all fails nothing: its nodes are
        away, and the job waits for them. The server's upkeep loop calls it. Returns how
        many jobs it failed."""
        now = self.now()
        s = self.settings
        quiet_since = now - dt.timedelta(seconds=s.stranded_seconds)
        # Looked for in a read transaction: nearly always there is none, and a write
        # transaction every round would hold SQLite's write lock for nothing.
        with self.db.read() as conn:
            live = nodes.live(conn, now - dt.timedelta(seconds=s.node_offline_seconds))
            live_ids = [node.id for node in live]
            found = jobs.stranded(conn, live_ids, quiet_since=quiet_since)
        if not found:
            return 0
        failed = 0
        with self.db.tx() as conn:
            for job_id in found:
                self.db.lock_job(conn, job_id)
                # Again under the job's lock: a report may have changed it meanwhile.
                if not jobs.stranded(conn, live_ids, quiet_since=quiet_since, job_id=job_id):
                    continue
                task = jobs.first_queued(conn, job_id)
                assert task is not None
                names = {node.id: node.name for node in live}
                blocked = {n: f for n, f in jobs.blocked_nodes(conn, job_id).items()
                           if n in names}
                error = _stranded_error(task, blocked, names)
                self._fail_job(conn, jobs.get(conn, job_id), error, task.kind,
                               f"{task.kind} {task.idx}: {error}", task_id=task.id)
                failed += 1
        return failed

    # -- requeueing ---------------------------------------------------------------------------

    @retry_deadlocks
    def requeue_expired(self) -> int:
        """Requeue running tasks whose lease expired; this spends no retry. The server's
        upkeep loop calls it, not every claim."""
        now = self.now()
        with self.db.tx() as conn:
            requeued = 0
            for task in jobs.expired(conn, now):
                # Task (under its job's lock) first, then the node: the order complete() uses.
                if not self._requeue(conn, task.id, task.job_id, TaskEvent.EXPIRE,
                                     "lease expired", expired_before=now):
                    continue  # finished, requeued or re-leased since the SELECT
                requeued += 1
                nodes.count_lost_lease(conn, task.node_id, task.id, task.job_id, now=now)
            jobs.forget_quiet_leases(conn, now)
        return requeued

    @retry_deadlocks
    def release_node(self, node_id: str) -> int:
        """Requeue the node's running tasks now (an admin's answer to a stuck node)."""
        with self.db.tx() as conn:
            nodes.get(conn, node_id)
            released = sum(self._requeue(conn, task.id, task.job_id, TaskEvent.REQUEUE,
                                         "released by an admin", on_node=node_id)
                           for task in jobs.running_on(conn, node_id))
            nodes.update(conn, node_id, current_task_id=None)
        return released

    def forget_node(self, node_id: str) -> None:
        """Requeue the node's tasks and remove it with its history (it must register
        again to come back)."""
        self.release_node(node_id)
        with self.db.tx() as conn:
            nodes.delete(conn, node_id)

    def _requeue(self, conn: Connection, task_id: str, job_id: str, event: TaskEvent,
                 why: str, *, expired_before: dt.datetime | None = None,
                 on_node: str | None = None) -> bool:
        """Requeue the task if it is still what the caller saw: running (with its lease
        expired before ``expired_before``, on ``on_node``). False if it changed meanwhile."""
        self.db.lock_job(conn, job_id)
        task = jobs.get_task(conn, task_id)
        if task is None or task.state != TaskState.RUNNING:
            return False
        if not jobs.requeue(conn, task, event, now=self.now(), expired_before=expired_before,
                            on_node=on_node):
            return False
        jobs.log(conn, job_id, "warning", f"task requeued: {why}", now=self.now(),
                 task_id=task_id)
        self._refresh_job(conn, job_id)
        return True


def _stranded_error(task: Task, blocked: Mapping[str, int], names: Mapping[str, str]) -> str:
    """Why a stranded job failed: which nodes are blocked, after how many failures, and
    the task's last error."""
    by_count: dict[int, list[str]] = {}
    for node_id, failures in blocked.items():
        by_count.setdefault(failures, []).append(f"{names[node_id]} ({node_id})")
    groups = [f"{', '.join(labels)} blocked after {count} failure{'s' * (count != 1)}"
              for count, labels in sorted(by_count.items())]
    word = "node" if len(blocked) == 1 else "nodes"
    error = f"no render node may take this task: {word} {'; '.join(groups)}"
    if task.error:
        error += f"; its last error: {task.error}"
    return error
