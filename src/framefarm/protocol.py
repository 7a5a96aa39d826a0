"""The node protocol's vocabulary: every body a render node and the API's ``/internal``
routes exchange, defined once and imported by both sides.

Requests forbid unknown fields (a typo is an error, not a silently dropped value);
responses ignore them, so a node keeps working against a newer server that says more.
This module sits low in the layering: it imports only pydantic and the standard library.

The routes, for reference (``{id}`` is a task id; every task write carries the lease):

=======================================  ===========================  =====================
route                                    request                      response
=======================================  ===========================  =====================
POST /internal/nodes/register            RegisterRequest              RegisterResponse
POST /internal/nodes/heartbeat           NodeHeartbeatRequest         NodeHeartbeatResponse
POST /internal/nodes/drain               (none)                       DrainResponse
POST /internal/tasks/claim               (none)                       ClaimedTask, or 204
POST /internal/tasks/{id}/heartbeat      TaskHeartbeatRequest         TaskHeartbeatResponse
GET  /internal/tasks/{id}/blobs/{sha}    LEASE_HEADER                 the file
GET  /internal/tasks/{id}/inputs         LEASE_HEADER                 list[InputItem]
GET  /internal/tasks/{id}/inputs/{idx}   LEASE_HEADER                 the file
POST /internal/tasks/{id}/upload-url     UploadUrlRequest, ?ext&size  UploadUrlResponse
POST /internal/tasks/{id}/upload-complete  UploadCompleteRequest      UploadCompleteResponse
PUT  /internal/tasks/{id}/output         LEASE_HEADER, ?ext, bytes    OutputUploaded
POST /internal/tasks/{id}/complete       CompleteRequest              CompleteResponse
POST /internal/tasks/{id}/fail           FailRequest                  FailResponse
=======================================  ===========================  =====================
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

LEASE_HEADER = "X-Lease-Token"  # the lease of the task a GET or the output PUT is for
MAX_OUTPUT_BYTES = 8 * 1024**3  # a task's output
MAX_ERROR_CHARS = 20000  # a failure report's message; the agent sends its tail
MAX_CPU_SECONDS = 7 * 24 * 3600.0 * 256  # a week on 256 cores: more is not a measurement

# The ``ext`` query parameter of upload-url and the output PUT (mov and mkv: a code
# template's parts, which carry their range's sound beside the video).
OutputExtension = Literal["mp4", "webm", "m4a", "gif", "png", "jpeg", "mov", "mkv"]


class TaskKind(enum.StrEnum):
    RENDER = "render"  # a chunk of frames
    AUDIO = "audio"  # the job's mixed sound
    ASSEMBLE = "assemble"  # joins the chunks and the audio into the export
    SNAPSHOT = "snapshot"  # one frame as a still image
    # A code template's first task: prepare the project, then say its size, rate and
    # length (the job's other tasks are planned from that answer).
    PREPARE = "prepare"


class Command(enum.StrEnum):
    """What a heartbeat's answer tells the node to do."""

    CONTINUE = "continue"
    CANCEL = "cancel"  # task heartbeat: the job was cancelled, stop and keep nothing
    DRAIN = "drain"  # node heartbeat: finish the task in hand, claim no more


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LeaseRequest(Request):
    lease_token: str


# -- nodes ----------------------------------------------------------------------------------


class RegisterRequest(Request):
    token: str
    name: str = Field(min_length=1, max_length=200)
    capabilities: dict[str, Any] = Field(default_factory=dict)


class RegisterResponse(Response):
    node_id: str
    secret: str
    heartbeat_seconds: float
    lease_seconds: float


class NodeHeartbeatRequest(Request):
    capabilities: dict[str, Any] | None = None


class NodeHeartbeatResponse(Response):
    command: Command


class DrainResponse(Response):
    ok: bool


# -- claiming -------------------------------------------------------------------------------


