"""A fake API for the render node's tests: an ``httpx.MockTransport`` handler that speaks
the node protocol through :mod:`framefarm.protocol` (so every body the agent sends is
validated against the shared models), records each request, and can be told to answer a
route with errors first. Time is a fake clock that the agent's injected ``sleep`` advances."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx

from framefarm import protocol
from framefarm.protocol import ClaimedTask as Task

NODE_ID, SECRET, TOKEN = "node-1", "s3cret", "enrol-me"
AUTH = f"Bearer {NODE_ID}:{SECRET}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Fault = int | Callable[[httpx.Request], httpx.Response]


class FakeApi:
    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []  # claimed in order, then 204
        self.commands: list[str] = []  # task heartbeat answers, then "continue"
        self.inputs: list[protocol.InputItem] = []
        self.input_files: dict[int, bytes] = {}
        self.upload = protocol.UploadUrlResponse(output_key="")
        self.faults: dict[tuple[str, str], list[Fault]] = {}
        self.seen: list[Seen] = []
        self.stored: dict[str, bytes] = {}

    def fail(self, method: str, path: str, *faults: Fault) -> None:
        """Answer the next requests to ``path`` with these statuses (or raise, or call)."""
        self.faults.setdefault((method, path), []).extend(faults)

    def calls(self, suffix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(suffix)]

    def routes(self) -> list[str]:
        """The requests seen, as "METHOD /path", leaving out task heartbeats (their timing
        is the heartbeat thread's)."""
        return [f"{s.method} {s.path}" for s in self.seen if not s.path.endswith("/heartbeat")]

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        path = request.url.path
        self.seen.append(Seen(request.method, path, dict(request.url.params), request.headers,
                              body))
        queued = self.faults.get((request.method, path))
        if queued:
            fault = queued.pop(0)
            if callable(fault):
                return fault(request)
            return httpx.Response(fault, json={"error": {"code": "x", "message": "down"}})
        if path == "/internal/nodes/register":
            protocol.RegisterRequest.model_validate_json(body)
            return _ok(protocol.RegisterResponse(node_id=NODE_ID, secret=SECRET,
                                                 heartbeat_seconds=60, lease_seconds=120))
        assert request.headers["Authorization"] == AUTH, path
        if path == "/internal/nodes/drain":
            return _ok(protocol.DrainResponse(ok=True))
        if path == "/internal/tasks/claim":
            if not self.tasks:
                return httpx.Response(204)
            return httpx.Response(200, json=self.tasks.pop(0))
        _, _, _, task_id, route, *rest = path.split("/")
        if route == "heartbeat":
            protocol.TaskHeartbeatRequest.model_validate_json(body)
            command = self.commands.pop(0) if self.commands else "continue"
            return httpx.Response(200, json={"command": command})
        if route == "inputs" and not rest:
            return httpx.Response(200, json=[i.model_dump(mode="json") for i in self.inputs])
        if route == "inputs":
            return httpx.Response(200, content=self.input_files[int(rest[0])])
        if route == "upload-url":
            protocol.UploadUrlRequest.model_validate_json(body)
            key = f"jobs/job-1/{task_id}.{request.url.params['ext']}"
            return _ok(self.upload.model_copy(update={"output_key": key}))
        if route == "upload-complete":
            done = protocol.UploadCompleteRequest.model_validate_json(body)
            return _ok(protocol.UploadCompleteResponse(output_key=done.output_key,
                                                       size=done.size))
        if route == "output":
            key = f"jobs/job-1/{task_id}.{request.url.params['ext']}"
            self.stored[key] = body
            return _ok(protocol.OutputUploaded(output_key=key, size=len(body)))
        if route == "complete":
            protocol.CompleteRequest.model_validate_json(body)
            return _ok(protocol.CompleteResponse(ok=True, job_state="succeeded"))
        if route == "fail":
            protocol.FailRequest.model_validate_json(body)
            return _ok(protocol.FailResponse(ok=True, job_state="queued"))
        return httpx.Response(404)


def _ok(model: protocol.Response) -> httpx.Response:
    return httpx.Response(200, json=model.model_dump(mode="json"))


def claimed(kind: str = "render", task_id: str = "task-1", **extra: Any) -> dict[str, Any]:
    """A claim answer as the API sends it today."""
    return {"task_id": task_id, "job_id": "job-1", "kind": kind, "idx": 0, "frames": [0, 10],
            "lease_token": "lease-abcdef12", "document": {"scenes": []},
            "lease_expires_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC).isoformat(),
            "options": {}, "assets": {}, "frames_total": 10, "asset_urls": {},
            "engine": "framefarm", "fps": 30, "owner": "ten-1", **extra}


def task(kind: str = "render", **extra: Any) -> Task:
    return Task.model_validate(claimed(kind, **extra))
