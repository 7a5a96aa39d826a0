"""A node's reports are checked against its lease: the token must be the task's current
one, and the state machine must allow the report (else the lease is stale: the node
drops its work)."""

from __future__ import annotations

import secrets

from sqlalchemy.engine import Connection

from framefarm.db.database import Database
from framefarm.queue import states
from framefarm.queue.errors import IllegalTransition, StaleLease
from framefarm.queue.states import TaskEvent
from framefarm.records import Task
from framefarm.repos import jobs


def check_report(task: Task, event: TaskEvent) -> None:
    """A node's report on a task that the state machine does not allow is a stale lease."""
    try:
        states.task_transition(task.state, event)
    except IllegalTransition:
        raise StaleLease(f"task {task.id} is {task.state}") from None


def refused(task_id: str, state: str | None) -> StaleLease:
    """What a report the database refused is told: its lease is not the task's (``state``
    None), or the task is in a state the report does not apply to."""
    if state is None:
        return StaleLease(f"task {task_id}: this lease is no longer valid")
    return StaleLease(f"task {task_id} is {state}")


def leased(conn: Connection, task_id: str, token: str, lock: Database | None = None) -> Task:
    """The task, if ``token`` is its lease. With ``lock``, its job is locked first and the
    task read after, so what the caller checks cannot change before it writes."""
    if lock is not None:
        job_id = jobs.job_of_task(conn, task_id)
        if job_id is not None:
            lock.lock_job(conn, job_id)
    task = jobs.get_task(conn, task_id)
    # Bytes, so a token that is not ASCII is a wrong token, not a TypeError.
    if task is None or task.lease_token is None or not secrets.compare_digest(
            task.lease_token.encode(), token.encode()):
        raise StaleLease(f"task {task_id}: this lease is no longer valid")
    return task