class ClaimedTask(Response):
    """One task with its lease and everything needed to run it."""

    task_id: str
    job_id: str
    kind: TaskKind
    idx: int
    frames: tuple[int, int] = Field(description="[start, end): the frames this task covers")
    lease_token: str
    lease_expires_at: dt.datetime
    document: dict[str, Any]
    options: dict[str, Any]
    assets: dict[str, str] = Field(description="file name in the document -> its SHA-256")
    frames_total: int
    asset_urls: dict[str, str | None] = Field(
        default_factory=dict,
        description="SHA-256 -> a presigned URL to fetch it from; null: through the API")
    limits: dict[str, Any] | None = Field(
        None, description="the document limits the job was validated with (Limits fields); "
        "null: the node's own")
    engine: str = Field("framefarm", description="what renders it: framefarm (a JSON "
                        "document) or remotion (a code template)")
    fps: int | None = Field(None, description="the job's frame rate, once known")
    owner: str | None = Field(None, description="the tenant whose job it is: a node runs "
                              "each tenant's code templates as a sandbox user of its own")

    @field_serializer("lease_expires_at")
    def _iso(self, value: dt.datetime) -> str:
        # The wire has always carried datetime.isoformat() ("+00:00", not "Z").
        return value.isoformat()


class InputItem(Response):
    """A finished part or the audio an assemble task joins."""

    idx: int
    kind: TaskKind
    frames: tuple[int, int]
    url: str | None = Field(None, description="presigned URL; null: GET .../inputs/{idx}")


# -- progress -------------------------------------------------------------------------------


class Sample(Request):
    load: float | None = Field(None, ge=0, description="1-minute load average")
    memory_used: int | None = Field(None, ge=0, description="bytes in use on the machine")


class TaskHeartbeatRequest(LeaseRequest):
    frames_done: int | None = Field(None, ge=0)
    preview_jpeg: str | None = Field(None, description="base64 JPEG, at most 256 KiB")
    sample: Sample | None = None


class TaskHeartbeatResponse(Response):
    command: Command


# -- output ---------------------------------------------------------------------------------


class UploadUrlRequest(LeaseRequest):
    """The body of upload-url; ``ext`` and ``size`` travel as query parameters."""


class Multipart(Response):
    upload_id: str
    part_size: int
    urls: list[str] = Field(description="one presigned PUT per part, in order")


class UploadUrlResponse(Response):
    """Where to put the output: ``multipart`` (PUT each part, then upload-complete), ``url``
    (one PUT), or neither (local storage: PUT it to /internal/tasks/{id}/output)."""

    output_key: str
    url: str | None = None
    multipart: Multipart | None = None


class UploadCompleteRequest(LeaseRequest):
    output_key: str
    upload_id: str = Field(min_length=1, max_length=1024)
    etags: list[str] = Field(min_length=1, max_length=10_000,
                             description="each part's ETag, in order")
    size: int = Field(ge=1, le=MAX_OUTPUT_BYTES)


class OutputUploaded(Response):
    output_key: str
    size: int


class UploadCompleteResponse(OutputUploaded):
    pass


# -- the end of a task ----------------------------------------------------------------------


class MediaInfo(Request):
    """The finished export, as the node that assembled it probed it."""

    size: int = Field(ge=0, le=MAX_OUTPUT_BYTES, description="bytes")
    duration: float = Field(ge=0, description="seconds")
    width: int = Field(ge=0)
    height: int = Field(ge=0)
    codec: str = Field(max_length=100, description="the video codec; empty: none")
    format: str = Field(max_length=100, description="the file's extension, e.g. mp4")


class Description(Request):
    """What a prepare task found: the composition's own size (before any scale), rate
    and length."""

    id: str = Field(max_length=200)
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    fps: int = Field(ge=1, le=240)
    frames: int = Field(ge=1)


class CompleteRequest(LeaseRequest):
    output_key: str | None = None
    media: MediaInfo | None = Field(None, description="an assemble task's export")
    description: Description | None = Field(None, description="a prepare task's answer")
    cpu_seconds: float | None = Field(
        None, ge=0, le=MAX_CPU_SECONDS, description="CPU-seconds the node (its process and "
        "its children) spent on the task; left out by nodes that do not measure it")


class CompleteResponse(Response):
    ok: bool
    job_state: str


class FailRequest(LeaseRequest):
    error: str = Field(max_length=MAX_ERROR_CHARS)
    permanent: bool = Field(False, description="the input is invalid: retrying cannot help")
    step: str | None = None
    cpu_seconds: float | None = Field(None, ge=0, le=MAX_CPU_SECONDS,
                                      description="CPU-seconds spent on the failed attempt")


class FailResponse(Response):
    ok: bool
    job_state: str
