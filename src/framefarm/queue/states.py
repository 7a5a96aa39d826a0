"""Every state of jobs and tasks, and how a job's state follows from its tasks.

Task states::

    waiting ──(dependencies succeeded)──► queued ──claim──► running ──complete──► succeeded
                                            ▲                 │ │
                                            │  lease expired  │ └─fail, retries left─► queued
                                            └─────────────────┘   fail, none left ──► failed
    any unfinished task of a cancelled or failed job ───────────────────────────────► cancelled

A job is derived from its tasks by :func:`summarise`; only ``cancelled`` is set on the
job directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence


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


class JobState(enum.StrEnum):
    QUEUED = "queued"
    """No task has started yet."""
    RUNNING = "running"
    """At least one task started and none failed for good."""
    SUCCEEDED = "succeeded"
    """Every task succeeded; the export exists."""
    FAILED = "failed"
    """A task failed for good; ``error`` and ``failed_step`` say what and where."""
    CANCELLED = "cancelled"
    """Cancelled by its owner."""


FINISHED_JOB = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
UNFINISHED_TASK = (TaskState.WAITING, TaskState.QUEUED, TaskState.RUNNING)

# How much of a render job each kind of task counts for, in percent.
_WEIGHTS = {"render": 90.0, "audio": 5.0, "assemble": 5.0, "snapshot": 100.0}


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
    now: dt.datetime,
) -> Summary:
    """A job's state, step, progress and ETA from its tasks."""
    renders = [t for t in tasks if t.kind in ("render", "snapshot")]
    frames_total = sum(t.frame_end - t.frame_start for t in renders)
    frames_done = sum(
        t.frame_end - t.frame_start if t.state == TaskState.SUCCEEDED
        else min(t.frames_done, t.frame_end - t.frame_start) for t in renders
    )
    states = {t.state for t in tasks}
    if cancelled:
        state = JobState.CANCELLED
    elif TaskState.FAILED in states:
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
        if kind in ("render", "snapshot"):
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


def _step(tasks: Sequence[TaskView], state: JobState) -> str:
    if state in FINISHED_JOB:
        return "done" if state == JobState.SUCCEEDED else state.value
    unfinished = [t.kind for t in tasks if t.state in UNFINISHED_TASK]
    for kind in ("snapshot", "render", "audio", "assemble"):
        if kind in unfinished:
            return kind
    return "queued"
