"""The life of jobs and tasks: submit, claim, heartbeat, complete, fail, requeue, cancel,
retry. Each operation is one transaction over the repositories, and every state it
writes comes from the state machine (:mod:`framefarm.queue.states`).

A job that reaches succeeded, failed or cancelled gets its webhook deliveries written in
the same transaction (the outbox), so no caller can forget them and a crash between the
two loses nothing; its credits are settled or refunded there too (:meth:`Queue._finished`),
as they were reserved in the transaction that queued it (:meth:`Queue._insert_job`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm import webhooks as webhooks_shared
from framefarm.application import leases, sharing
from framefarm.application import usage as metering
from framefarm.application.plans import Planned, QueueSettings, TaskPlan, render_plan
from framefarm.application.recovery import Recovery
from framefarm.db.database import Database, new_id, retry_deadlocks
from framefarm.queue import states
from framefarm.queue.errors import (
    Conflict,
    IllegalTransition,
    InsufficientCredits,
    NotFound,
    OverPlanResolution,
    QuotaExceeded,
    StaleLease,
    TooManyJobs,
)
from framefarm.queue.states import JobEvent, JobState, TaskEvent, TaskKind, TaskState
from framefarm.records import Job, Task
from framefarm.repos import batches, claims, exports, jobs, ledger, nodes, webhooks
from framefarm.repos import usage as usage_rows
from framefarm.repos.exports import ExportMeta

# The lines a claim and a completion log, as formats: PostgreSQL's functions fill them too
# (repos/claims.py).
CLAIMED = "%s %s [%s, %s) claimed"  # the task's kind, index, first frame, end frame
DONE = "%s %s done"  # the task's kind and index


class Queue(Recovery, sharing.SharedParts):
    """Every job and task transition (the upkeep's requeues and failures: :class:`Recovery`)."""

    def __init__(self, db: Database, settings: QueueSettings | None = None) -> None:
        self.db = db
        self.settings = settings or QueueSettings()

    def now(self) -> dt.datetime:
        return self.db.now()

    # -- jobs -------------------------------------------------------------------------------

    def submit(
        self, tenant_id: str, *, kind: str, document: Any, options: Mapping[str, Any],
        assets: Mapping[str, str], frames_total: int, fps: int, plan: Sequence[TaskPlan],
        limits: Mapping[str, Any] | None = None, priority: int = 0,
        project_id: str | None = None, idempotency_key: str | None = None,
        notify_url: str | None = None, attempt: int = 1, retry_of: str | None = None,
        engine: str = "framefarm", batch_id: str | None = None, batch_row: int | None = None,
        estimate: Mapping[str, int] | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job and its tasks. Returns (job, created): with a known idempotency key
        the existing job comes back and nothing is queued. ``estimate``: the output's
        size (``usage.estimate``), which prices the job's reservation."""
        if not plan:
            raise ValueError("a job needs at least one task")
        row = dict(tenant_id=tenant_id, kind=kind, engine=engine, priority=priority,
                   project_id=project_id, batch_id=batch_id, batch_row=batch_row,
                   document=document, options=dict(options), assets=dict(assets),
                   limits=dict(limits) if limits is not None else None,
                   frames_total=frames_total, fps=fps, attempt=attempt, retry_of=retry_of,
                   idempotency_key=idempotency_key, notify_url=notify_url, estimate=estimate)
        try:
            return self._insert(row, plan)
        except sa.exc.IntegrityError:
            # Two submits with one idempotency key at once: the loser gets the winner's job.
            if idempotency_key:
                with self.db.read() as conn:
                    existing = jobs.by_idempotency_key(conn, tenant_id, idempotency_key)
                if existing is not None:
                    return existing, False
            raise

    def _insert(self, row: dict[str, Any], plan: Sequence[TaskPlan]) -> tuple[Job, bool]:
        job_id, tenant_id, key = new_id("job"), row["tenant_id"], row["idempotency_key"]
        with self.db.tx() as conn:
            existing = jobs.by_idempotency_key(conn, tenant_id, key) if key else None
            if existing is not None:
                return existing, False
            self._check_concurrency(conn, tenant_id)
            self._insert_job(conn, dict(row, id=job_id), plan)
            return jobs.get(conn, job_id), True

    def submit_batch(self, batch: Mapping[str, Any],
                     items: Sequence[tuple[Mapping[str, Any], Sequence[TaskPlan]]]) -> None:
        """Queue a batch (its row of ``batches``, id included) and a job per good row, in
        one transaction: a batch is there with all its jobs or not at all. Each item is a
        job's columns (as :meth:`submit` builds them, ``batch_row`` set) and its plan. A
        batch counts once against the tenant's concurrent-jobs limit, however many rows
        it has (its rows do not count: see ``jobs.count_unfinished``)."""
        with self.db.tx() as conn:
            self._check_concurrency(conn, batch["tenant_id"])
            batches.insert(conn, dict(batch, created_at=self.now()))
            for row, plan in items:
                self._insert_job(conn, dict(row, id=new_id("job"), batch_id=batch["id"],
                                            tenant_id=batch["tenant_id"]), plan)

    def _check_concurrency(self, conn: Connection, tenant_id: str) -> None:
        """Under the tenant's lock (held to the end of the submit), so concurrent submits
        count each other. The plan's limit, else the tenant's, else the server's."""
        account = ledger.lock_tenant(conn, tenant_id)
        limit = metering.Plan.load(account.plan).max_concurrent_jobs
        limit = account.max_concurrent_jobs if limit is None else limit
        limit = self.settings.max_concurrent_jobs if limit is None else limit
        active = jobs.count_unfinished(conn, tenant_id)
        if active >= limit:
            raise TooManyJobs(f"the tenant has {active} unfinished jobs; the limit is {limit}")

    def _insert_job(self, conn: Connection, row: Mapping[str, Any],
                    plan: Sequence[TaskPlan]) -> None:
        """One job (``row`` holds its id) and its tasks, in the caller's transaction, with
        its credits reserved (``row["estimate"]``, the output's size, prices them) under
        the tenant's lock: a refusal (plan or credits) rolls the whole transaction back."""
        if not plan:
            raise ValueError("a job needs at least one task")
        now = self.now()
        size = row.get("estimate")
        row = {k: v for k, v in row.items() if k != "estimate"}
        job_id, tenant_id = row["id"], row["tenant_id"]
        engine = row.get("engine", "framefarm")
        jobs.insert(conn, dict(row, state=JobState.QUEUED, step="queued", created_at=now,
                               updated_at=now), [
            dict(id=new_id("tsk"), job_id=job_id, tenant_id=tenant_id, kind=p.kind,
                 engine=engine, idx=p.idx, frame_start=p.frame_start, frame_end=p.frame_end,
                 state=TaskState.WAITING if p.waiting else TaskState.QUEUED,
                 priority=row.get("priority", 0), job_created_at=now, failures=0,
                 requeues=0, not_before=now, frames_done=0, shared_key=p.shared_key)
            for p in plan
        ])
        reserved = metering.reserve(conn, row, size, now=now)
        jobs.log(conn, job_id, "info",
                 f"queued: {len(plan)} tasks, {row['frames_total']} frames"
                 + (f", {reserved} credits reserved" if reserved else ""), now=now)

    @retry_deadlocks
    def cancel(self, tenant_id: str | None, job_id: str) -> Job:
        """Queued tasks stop at once; running ones are told at their next report."""
        with self.db.tx() as conn:
            jobs.get(conn, job_id, tenant_id)  # 404 for other tenants, before locking
            self.db.lock_job(conn, job_id)
            job = jobs.get(conn, job_id, tenant_id)
            if job.state in states.FINISHED_JOB:
                raise Conflict(f"job {job_id} already {job.state}")
            return self._cancel(conn, job)

    def _cancel(self, conn: Connection, job: Job) -> Job:
        """Cancel the job (read under its lock, unfinished) in the caller's transaction."""
        now = self.now()
        jobs.move_tasks(conn, job.id, TaskEvent.CANCEL, finished_at=now)
        jobs.move_job(conn, job, JobEvent.CANCEL, step="cancelled", finished_at=now,
                      updated_at=now)
        jobs.log(conn, job.id, "info", "cancelled", now=now)
        self.db.job_changed(conn, job.id)
        job = jobs.get(conn, job.id)
        self._finished(conn, job)
        return job

    def retry(self, tenant_id: str, job_id: str) -> Job:
        """A new attempt of a failed or cancelled job, with the same document and options."""
        with self.db.read() as conn:
            old = jobs.get(conn, job_id, tenant_id)
            tasks = jobs.tasks(conn, job_id)
            used = usage_rows.get(conn, job_id)
        try:
            states.job_transition(old.state, JobEvent.RETRY)
        except IllegalTransition:
            raise Conflict(f"only failed or cancelled jobs can be retried; this one is "
                           f"{old.state}") from None
        plan = [TaskPlan(TaskKind(r.kind), r.idx, r.frame_start, r.frame_end,
                         waiting=r.kind == TaskKind.ASSEMBLE) for r in tasks]
        if any(r.kind == TaskKind.PREPARE for r in tasks):
            # Prepared again: the project may render differently on another node's cache.
            plan = [p for p in plan if p.kind == TaskKind.PREPARE]
        job, _ = self.submit(
            tenant_id, kind=old.kind, document=old.document, options=old.options,
            assets=old.assets, limits=old.limits, frames_total=old.frames_total, fps=old.fps,
            plan=plan, priority=old.priority, project_id=old.project_id,
            notify_url=old.notify_url, attempt=old.attempt + 1, retry_of=job_id,
            engine=old.engine, batch_id=old.batch_id, batch_row=old.batch_row,
            estimate=metering.estimate(used.width, used.height) if used else None)
        return job

    # -- the node's side: claim, heartbeat, complete, fail ----------------------------------

    @retry_deadlocks
    def claim(self, node_id: str) -> Task | None:
        """Hand this node one runnable task with a fresh lease (the task as leased), or
        None: nothing to do (or the node is draining). A node that still holds a running
        task gets it back with its lease (the answer to its previous claim was lost).
        On PostgreSQL one statement does it (``framefarm_claim``); elsewhere
        :meth:`_claim`."""
        now = self.now()
        token = secrets.token_hex(16)
        expires = now + dt.timedelta(seconds=self.settings.lease_seconds)
        with self.db.tx() as conn:
            if claims.in_database(conn):
                found = claims.claim_in_database(conn, node_id, now, token=token,
                                                 expires=expires, log=CLAIMED)
            else:
                found = self._claim(conn, node_id, now, token, expires)
            if found is None:
                return None
            # A claim changes its job only when it is the job's first (queued -> running):
            # queued and running tasks count alike for the job's step and progress.
            if found.job_state == JobState.QUEUED:
                self._refresh_job(conn, found.task.job_id)
            return found.task

    def _claim(self, conn: Connection, node_id: str, now: dt.datetime, token: str,
               expires: dt.datetime) -> claims.Claimed | None:
        """The claim as statements (SQLite): what ``framefarm_claim`` does on PostgreSQL,
        in the same order."""
        node = nodes.find(conn, node_id)
        if node is None:
            return None
        # A node that holds a task has it as its current one (claim sets it; reports
        # and requeues clear it), so only then is it worth looking for.
        held = jobs.running_on(conn, node_id) if node.current_task_id else []
        if held:
            nodes.update(conn, node_id, last_heartbeat=now, current_task_id=held[0].id)
            return claims.Claimed(held[0], job_state=None)
        if node.draining:
            return None
        task = claims.lock_next(conn, node_id, now, lock=self.db.lock_candidate,
                                engines=claims.node_engines(node.capabilities))
        if task is None:
            nodes.update(conn, node_id, last_heartbeat=now, current_task_id=None)
            return None
        if not jobs.move_task(conn, task, TaskEvent.CLAIM, node_id=node_id,
                              lease_token=token, lease_expires_at=expires, started_at=now,
                              frames_done=0):
            return None
        nodes.update(conn, node_id, last_heartbeat=now, current_task_id=task.id)
        jobs.log(conn, task.job_id, "info",
                 CLAIMED % (task.kind, task.idx, task.frame_start, task.frame_end), now=now,
                 task_id=task.id, node_id=node_id)
        leased = dataclasses.replace(
            task, state=states.task_transition(task.state, TaskEvent.CLAIM), node_id=node_id,
            lease_token=token, lease_expires_at=expires, started_at=now, frames_done=0)
        return claims.Claimed(leased, claims.job_state(conn, task.job_id))

    def leased(self, task_id: str, token: str) -> Task:
        """The task a node holds a lease on (checked), for its inputs and uploads."""
        with self.db.read() as conn:
            return leases.leased(conn, task_id, token)

    @retry_deadlocks
    def heartbeat(self, task_id: str, token: str, frames_done: int | None = None,
                  preview_key: str | None = None) -> str:
        """Extend a lease (and record progress); returns 'continue' or 'cancel'."""
        now = self.now()
        with self.db.tx() as conn:
            task = leases.leased(conn, task_id, token)
            event = TaskEvent.PROGRESS if frames_done is not None else TaskEvent.HEARTBEAT
            leases.check_report(task, TaskEvent.HEARTBEAT)
            if task.state == TaskState.CANCELLED:
                return "cancel"
            values: dict[str, Any] = {
                "lease_expires_at": now + dt.timedelta(seconds=self.settings.lease_seconds)}
            if frames_done is not None:
                values["frames_done"] = max(0, min(frames_done,
                                                   task.frame_end - task.frame_start))
            if not jobs.move_task(conn, task, event, **values):
                raise StaleLease(f"task {task_id}: this lease is no longer valid")
            if task.node_id:
                nodes.update(conn, task.node_id, last_heartbeat=now)
            job_values: dict[str, Any] = {"updated_at": now}
            if preview_key:
                job_values["preview_key"] = preview_key
            jobs.update(conn, task.job_id, **job_values)
            self.db.job_changed(conn, task.job_id)
        return "continue"

    @retry_deadlocks
    def complete(self, task_id: str, token: str, output_key: str | None,
                 export: ExportMeta | None = None, planned: Planned | None = None,
                 cpu_seconds: float | None = None) -> Job:
        """Mark a leased task done; unblocks the assemble task when its inputs are all done.
        An assemble task's ``export`` is recorded in the same transaction, so a job is never
        seen succeeded without its export; a prepare task's ``planned`` tasks are queued
        in it, so the job is never seen prepared with nothing to do; the node's
        ``cpu_seconds`` for the task are the job's usage. Returns the job after the
        change."""
        now = self.now()
        with self.db.tx() as conn:
            if claims.in_database(conn):
                done = claims.complete_in_database(conn, task_id, token, now,
                                                   output_key=output_key,
                                                   cpu_seconds=cpu_seconds, log=DONE)
                if isinstance(done, claims.Stale):
                    raise leases.refused(task_id, done.state)
                if done.job is not None:  # a render or audio chunk, done but for its job
                    return self._refresh_job(conn, done.job.id, known=(done.job, done.tasks))
                task = done.task
            else:
                task = self._complete_task(conn, task_id, token, output_key, now,
                                           cpu_seconds)
            job_id = task.job_id
            if task.kind in (TaskKind.ASSEMBLE, TaskKind.SNAPSHOT):
                jobs.update(conn, job_id, result_key=output_key)
            if export is not None and task.kind == TaskKind.ASSEMBLE:
                exports.insert(conn, task.tenant_id, job_id, export, now=now)
            if task.shared_key and output_key:
                self._share(conn, task.tenant_id, task.shared_key, output_key, now)
            if task.kind == TaskKind.PREPARE and not self._expand(
                    conn, jobs.get(conn, job_id), planned):
                return jobs.get(conn, job_id)  # failed: its plan does not allow it
            if (task.kind in (TaskKind.RENDER, TaskKind.AUDIO)
                    and jobs.count_pending_inputs(conn, job_id) == 0):
                jobs.move_tasks(conn, job_id, TaskEvent.READY, not_before=now)
            return self._refresh_job(conn, job_id)

    def _complete_task(self, conn: Connection, task_id: str, token: str,
                       output_key: str | None, now: dt.datetime,
                       cpu_seconds: float | None) -> Task:
        """The start of a completion as statements (SQLite), what ``framefarm_complete``
        does on PostgreSQL: the task succeeded, its node counted, the line logged, the
        CPU-seconds added; then the job's lock. Returns the task as it was read."""
        task = leases.leased(conn, task_id, token)
        leases.check_report(task, TaskEvent.COMPLETE)
        # Guarded by the lease, not only the state: the task may have expired and been
        # claimed again since it was read (it is read before anything is locked).
        if not jobs.move_task(conn, task, TaskEvent.COMPLETE, leased_by=token,
                              output_key=output_key, finished_at=now, lease_token=None,
                              lease_expires_at=None,
                              frames_done=task.frame_end - task.frame_start):
            raise leases.refused(task_id, None)
        if task.node_id:
            nodes.count_done(conn, task.node_id, now=now)
        jobs.log(conn, task.job_id, "info", DONE % (task.kind, task.idx), now=now,
                 task_id=task_id, node_id=task.node_id)
        if cpu_seconds:
            usage_rows.add_cpu(conn, task.job_id, task.kind, cpu_seconds)
        # The job's lock, taken as late as possible, orders the completions of its
        # last inputs: the one that locks last sees the others committed, finds no
        # input pending and releases the assemble task.
        self.db.lock_job(conn, task.job_id)
        return task

    @retry_deadlocks
    def fail(self, task_id: str, token: str, error: str, *, permanent: bool = False,
             step: str | None = None, cpu_seconds: float | None = None) -> Job:
        """A node reports a failure. Invalid input (``permanent``) fails the job at once;
        otherwise the task is retried later, preferably elsewhere, until it has failed
        ``max_attempts`` times. A node failing one job repeatedly is blocked from it. The
        CPU-seconds the node spent on the attempt count as the job's usage."""
        now = self.now()
        s = self.settings
        with self.db.tx() as conn:
            task = leases.leased(conn, task_id, token, lock=self.db)
            leases.check_report(task, TaskEvent.FAIL)
            job_id, node_id = task.job_id, task.node_id
            failures = task.failures + 1
            if cpu_seconds:
                usage_rows.add_cpu(conn, job_id, task.kind, cpu_seconds)
            if node_id:
                nodes.count_failure(conn, node_id, task_id, job_id, error, now=now)
                self._count_node_failure(conn, job_id, node_id)
            if permanent or failures >= s.max_attempts:
                jobs.move_task(conn, task, TaskEvent.FAIL, failures=failures, error=error,
                               finished_at=now, lease_token=None, lease_expires_at=None)
                jobs.move_tasks(conn, job_id, TaskEvent.CANCEL, finished_at=now)
                jobs.update(conn, job_id, error=error, failed_step=step or task.kind)
                jobs.log(conn, job_id, "error", f"{task.kind} {task.idx} failed"
                         f"{'' if permanent else f' {failures} times'}: {error}", now=now,
                         task_id=task_id, node_id=node_id)
            else:
                delay = s.retry_backoff_seconds * 2 ** (failures - 1)
                jobs.move_task(conn, task, TaskEvent.RETRY, failures=failures, error=error,
                               not_before=now + dt.timedelta(seconds=delay),
                               last_failed_node=node_id, node_id=None, lease_token=None,
                               lease_expires_at=None, frames_done=0)
                jobs.log(conn, job_id, "warning", f"{task.kind} {task.idx} failed "
                         f"(attempt {failures}), retrying in {delay:g}s: {error}", now=now,
                         task_id=task_id, node_id=node_id)
            return self._refresh_job(conn, job_id)

    def _expand(self, conn: Connection, job: Job, planned: Planned | None) -> bool:
        """Queue the tasks a prepare task planned, after it (higher indexes), give the job
        the length and rate it found, and reserve its credits; False when the tenant's
        plan or balance does not allow that render (the job is failed, saying why)."""
        if planned is None or not planned.plan:
            raise ValueError("a prepare task completes with the plan of the job's tasks")
        now = self.now()
        width, height = planned.size
        try:
            metering.reserve_prepared(conn, job, frames=planned.frames_total, fps=planned.fps,
                                      width=width, height=height, now=now)
        except (InsufficientCredits, QuotaExceeded, OverPlanResolution) as exc:
            self._fail_job(conn, job, str(exc), TaskKind.PREPARE, f"prepare: {exc}")
            return False
        first = 1 + max(task.idx for task in jobs.tasks(conn, job.id))
        jobs.add_tasks(conn, [
            dict(id=new_id("tsk"), job_id=job.id, tenant_id=job.tenant_id, kind=p.kind,
                 engine=job.engine, idx=first + p.idx, frame_start=p.frame_start,
                 frame_end=p.frame_end,
                 state=TaskState.WAITING if p.waiting else TaskState.QUEUED,
                 priority=job.priority, job_created_at=job.created_at, failures=0,
                 requeues=0, not_before=now, frames_done=0)
            for p in planned.plan])
        jobs.update(conn, job.id, frames_total=planned.frames_total, fps=planned.fps,
                    options={**job.options, "composition": dict(planned.description)})
        jobs.log(conn, job.id, "info", f"prepared: {len(planned.plan)} tasks, "
                 f"{planned.frames_total} frames at {planned.fps} fps", now=now)
        return True

    def _count_node_failure(self, conn: Connection, job_id: str, node_id: str) -> None:
        failures = jobs.count_node_failure(conn, job_id, node_id)
        if failures < self.settings.node_block_failures:
            return
        job = jobs.get(conn, job_id)
        states.job_transition(job.state, JobEvent.BLOCK_NODE)
        jobs.block_node(conn, job_id, node_id)
        jobs.log(conn, job_id, "warning", f"node {node_id} blocked for this job after "
                 f"{failures} failures", now=self.now(), node_id=node_id)

    # -- the job follows its tasks ------------------------------------------------------------

    def summary(self, job: Job, tasks: Sequence[Task]) -> states.Summary:
        return _summarise(job, _views(tasks), self.now())

    def _refresh_job(self, conn: Connection, job_id: str,
                     known: tuple[Job, Sequence[states.TaskView]] | None = None) -> Job:
        """Move the job to the state its tasks say, with its step and times, and announce
        the change to live events; a job that finishes here gets its webhook deliveries in
        this transaction. The job's row is written only when its state, step or times
        change: most claims and completions leave it alone, so nodes working on chunks of
        one job do not queue for its row lock. ``known``: the job and its tasks as
        ``framefarm_complete`` read them under the job's lock (it announced the change).
        The job's state and step follow from its tasks' kinds and states alone."""
        job, views = known or (jobs.get(conn, job_id), claims.kinds_and_states(conn, job_id))
        now = self.now()
        summary = _summarise(job, views, now)
        values: dict[str, Any] = {"step": summary.step}
        if summary.state != JobState.QUEUED and job.started_at is None:
            values["started_at"] = now
        finishing = summary.state in states.FINISHED_JOB and job.finished_at is None
        if finishing:
            values["finished_at"] = now
            jobs.log(conn, job_id, "info", f"job {summary.state}", now=now)
        event = states.job_event(job.state, summary.state)
        if summary.state != job.state or any(getattr(job, k) != v for k, v in values.items()):
            values["updated_at"] = now
            new = jobs.move_job(conn, job, event, **values)
        else:
            new = states.job_transition(job.state, event)  # checked; nothing to write
        if known is None:
            self.db.job_changed(conn, job_id)
        job = dataclasses.replace(job, state=new, **values)
        if finishing:
            self._finished(conn, job)
        return job

    def _fail_job(self, conn: Connection, job: Job, error: str, step: str, said: str,
                  task_id: str | None = None) -> None:
        """Fail the job (read under its lock) whatever its tasks say, in the caller's
        transaction: its unfinished tasks cancelled, ``said`` in its log."""
        now = self.now()
        jobs.move_tasks(conn, job.id, TaskEvent.CANCEL, finished_at=now)
        jobs.move_job(conn, job, JobEvent.FAIL, error=error, failed_step=step,
                      step=JobState.FAILED.value, finished_at=now, updated_at=now,
                      started_at=job.started_at or now)
        jobs.log(conn, job.id, "error", said, now=now, task_id=task_id)
        jobs.log(conn, job.id, "info", "job failed", now=now)
        self.db.job_changed(conn, job.id)
        self._finished(conn, jobs.get(conn, job.id))

    def _finished(self, conn: Connection, job: Job) -> None:
        """What a job that just finished gets in the transaction that finished it: its
        webhook deliveries, and its credits settled (charged for what it made, the rest
        refunded). Reached once per job: each caller moves it to a finished state."""
        if job.batch_id and job.state != JobState.SUCCEEDED:
            self._hand_over(conn, job, self.now())
        self._outbox(conn, job)
        metering.settle(conn, job, now=self.now())

    def _outbox(self, conn: Connection, job: Job) -> None:
        """One delivery per target for a finished render: its notify_url and every tenant
        webhook subscribed to the event."""
        event = f"render.{job.state}"
        if event not in webhooks_shared.EVENTS or job.kind != "render":
            return
        targets: list[tuple[str | None, str]] = []
        if job.notify_url:
            targets.append((None, job.notify_url))
        targets += [(hook.id, hook.url) for hook in webhooks.subscriptions(conn, job.tenant_id)
                    if event in hook.events]
        for hook_id, url in targets:
            webhooks.add_delivery(conn, tenant_id=job.tenant_id, job_id=job.id,
                                  webhook_id=hook_id, url=url, event=event, now=self.now())

    # -- many jobs at once (a batch's rows) ---------------------------------------------------

    @retry_deadlocks
    def cancel_many(self, tenant_id: str, job_ids: Sequence[str]) -> list[Job]:
        """Cancel these jobs as :meth:`cancel` does, in one transaction (the caller keeps
        it bounded by giving a few hundred at a time); jobs already finished are left as
        they are. Returns the jobs it cancelled."""
        cancelled: list[Job] = []
        with self.db.tx() as conn:
            for job_id in job_ids:
                self.db.lock_job(conn, job_id)
                job = jobs.get(conn, job_id, tenant_id)
                if job.state not in states.FINISHED_JOB:
                    cancelled.append(self._cancel(conn, job))
        return cancelled


def _views(tasks: Sequence[Task]) -> list[states.TaskView]:
    return [states.TaskView(r.kind, r.state, r.frame_start, r.frame_end, r.frames_done)
            for r in tasks]


def _summarise(job: Job, views: Sequence[states.TaskView],
               now: dt.datetime) -> states.Summary:
    return states.summarise(views, cancelled=job.state == JobState.CANCELLED,
                            failed=job.state == JobState.FAILED,
                            started_at=job.started_at, now=now)


__all__ = ["ExportMeta", "NotFound", "Planned", "Queue", "QueueSettings", "TaskPlan",
           "render_plan"]
