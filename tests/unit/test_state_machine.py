"""The state machine: every (state, event) pair of tasks and jobs, allowed or refused, and
the states the queue derives for a job are always reachable through the table."""

from __future__ import annotations

import itertools

import pytest

from framefarm.queue import states
from framefarm.queue.errors import IllegalTransition
from framefarm.queue.states import JobEvent, JobState, TaskEvent, TaskState

T, E = TaskState, TaskEvent
TASK_ALLOWED = {
    (T.WAITING, E.READY): T.QUEUED,
    (T.WAITING, E.CANCEL): T.CANCELLED,
    (T.WAITING, E.SHARE): T.SUCCEEDED,  # another row of its batch made the shared part
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
    (T.CANCELLED, E.HEARTBEAT): T.CANCELLED,
}
J, JE = JobState, JobEvent
JOB_ALLOWED = {
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


@pytest.mark.parametrize(("state", "event"), list(itertools.product(TaskState, TaskEvent)))
def test_every_task_pair(state: TaskState, event: TaskEvent) -> None:
    expected = TASK_ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition, match=f"{state.value} task cannot"):
            states.task_transition(state, event)
    else:
        assert states.task_transition(state, event) == expected


@pytest.mark.parametrize(("state", "event"), list(itertools.product(JobState, JobEvent)))
def test_every_job_pair(state: JobState, event: JobEvent) -> None:
    expected = JOB_ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition, match=f"{state.value} job cannot"):
            states.job_transition(state, event)
    else:
        assert states.job_transition(state, event) == expected


def test_the_tables_are_the_module_tables() -> None:
    assert states.TASK_TRANSITIONS == TASK_ALLOWED
    assert states.JOB_TRANSITIONS == JOB_ALLOWED


def test_finished_states_allow_nothing_but_what_the_table_says() -> None:
    for state in (T.SUCCEEDED, T.FAILED):
        assert [e for e in TaskEvent if (state, e) in states.TASK_TRANSITIONS] == []
    assert [e for e in JobEvent if (J.SUCCEEDED, e) in states.JOB_TRANSITIONS] == []


def test_bulk_moves_have_one_target() -> None:
    assert states.task_sources(TaskEvent.CANCEL) == (
        (T.WAITING, T.QUEUED, T.RUNNING), T.CANCELLED)
    assert states.task_sources(TaskEvent.READY) == ((T.WAITING,), T.QUEUED)


@pytest.mark.parametrize(("old", "derived"), list(itertools.product(JobState, JobState)))
def test_derived_job_states_go_through_the_table(old: JobState, derived: JobState) -> None:
    """What summarise() says a job is now, from what it was: allowed exactly when the
    table has the event that leads there."""
    event = states.job_event(old, derived)
    allowed = (old, event) in states.JOB_TRANSITIONS
    if allowed:
        assert states.job_transition(old, event) == derived
    else:
        with pytest.raises(IllegalTransition):
            states.job_transition(old, event)
    # A finished job never moves again. A queued job cannot succeed at once: the claim of
    # its first task already made it running.
    assert allowed == (old not in states.FINISHED_JOB
                       and (old, derived) != (JobState.QUEUED, JobState.SUCCEEDED))
