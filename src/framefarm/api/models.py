"""The API's vocabulary: the bodies it takes and the answers it gives, as pydantic models.

Shared by the routes (``api/``) and the Python client (:mod:`framefarm.client`), so it
imports pydantic and the document's named choices only: no FastAPI, no Starlette, nothing
of the service. Request bodies are strict (JSON types as the schema says, unknown fields
refused); answers take what the server sends and ignore fields a newer server adds.

Times in answers are aware datetimes, written back exactly as the server formats them
(``datetime.isoformat()``), so a route's JSON is the same with or without its model.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from framefarm.document import choices

# -- requests ---------------------------------------------------------------------------------


class Body(BaseModel):
    # Strict: JSON types as the schema says (no "1" for 1, no 0 for false).
    model_config = ConfigDict(extra="forbid", strict=True)


def _integral(value: Any) -> Any:
    """JSON has one kind of number: 3.0 is the integer 3 (JSON Schema says so too); 3.5
    stays a float, for the strict integer check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field of a request body: strict, except that a JSON number with no fraction
# counts. Bounds of an optional one go inside (Annotated[Annotated[int, Field(ge=0)],
# WHOLE]): outside, pydantic leaves them out of the JSON Schema.
WHOLE = BeforeValidator(_integral)
JsonInt = Annotated[int, WHOLE]


class ProjectIn(Body):
    """``POST /v1/projects`` and ``PATCH /v1/projects/{id}``."""

    name: str = Field(min_length=1, max_length=200)


class TemplateIn(Body):
    name: str = Field(min_length=1, max_length=200)
    document: dict[str, Any]
    project_id: str | None = None


