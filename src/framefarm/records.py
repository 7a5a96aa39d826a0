"""What the data layer hands to the layers above: frozen, typed records, one per row kind.

A record is built from a row with :func:`load`, which takes the fields the record declares
and ignores the rest (secret hashes, for one, never leave the repositories).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

R = TypeVar("R")


def load(cls: type[R], row: Mapping[str, Any] | Any) -> R:
    """``row``: a mapping of column names (a SQLAlchemy RowMapping)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: row[name] for name in names})


@dataclasses.dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    max_concurrent_jobs: int | None
    created_at: dt.datetime
    plan: dict[str, Any] | None = None  # limits and pricing (application/usage.py:Plan)
    credit_balance: int | None = None  # None: not metered in credits


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who an API key belongs to."""

    tenant_id: str
    admin: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Project:
    id: str
    tenant_id: str
    name: str
    document: Any
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Asset:
    project_id: str
    name: str
    sha256: str
    size: int
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    id: str
    tenant_id: str
    name: str
    project_id: str | None
    document: Any
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """One template rendered for many rows of data: a job per good row."""

    id: str
    tenant_id: str
    template_id: str
    project_id: str | None
    mode: str
    options: dict[str, Any]
    priority: int
    rows_total: int
    skipped: list[dict[str, Any]]
    idempotency_key: str | None
    notify_url: str | None
    created_at: dt.datetime
    cancelled_at: dt.datetime | None
    finished_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    id: str
    tenant_id: str
    kind: str
    engine: str
    state: str
    step: str
    priority: int
    project_id: str | None
    batch_id: str | None
    batch_row: int | None
    document: Any
    options: dict[str, Any]
    assets: dict[str, str]
    limits: dict[str, Any] | None
    frames_total: int
    fps: int
    attempt: int
    retry_of: str | None
    idempotency_key: str | None
    notify_url: str | None
    error: str | None
    failed_step: str | None
    preview_key: str | None
    result_key: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    id: str
    job_id: str
    tenant_id: str
    kind: str
    engine: str
    idx: int
    frame_start: int
    frame_end: int
    state: str
    priority: int
    failures: int
    requeues: int
    not_before: dt.datetime
    node_id: str | None
    last_failed_node: str | None
    lease_token: str | None
    lease_expires_at: dt.datetime | None
    frames_done: int
    output_key: str | None
    error: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    shared_key: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class LogLine:
    id: int
    job_id: str
    at: dt.datetime
    level: str
    message: str
    task_id: str | None
    node_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    capabilities: dict[str, Any]
    draining: bool
    last_heartbeat: dt.datetime | None
    current_task_id: str | None
    tasks_done: int
    tasks_failed: int
    crashes: int
    last_error: str | None
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    at: dt.datetime
    load: float | None
    memory_used: int | None
    task_id: str | None
    frames_done: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Crash:
    at: dt.datetime
    kind: str
    task_id: str | None
    job_id: str | None
    error: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Export:
    id: str
    tenant_id: str
    job_id: str
    storage_key: str
    size: int
    duration: float
    width: int
    height: int
    codec: str
    format: str
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    tenant_id: str
    url: str
    secret: str
    events: list[str]
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    tenant_id: str
    job_id: str
    webhook_id: str | None
    url: str
    event: str
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One change of a tenant's credit balance."""

    id: int
    tenant_id: str
    at: dt.datetime
    amount: int
    kind: str  # grant | reserve | settle | refund | adjust
    job_id: str | None
    batch_id: str | None
    balance_after: int
    note: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class JobUsage:
    """What one job was estimated at, rendered, used and was charged."""

    job_id: str
    tenant_id: str
    day: dt.date
    width: int
    height: int
    fps: int
    frames_estimated: int
    frames: int
    output_seconds: float
    cpu_render: float
    cpu_audio: float
    cpu_assemble: float
    cpu_snapshot: float
    bytes_stored: int
    credits_per_second: float
    credits_reserved: int
    credits_charged: int
    credits_refunded: int
    settled_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class UsageDay:
    """One tenant's usage on one UTC day (of the jobs submitted that day)."""

    tenant_id: str
    day: dt.date
    jobs: int
    frames: int
    output_seconds: float
    cpu_render: float
    cpu_audio: float
    cpu_assemble: float
    cpu_snapshot: float
    bytes_stored: int
    credits_charged: int
    credits_refunded: int
