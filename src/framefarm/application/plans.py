"""What the queue is told to plan and how it is set: a job's tasks (:class:`TaskPlan`,
:func:`render_plan`), what a code template's prepare task found (:class:`Planned`), and
the queue's settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from framefarm.queue.states import TaskKind


@dataclasses.dataclass(frozen=True)
class QueueSettings:
    lease_seconds: float = 30.0
    max_attempts: int = 3
    retry_backoff_seconds: float = 2.0
    node_block_failures: int = 2
    max_concurrent_jobs: int = 50
    node_offline_seconds: float = 60.0
    # A job whose every live node is blocked from it is failed once it has stayed so, and
    # unchanged, this long: time for an admin's undrain or a starting node to come in.
    stranded_seconds: float = 10.0


@dataclasses.dataclass(frozen=True)
class TaskPlan:
    kind: TaskKind
    idx: int
    frame_start: int = 0
    frame_end: int = 0
    waiting: bool = False
    # A part shared by every row of a batch (its content key): made by this task, or,
    # ``waiting``, by another row's, whose output this one takes.
    shared_key: str | None = None


@dataclasses.dataclass(frozen=True)
class Planned:
    """What a prepare task found, as the rest of its job: the tasks (indexes from 0, put
    after the prepare task's), the frame count, the rate, and the description its later
    tasks get in the job's options (``composition``), so they need not find it again."""

    plan: Sequence[TaskPlan]
    frames_total: int
    fps: int
    description: Mapping[str, Any]
    size: tuple[int, int]  # the output's, as the job's options make it (what it is priced by)


def render_plan(chunks: Sequence[tuple[int, int]], frames_total: int, *,
                audio_task: bool = True) -> list[TaskPlan]:
    """A render job's tasks: the audio mix (unless the chunks bring their own sound:
    ``audio_task=False``), one per chunk, and the assemble task that waits for them all."""
    return job_plan([TaskPlan(TaskKind.RENDER, 0, a, b) for a, b in chunks], frames_total,
                    audio_task=audio_task)


def job_plan(renders: Sequence[TaskPlan], frames_total: int, *,
             audio_task: bool = True) -> list[TaskPlan]:
    """``renders`` with the audio mix put first and the assemble task last, numbered in
    that order. Tasks are claimed in index order, so the mix (a few seconds for a whole
    video) runs on a node of its own beside the chunks rather than after the last of
    them, where it would hold the assemble step up (docs/scaling.md)."""
    plans = [TaskPlan(TaskKind.AUDIO, 0, 0, frames_total)] if audio_task else []
    plans += [dataclasses.replace(p, idx=len(plans) + i) for i, p in enumerate(renders)]
    plans.append(TaskPlan(TaskKind.ASSEMBLE, len(plans), 0, frames_total, waiting=True))
    return plans