class TemplateUpdate(Body):
    """``PUT /v1/templates/{id}``: a new name, a new document, or both (a field left out
    or null stays as it is)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    document: dict[str, Any] | None = None


class RenderOptions(Body):
    quality: choices.Quality | None = None
    size: choices.SizePreset | None = None
    fps: choices.Fps | None = None
    format: Literal["mp4", "webm", "gif"] | None = None


class TemplateRenderIn(Body):
    data: dict[str, Any] = Field(default_factory=dict)
    options: RenderOptions = Field(default_factory=RenderOptions)
    priority: JsonInt = Field(0, ge=-100, le=100)
    notify_url: str | None = None
    idempotency_key: str | None = None


class RenderIn(Body):
    document: dict[str, Any] | None = None
    project_id: str | None = None
    template_id: str | None = None
    data: dict[str, Any] | None = None
    options: RenderOptions = Field(default_factory=RenderOptions)
    priority: JsonInt = Field(0, ge=-100, le=100)
    notify_url: str | None = Field(None, max_length=2000)
    idempotency_key: str | None = Field(None, max_length=200)


class SnapshotIn(Body):
    document: dict[str, Any] | None = None
    project_id: str | None = None
    template_id: str | None = None
    data: dict[str, Any] | None = None
    frame: Annotated[Annotated[int, Field(ge=0)], WHOLE] | None = None
    at: float | None = Field(None, ge=0)
    scene: Annotated[Annotated[int, Field(ge=0)], WHOLE] | None = None
    format: Literal["png", "jpeg"] = "png"
    wait: float = Field(30, ge=0, le=120, description="seconds to wait for the frame")


class ExtendIn(Body):
    days: float = Field(gt=0, le=365)


# -- answers ----------------------------------------------------------------------------------


class Answer(BaseModel):
    # Lax (ISO strings become datetimes), and tolerant of fields a newer server adds.
    model_config = ConfigDict(extra="ignore")


Time = Annotated[dt.datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str,
                                              when_used="json")]
JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: tuple[JobStateName, ...] = ("succeeded", "failed", "cancelled")


class ErrorDetail(Answer):
    code: str = Field(description="stable, machine-readable: not_found, too_large, ...")
    message: str = Field(description="for a person")
    details: Any = Field(None, description="more, by code: e.g. the JSON paths at fault")


class ErrorBody(Answer):
    """Every error answer of the API."""

    error: ErrorDetail


class Me(Answer):
    """``GET /v1/me``: whom the API key belongs to."""

    tenant_id: str
    tenant: str = Field(description="the tenant's name")
    admin: bool = Field(description="whether this key may call /v1/admin")


class Project(Answer):
    id: str
    name: str
    created_at: Time


class ProjectDetail(Answer):
    id: str
    name: str
    document: dict[str, Any] | None
    assets: list[str] = Field(description="the names of its assets")
    updated_at: Time


class DocumentStored(Answer):
    id: str
    ok: bool


class UploadedAsset(Answer):
    name: str
    sha256: str
    size: int


class Asset(Answer):
    name: str
    sha256: str
    size: int
    created_at: Time


class TemplateSummary(Answer):
    id: str
    name: str
    variables: dict[str, dict[str, Any]]


class Template(Answer):
    id: str
    name: str
    project_id: str | None
    variables: dict[str, dict[str, Any]]
    scenes: int
    document: dict[str, Any]


class ScenePreview(Answer):
    scene: int
    frame: int
    job_id: str | None
    cached: bool


class Export(Answer):
    id: str
    job_id: str
    size: int
    duration: float
    width: int
    height: int
    codec: str
    format: str
    created_at: Time
    expires_at: Time
    file_url: str


class Frames(Answer):
    done: int
    total: int


class JobCredits(Answer):
    """A job's credits: ``reserved`` when it was queued; ``charged`` and ``refunded``
    (reserved = charged + refunded) once it finished and ``settled``."""

    reserved: int
    charged: int
    refunded: int
    settled: bool
    credits_per_second: float


class Job(Answer):
    """A render (or snapshot) job, its progress and its export."""

    id: str
    kind: Literal["render", "snapshot"]
    state: JobStateName
    step: str
    percent: float
    eta_seconds: float | None
    frames: Frames
    priority: int
    attempt: int
    retry_of: str | None
    project_id: str | None
    options: dict[str, Any]
    error: str | None
    failed_step: str | None
    preview_url: str | None
    export: Export | None
    created_at: Time
    started_at: Time | None
    finished_at: Time | None
    credits: JobCredits | None = Field(None, description="null: queued before usage was "
                                       "recorded")

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class JobPage(Answer):
    """One page of a list, newest first."""

    items: list[Job]
    next: str | None = Field(description="pass as ``before`` for the next page; null when "
                             "there is none")
    has_more: bool = Field(description="whether another page exists")


class JobProgress(Answer):
    id: str
    state: JobStateName
    step: str
    percent: float
    eta_seconds: float | None
    frames: Frames


class LogLine(Answer):
    at: Time
    level: str
    message: str
    task_id: str | None
    node_id: str | None


class Link(Answer):
    url: str
    expires_at: int = Field(description="Unix time")


# -- batches: one template, many rows of data (additive) -------------------------------------

BatchStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class BatchIn(Body):
    """``POST /v1/templates/{template_id}/batches`` with a JSON body (a CSV upload takes
    the same settings as query parameters)."""

    rows: list[Any] = Field(min_length=1, description="one object (variable -> value) per "
                            "row; row 1 is the first")
    mode: Literal["skip", "refuse"] = Field(
        "skip", description="skip: queue the good rows and report the bad ones; refuse: "
        "queue nothing while a row is bad")
    options: RenderOptions = Field(default_factory=RenderOptions)
    priority: JsonInt = Field(0, ge=-100, le=100)
    notify_url: str | None = Field(None, max_length=2000, description="called when each "
                                   "row's render finishes")
    idempotency_key: str | None = Field(None, max_length=200)


class SkippedRow(Answer):
    row: int = Field(description="1 is the first data row")
    field: str | None = Field(description="the variable at fault; null for the whole row")
    message: str


class BatchCounts(Answer):
    """The rows' current jobs (a retried row counts its newest attempt) by state."""

    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class Batch(Answer):
    """A batch: the rows given, queued and skipped, its row jobs by state, its progress."""

    id: str
    template_id: str
    project_id: str | None
    state: BatchStateName = Field(description="failed: finished with a failed or cancelled "
                                  "row; cancelled: cancelled by its owner")
    mode: Literal["skip", "refuse"]
    options: dict[str, Any]
    priority: int
    rows_total: int = Field(description="every row given, good or bad")
    rows_queued: int = Field(description="rows with a job")
    rows_skipped: int
    skipped: list[SkippedRow]
    counts: BatchCounts
    percent: float = Field(description="frames done over frames total, of the rows queued")
    frames: Frames
    created_at: Time
    cancelled_at: Time | None
    finished_at: Time | None = Field(description="when its last row finished")

    @property
    def finished(self) -> bool:
        return self.counts.queued + self.counts.running == 0


