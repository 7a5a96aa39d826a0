"""Every state of jobs and tasks, every event that moves them, and the one table of which
(state, event) pairs are allowed. Nothing else in framefarm decides a state change:
repositories write what :func:`task_transition` and :func:`job_transition` return, and an
event a state does not allow is refused here with :class:`IllegalTransition`.

Tasks::

    waiting ──ready──► queued ──claim──► running ──complete──► succeeded
                         ▲                 │ ▲
                         │                 │ └─ heartbeat, progress
                         ├────── expire ───┤    (the lease ran out: spends no retry)
                         ├────── requeue ──┤    (an admin released the node)
                         └────── retry ────┤    (a reported failure with retries left)
                                           └─ fail ──────────────► failed
    waiting | queued | running ──cancel──► cancelled ◄─ heartbeat (the node is told to stop)

Jobs follow from their tasks (:func:`summarise`), through the same kind of table::

    queued ──start──► running ──succeed──► succeeded
      │  ▲              │  └─ progress, block_node
      │  └── stall ─────┤     (every started task was requeued)
      ├──── fail ───────┴──► failed ──retry──► (a new job; this one stays failed)
      │     (a task failed for good, or no live node may take its queued tasks)
      └──── cancel ─────────► cancelled ──retry──► (a new job)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from framefarm.protocol import TaskKind as TaskKind  # shared with the nodes
from framefarm.queue.errors import IllegalTransition


class TaskState(enum.StrEnum):
    WAITING = "waiting"
    """Depends on tasks that have not succeeded yet (the assemble task)."""
    QUEUED = "queued"
    """Ready; a node may claim it once ``not_before`` has passed."""
    RUNNING = "running"
    """Leased to a node until ``lease_expires_at``; its writes must carry the lease token."""
    SUCCEEDED = "succeeded"
    """Done; its output is in storage under ``output_key``."""
    FAILED = "failed"
    """Failed for good: out of retries, or the input is invalid."""
    CANCELLED = "cancelled"
    """Its job was cancelled or failed; a node still running it is told to stop."""


class TaskEvent(enum.StrEnum):
    READY = "ready"
    """Every task it depends on succeeded."""
    CLAIM = "claim"
    """A node took it with a fresh lease."""
    HEARTBEAT = "heartbeat"
    """The node extended its lease."""
    PROGRESS = "progress"
    """The node reported frames done or a preview."""
    COMPLETE = "complete"
    """The node finished it and uploaded its output."""
    FAIL = "fail"
    """A failure for good: invalid input, or the last retry spent."""
    RETRY = "retry"
    """A reported failure with retries left: queued again, after a backoff."""
    EXPIRE = "expire"
    """The lease ran out without a heartbeat (the node died): queued again, no retry spent."""
    REQUEUE = "requeue"
    """An admin released or forgot its node: queued again, no retry spent."""
    CANCEL = "cancel"
    """Its job was cancelled or failed."""
    SHARE = "share"
    """The part it waited for, made once for every row of its batch, is there."""


class JobState(enum.StrEnum):
    QUEUED = "queued"
    """No task has started yet (or every started one was requeued)."""
    RUNNING = "running"
    """At least one task started and none failed for good."""
    SUCCEEDED = "succeeded"
    """Every task succeeded; the export exists."""
    FAILED = "failed"
    """A task failed for good, or no live node may take its queued tasks; ``error`` and
    ``failed_step`` say what and where."""
    CANCELLED = "cancelled"
    """Cancelled by its owner."""


class JobEvent(enum.StrEnum):
    START = "start"
    """A first task is running."""
    PROGRESS = "progress"
    """Tasks moved on; the state stays."""
    STALL = "stall"
    """No task is running or done any more: every started one was requeued."""
    SUCCEED = "succeed"
    """The last task succeeded."""
    FAIL = "fail"
    """A task failed for good, or every live node is blocked from its queued tasks."""
    CANCEL = "cancel"
    """Its owner cancelled it."""
    RETRY = "retry"
    """A new attempt was submitted from it; it keeps its state."""
    BLOCK_NODE = "block_node"
    """A node failed it too often and may not take its tasks any more."""


S = TypeVar("S", TaskState, JobState)
Ev = TypeVar("Ev", TaskEvent, JobEvent)

T, E = TaskState, TaskEvent
TASK_TRANSITIONS: dict[tuple[TaskState, TaskEvent], TaskState] = {
    (T.WAITING, E.READY): T.QUEUED,
    (T.WAITING, E.CANCEL): T.CANCELLED,
    (T.WAITING, E.SHARE): T.SUCCEEDED,
    (T.QUEUED, E.CLAIM): T.RUNNING,
    (T.QUEUED, E.CANCEL): T.CANCELLED,
    (T.RUNNING, E.HEARTBEAT): T.RUNNING,
    (T.RUNNING, E.PROGRESS): T.RUNNING,
    (T.RUNNING, E.COMPLETE): T.SUCCEEDED,
    (T.RUNNING, E.FAIL): T.FAILED,
    (T.RUNNING, E.RETRY): T.QUEUED,
    (T.RUNNING, E.EXPIRE): T.QUEUED,
    (T.RUNNING, E.REQUEUE): T.QUEUED,
    (T.RUNNING, E.CANCEL): T.CANCELLED,
    # A node still running a cancelled task hears 'cancel' at its next heartbeat.
    (T.CANCELLED, E.HEARTBEAT): T.CANCELLED,
}

J, JE = JobState, JobEvent
JOB_TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
    (J.QUEUED, JE.START): J.RUNNING,
    (J.QUEUED, JE.PROGRESS): J.QUEUED,
    (J.QUEUED, JE.FAIL): J.FAILED,
    (J.QUEUED, JE.CANCEL): J.CANCELLED,
    (J.QUEUED, JE.BLOCK_NODE): J.QUEUED,
    (J.RUNNING, JE.PROGRESS): J.RUNNING,
    (J.RUNNING, JE.STALL): J.QUEUED,
    (J.RUNNING, JE.SUCCEED): J.SUCCEEDED,
    (J.RUNNING, JE.FAIL): J.FAILED,
    (J.RUNNING, JE.CANCEL): J.CANCELLED,
    (J.RUNNING, JE.BLOCK_NODE): J.RUNNING,
    (J.FAILED, JE.RETRY): J.FAILED,
    (J.CANCELLED, JE.RETRY): J.CANCELLED,
}
del T, E, J, JE

FINISHED_JOB = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
UNFINISHED_TASK = (TaskState.WAITING, TaskState.QUEUED, TaskState.RUNNING)


def task_transition(state: str, event: TaskEvent) -> TaskState:
    """The state a task in ``state`` moves to on ``event``; refused if the table says no."""
    return _move(TASK_TRANSITIONS, TaskState(state), event, "task")


def job_transition(state: str, event: JobEvent) -> JobState:
    """The state a job in ``state`` moves to on ``event``; refused if the table says no."""
    return _move(JOB_TRANSITIONS, JobState(state), event, "job")


def _move(table: Mapping[tuple[S, Ev], S], state: S, event: Ev, what: str) -> S:
    found = table.get((state, event))
    if found is None:
        raise IllegalTransition(f"a {state} {what} cannot {event}")
    return found


def task_sources(event: TaskEvent) -> tuple[tuple[TaskState, ...], TaskState]:
    """Every state that allows ``event``, and the one state they all move to: for updates
    of many tasks at once (``WHERE state IN sources``)."""
    moves = {src: dst for (src, ev), dst in TASK_TRANSITIONS.items() if ev == event}
    targets = set(moves.values())
    assert len(targets) == 1, f"{event} has several targets"
    return tuple(moves), targets.pop()


_JOB_EVENT_TO = {JobState.RUNNING: JobEvent.START, JobState.QUEUED: JobEvent.STALL,
                 JobState.SUCCEEDED: JobEvent.SUCCEED, JobState.FAILED: JobEvent.FAIL,
                 JobState.CANCELLED: JobEvent.CANCEL}


def job_event(old: str, derived: JobState) -> JobEvent:
    """The event by which a job reaches the state its tasks say (``derived``)."""
    return JobEvent.PROGRESS if JobState(old) == derived else _JOB_EVENT_TO[derived]


# How much of a render job each kind of task counts for, in percent.
_WEIGHTS = {TaskKind.RENDER: 90.0, TaskKind.AUDIO: 5.0, TaskKind.ASSEMBLE: 5.0,
            TaskKind.SNAPSHOT: 100.0}  # a prepare task counts nothing: it plans the rest
_FRAME_KINDS = (TaskKind.RENDER, TaskKind.SNAPSHOT)


@dataclasses.dataclass(frozen=True)
class TaskView:
    kind: str
    state: str
    frame_start: int
    frame_end: int
    frames_done: int


@dataclasses.dataclass(frozen=True)
class Summary:
    state: JobState
    step: str
    percent: float
    frames_done: int
    frames_total: int
    eta_seconds: float | None


def summarise(
    tasks: Sequence[TaskView], *, cancelled: bool, started_at: dt.datetime | None,
    now: dt.datetime, failed: bool = False,
) -> Summary:
    """A job's state, step, progress and ETA from its tasks. ``cancelled`` and ``failed``
    say the job itself was moved there (its owner cancelled it; the queue failed it
    because no node may take its tasks), whatever its tasks say."""
    renders = [t for t in tasks if t.kind in _FRAME_KINDS]
    frames_total = sum(t.frame_end - t.frame_start for t in renders)
    frames_done = sum(
        t.frame_end - t.frame_start if t.state == TaskState.SUCCEEDED
        else min(t.frames_done, t.frame_end - t.frame_start) for t in renders
    )
    states = {t.state for t in tasks}
    if cancelled:
        state = JobState.CANCELLED
    elif failed or TaskState.FAILED in states:
        state = JobState.FAILED
    elif tasks and states == {TaskState.SUCCEEDED}:
        state = JobState.SUCCEEDED
    elif states & {TaskState.RUNNING, TaskState.SUCCEEDED}:
        state = JobState.RUNNING
    else:
        state = JobState.QUEUED

    percent = 0.0
    for kind, weight in _WEIGHTS.items():
        group = [t for t in tasks if t.kind == kind]
        if not group:
            continue
        if kind in _FRAME_KINDS:
            share = frames_done / frames_total if frames_total else 0.0
        else:
            share = sum(t.state == TaskState.SUCCEEDED for t in group) / len(group)
        percent += weight * share
    if state == JobState.SUCCEEDED:
        percent = 100.0

    step = _step(tasks, state)
    eta = None
    if state == JobState.RUNNING and started_at and 0 < percent < 100:
        elapsed = (now - started_at).total_seconds()
        eta = elapsed * (100 - percent) / percent
    return Summary(state, step, round(percent, 1), frames_done, frames_total, eta)


def _step(tasks: Iterable[TaskView], state: JobState) -> str:
    if state in FINISHED_JOB:
        return "done" if state == JobState.SUCCEEDED else state.value
    unfinished = {t.kind for t in tasks if t.state in UNFINISHED_TASK}
    for kind in (TaskKind.PREPARE, TaskKind.SNAPSHOT, TaskKind.RENDER, TaskKind.AUDIO,
                 TaskKind.ASSEMBLE):
        if kind in unfinished:
            return kind.value
    return "queued"