class BatchPage(Answer):
    """One page of batches, newest first."""

    items: list[Batch]
    next: str | None = Field(description="pass as ``before`` for the next page; null when "
                             "there is none")
    has_more: bool


class BatchJob(Job):
    """A row's current job, with its row number."""

    row: int


class BatchJobPage(Answer):
    """One page of a batch's row jobs, by row number."""

    items: list[BatchJob]
    next: int | None = Field(description="pass as ``after`` for the next page; null when "
                             "there is none")
    has_more: bool


class BatchProgress(Answer):
    """A batch's live event (``GET /v1/batches/{id}/events``)."""

    id: str
    state: BatchStateName
    counts: BatchCounts
    percent: float
    frames: Frames
    rows_queued: int


class ManifestRow(Answer):
    row: int
    job_id: str | None = Field(description="null for a skipped row")
    state: str = Field(description="the row job's state, or 'skipped'")
    error: str | None
    file: str | None = Field(description="its name in the batch's archive")
    download_url: str | None = Field(description="a signed link to its video")
    download_expires_at: int | None = Field(description="Unix time")


class Manifest(Answer):
    batch_id: str
    rows: list[ManifestRow]


# -- usage, plans and credits -------------------------------------------------------------------


class CpuSeconds(Answer):
    """Node CPU-seconds by step."""

    render: float
    audio: float
    assemble: float
    snapshot: float


class UsageDay(Answer):
    """One UTC day's usage of the jobs submitted that day: what they rendered (frames,
    output seconds), the node CPU they took, the bytes of their exports, their credits."""

    tenant_id: str
    day: dt.date
    jobs: int
    frames: int
    output_seconds: float
    cpu_seconds: CpuSeconds
    bytes_stored: int
    credits_charged: int
    credits_refunded: int


class Plan(Answer):
    """A tenant's limits (null: none) and prices."""

    max_concurrent_jobs: int | None = None
    output_minutes_per_month: float | None = None
    storage_bytes: int | None = None
    max_resolution: choices.SizePreset | None = None
    credits_per_second: float = 0.0
    tiers: dict[choices.SizePreset, float] = Field(default_factory=dict)
    code_templates: bool = False


class Usage(Answer):
    """``GET /v1/usage``: the tenant's days from ``from`` to ``to`` (both included), their
    totals, its credit balance (null: not metered) and its plan."""

    tenant_id: str
    from_: dt.date = Field(alias="from")
    to: dt.date
    days: list[UsageDay]
    totals: UsageDay
    balance: int | None
    plan: Plan


class PlanIn(Body):
    """``PUT /v1/admin/tenants/{id}/plan``: the whole plan (a field left out: no limit)."""

    max_concurrent_jobs: Annotated[Annotated[int, Field(ge=1, le=100_000)], WHOLE] | None = None
    output_minutes_per_month: float | None = Field(None, ge=0)
    storage_bytes: Annotated[Annotated[int, Field(ge=0)], WHOLE] | None = None
    max_resolution: choices.SizePreset | None = None
    credits_per_second: float = Field(0.0, ge=0, le=1_000_000)
    tiers: dict[choices.SizePreset, Annotated[float, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=dict, description="size preset -> credits per second for outputs "
        "whose shorter side is at most the preset's")
    code_templates: bool = Field(False, description="may render code templates (Remotion "
                                 "projects: the tenant's code runs on the nodes)")


class CreditsIn(Body):
    """``POST /v1/admin/tenants/{id}/credits``: a grant (amount > 0) or an adjustment
    (amount < 0; the balance never goes below zero)."""

    amount: Annotated[int, WHOLE] = Field(ge=-10**15, le=10**15)
    note: str | None = Field(None, max_length=500)


class LedgerEntry(Answer):
    id: int
    tenant_id: str
    at: Time
    amount: int
    kind: Literal["grant", "reserve", "settle", "refund", "adjust"]
    job_id: str | None
    batch_id: str | None
    balance_after: int
    note: str | None
