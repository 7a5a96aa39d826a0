"""The render node: register, claim a task, fetch its inputs, render it with the engine,
report progress and previews, upload the output, complete or fail.

It speaks only HTTP to the API (the same protocol for ``serve``'s local nodes and for
remote machines), in the vocabulary of :mod:`framefarm.protocol`, and never holds database
or storage credentials.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pydantic

from framefarm import engine, errors, formats
from framefarm.engines.remotion.project import default_cache
from framefarm.protocol import (
    LEASE_HEADER,
    MAX_ERROR_CHARS,
    ClaimedTask,
    Command,
    CompleteRequest,
    CompleteResponse,
    Description,
    DrainResponse,
    FailRequest,
    FailResponse,
    InputItem,
    OutputUploaded,
    RegisterRequest,
    RegisterResponse,
    TaskHeartbeatRequest,
    TaskHeartbeatResponse,
    TaskKind,
    UploadCompleteRequest,
    UploadCompleteResponse,
    UploadUrlRequest,
    UploadUrlResponse,
)
from framefarm.worker import cpu, document
from framefarm.worker.code import CodeTasks
from framefarm.worker.failures import is_permanent
from framefarm.worker.output import chunks, describe, put
from framefarm.worker.progress import Progress, capabilities, machine_sample
from framefarm.worker.retry import ServerUnavailable, TryAgain, retrying
from framefarm.worker.status import StatusFile

__all__ = ["Agent", "LeaseLost", "ServerUnavailable", "Stalled", "capabilities",
           "machine_sample"]

log = logging.getLogger("framefarm.worker")
M = TypeVar("M", bound=pydantic.BaseModel)
T = TypeVar("T")
_INPUTS = pydantic.TypeAdapter(list[InputItem])
_GATEWAY_ERRORS = (502, 503, 504)  # a proxy in front of a restarting API: worth waiting


class LeaseLost(Exception):
    """The server no longer recognises this task's lease (409): drop the work."""


class Stalled(Exception):
    """The render made no progress for the node's hang limit."""


class Agent:
    def __init__(self, server: str, enrolment_token: str, *, name: str | None = None,
                 workdir: Path | None = None, poll_seconds: float = 1.0,
                 client: httpx.Client | None = None, report_patience: float = 300.0,
                 hang_seconds: float = 300.0, threads: int | None = None,
                 parent_pid: int | None = None, engines: Sequence[str] | None = None,
                 remotion_cache: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.server = server.rstrip("/")
        self.enrolment_token = enrolment_token
        # Containers on one host share its name and often their pid: a random suffix
        # tells their nodes apart in the admin's list.
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        self.workdir = (workdir or Path.cwd() / "framefarm-node").resolve()
        self.poll_seconds = poll_seconds
        self.client = client or httpx.Client(base_url=self.server, timeout=60.0)
        self.node_id = ""
        self._secret = ""
        self.heartbeat_seconds = 5.0
        self.report_patience = report_patience
        self.hang_seconds = hang_seconds
        # The encoder's thread budget: nodes sharing a machine each take a share of its
        # cores instead of all of them, so they add throughput rather than contention.
        self.threads = threads
        # Code templates (Remotion) run where Node.js, npm and Chromium are; ``engines``
        # narrows what the node offers to run (None: every engine this machine has). The
        # prepared projects are kept in a cache the machine's nodes share (it locks).
        self.code = CodeTasks(remotion_cache or default_cache(), threads)
        found = ["framefarm", *(["remotion"] if self.code.available() else [])]
        self.engines = [e for e in found if engines is None or e in engines]
        # A node started by `framefarm serve` stops when serve is gone (even SIGKILLed).
        self.parent_pid = parent_pid
        self.stopping = threading.Event()
        # What the container's health check reads: ready, draining, drained (see status.py).
        self.status = StatusFile(self.workdir)
        self.holding = False  # drained at a preStop hook's request: idle until stopped
        # Injectable so tests can run the retry policy and stall timer without waiting.
        self.sleep = sleep
        self.clock = clock
        self._announcer: threading.Thread | None = None

    # -- HTTP ---------------------------------------------------------------------------------

    def _headers(self, lease: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.node_id}:{self._secret}"}
        if lease:
            headers[LEASE_HEADER] = lease
        return headers

    def _retrying(self, attempt: Callable[[], T], what: str,
                  patience: float | None = None) -> T:
        return retrying(attempt, what=what, sleep=self.sleep, clock=self.clock,
                        patience=self.report_patience if patience is None else patience)

    def _request(self, method: str, url: str, *, body: pydantic.BaseModel | None = None,
                 lease: str | None = None, patience: float | None = None,
                 upload: Path | None = None, **kwargs: Any) -> httpx.Response:
        """A request, retried on network errors and 502/503/504 for up to ``patience``
        seconds (default: the node's report patience), so reports wait out a server
        restart or a network blip. ``upload`` is streamed as the body, reopened for each
        attempt. 409 raises LeaseLost; another error status, HTTPStatusError."""
        # None fields are left out: each is its field's default, and a server that
        # predates an optional field still accepts the body.
        payload = body.model_dump(mode="json", exclude_none=True) if body else None

        def attempt() -> httpx.Response:
            with contextlib.ExitStack() as files:
                content = chunks(files.enter_context(upload.open("rb"))) if upload else None
                response = self.client.request(method, url, headers=self._headers(lease),
                                               json=payload, content=content, **kwargs)
            if response.status_code in _GATEWAY_ERRORS:
                message = f"HTTP {response.status_code}"
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    message += f" ({response.json()['error']['message']})"
                raise TryAgain(message)
            return response

        response = self._retrying(attempt, f"{method} {url}", patience)
        if response.status_code == 409:
            raise LeaseLost(response.text)
        response.raise_for_status()
        return response

    def _call(self, answer: type[M], method: str, url: str, **kwargs: Any) -> M:
        """``_request``, its answer parsed as ``answer``."""
        return answer.model_validate(self._request(method, url, **kwargs).json())

    def register(self) -> None:
        body = RegisterRequest(token=self.enrolment_token, name=self.name,
                               capabilities=capabilities(self.threads, self.engines))
        response = self.client.post("/internal/nodes/register",
                                    json=body.model_dump(mode="json"))
        response.raise_for_status()
        answer = RegisterResponse.model_validate(response.json())
        self.node_id, self._secret = answer.node_id, answer.secret
        self.heartbeat_seconds = answer.heartbeat_seconds
        log.info("registered as %s (%s)", self.node_id, self.name)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        self.status.clear_request()
        self.status.write()
        try:
            if not self.node_id:
                self.register()
            self.status.registered, self.status.node_id = True, self.node_id
            self.status.write()
            while not self.stopping.is_set():
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    log.warning("the process that started this node has gone; stopping")
                    break
                if self.status.drain_requested() and not self.holding:
                    self.hold()
                if self.holding:
                    self.status.beat()
                    self.stopping.wait(self.poll_seconds)
                    continue
                try:
                    worked = self.run_one()
                except httpx.HTTPError as exc:
                    log.warning("server unreachable: %s", exc)
                    worked = False
                self.status.beat()
                if not worked:
                    self.stopping.wait(self.poll_seconds)
        finally:
            self.status.stopped = True
            self.status.write()
        log.info("stopped")

    def drain(self) -> None:
        """Finish the task in hand, claim nothing more, then return from ``run`` (SIGTERM).
        The server is told, so the node shows as draining and is offered no work."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        log.info("draining: finishing the current task, then stopping")
        # Not from here: this may run in a signal handler, and the status file and the
        # server's answer both take a lock or a while.
        self._announcer = threading.Thread(target=self._announce_drain,
                                           args=(not self.holding,), daemon=True)
        self._announcer.start()

    def hold(self) -> None:
        """Drain without stopping (a preStop hook asked): finish the task in hand, claim
        nothing more, stay idle until told to stop; the stop then has nothing to finish."""
        if self.holding or self.stopping.is_set():
            return
        self.holding = True
        log.info("drain requested: finishing the current task, then idling until stopped")
        self._announce_drain(True)

    def _announce_drain(self, tell_server: bool) -> None:
        """Not ready from now on (the health check says so), and the server offers this
        node no more work."""
        self.status.draining = True
        self.status.write()
        if not (tell_server and self.node_id):
            return
        try:
            self._call(DrainResponse, "POST", "/internal/nodes/drain", patience=0)
        except (httpx.HTTPError, pydantic.ValidationError) as exc:
            log.warning("could not tell the server this node is draining: %s", exc)

    def run_one(self) -> bool:
        """Claim and run one task; False when there was nothing to do."""
        response = self._request("POST", "/internal/tasks/claim", patience=0)
        if response.status_code == 204:
            return False
        raw = response.json()
        try:
            task = ClaimedTask.model_validate(raw)
        except pydantic.ValidationError as exc:
            self._refuse(raw, exc)
            return True
        self.run_task(task)
        return True

    def _refuse(self, raw: Any, exc: pydantic.ValidationError) -> None:
        """A claimed task this node cannot read (a newer server?): hand it back as failed,
        retryable, so a node that understands it can take it."""
        log.error("claimed a task this node cannot read: %s", exc)
        with contextlib.suppress(LeaseLost, TypeError, KeyError, httpx.HTTPError):
            self._call(FailResponse, "POST", f"/internal/tasks/{raw['task_id']}/fail",
                       body=FailRequest(lease_token=raw["lease_token"], step="claim",
                                        error=f"the node cannot read the task: {exc}"))

    def run_task(self, task: ClaimedTask) -> None:
        cancel = threading.Event()
        progress = Progress(self.clock)
        beat = threading.Thread(target=self._heartbeat,
                                args=(task.task_id, task.lease_token, cancel, progress),
                                daemon=True)
        folder = self.workdir / "tasks" / task.task_id
        folder.mkdir(parents=True, exist_ok=True)
        self.status.task = task.task_id
        self.status.write()
        beat.start()
        cpu_start = cpu.used()
        try:
            output, ext, planned = self._execute(task, folder, cancel, progress)
            if progress.stalled:
                raise Stalled(f"no progress for {self.hang_seconds:g} s; the render was "
                              "stopped")
            if cancel.is_set():
                return
            info = describe(output, ext) if output and task.kind is TaskKind.ASSEMBLE else None
            key = self._upload(task, output, ext) if output else None
            self._complete(task, CompleteRequest(lease_token=task.lease_token, output_key=key,
                                                 media=info, description=planned,
                                                 cpu_seconds=cpu.since(cpu_start)))
            log.info("task %s (%s %s) done", task.task_id, task.kind, task.idx,
                     extra=self._context(task))
        except (LeaseLost, errors.RenderCancelled) as exc:
            if progress.stalled:
                self._report_failure(task, f"no progress for {self.hang_seconds:g} s; the "
                                     "render was stopped", permanent=False,
                                     cpu_seconds=cpu.since(cpu_start))
            else:
                log.info("task %s: cancelled or lease lost (%s); dropped", task.task_id,
                         type(exc).__name__)
        except Exception as exc:
            permanent = is_permanent(exc)  # bad input: every node would fail it
            message = str(exc) if isinstance(exc, errors.FramefarmError) else (
                f"{type(exc).__name__}: {exc}")
            self._report_failure(task, message, permanent=permanent,
                                 cpu_seconds=cpu.since(cpu_start))
        finally:
            progress.finished = True
            cancel.set()
            beat.join(timeout=10)
            shutil.rmtree(folder, ignore_errors=True)
            self.status.task = None
            self.status.write()

    def _complete(self, task: ClaimedTask, body: CompleteRequest) -> CompleteResponse:
        return self._call(CompleteResponse, "POST", f"/internal/tasks/{task.task_id}/complete",
                          body=body)

    def _context(self, task: ClaimedTask) -> dict[str, str]:
        return {"job_id": task.job_id, "task_id": task.task_id, "node_id": self.node_id}

    def _report_failure(self, task: ClaimedTask, message: str, *, permanent: bool,
                        cpu_seconds: float | None = None) -> None:
        log.warning("task %s failed: %s", task.task_id, message, extra=self._context(task))
        with contextlib.suppress(LeaseLost):
            self._call(FailResponse, "POST", f"/internal/tasks/{task.task_id}/fail",
                       body=FailRequest(lease_token=task.lease_token,
                                        error=message[-MAX_ERROR_CHARS:],
                                        permanent=permanent, step=task.kind,
                                        cpu_seconds=cpu_seconds))

    def _upload(self, task: ClaimedTask, output: Path, ext: str) -> str:
        """Send the output where the server says: straight to storage (one presigned PUT,
        or part by part for a large file) or through the API. Each attempt reopens the
        file; network errors are retried for up to the report patience."""
        size = output.stat().st_size
        route, lease = f"/internal/tasks/{task.task_id}", task.lease_token
        target = self._call(UploadUrlResponse, "POST", f"{route}/upload-url",
                            body=UploadUrlRequest(lease_token=lease),
                            params={"ext": ext, "size": size})
        parts = target.multipart
        if parts:
            etags = []
            for i, url in enumerate(parts.urls):
                offset = i * parts.part_size
                length = min(parts.part_size, size - offset)
                etags.append(self._retrying(functools.partial(put, url, output, offset,
                                                              length), f"PUT part {i + 1}"))
            self._call(UploadCompleteResponse, "POST", f"{route}/upload-complete",
                       body=UploadCompleteRequest(lease_token=lease,
                                                  output_key=target.output_key,
                                                  upload_id=parts.upload_id, etags=etags,
                                                  size=size))
            return target.output_key
        if target.url:
            self._retrying(functools.partial(put, target.url, output, 0, size), "PUT output")
            return target.output_key
        return self._call(OutputUploaded, "PUT", f"{route}/output", lease=lease,
                          params={"ext": ext}, upload=output).output_key

    def _heartbeat(self, task_id: str, lease: str, cancel: threading.Event,
                   progress: Progress) -> None:
        """Extend the lease while the task runs; stop the render when told to, or when it
        has made no progress for ``hang_seconds``."""
        while not cancel.wait(self.heartbeat_seconds):
            self.status.beat()  # alive while the main thread renders
            if self.status.drain_requested():
                self.hold()
            if progress.idle_seconds() > self.hang_seconds:
                progress.stalled = True
                cancel.set()
                return
            body = TaskHeartbeatRequest(lease_token=lease, frames_done=progress.frames,
                                        sample=machine_sample(),
                                        preview_jpeg=progress.take_preview())
            try:
                answer = self._call(TaskHeartbeatResponse, "POST",
                                    f"/internal/tasks/{task_id}/heartbeat", body=body,
                                    patience=0)
            except LeaseLost:
                cancel.set()
                return
            except (httpx.HTTPError, pydantic.ValidationError) as exc:
                # Keep rendering: the lease may outlive a short outage.
                log.warning("heartbeat failed: %s", exc)
                continue
            if answer.command is Command.CANCEL:
                cancel.set()
                return

    # -- running the engine -------------------------------------------------------------------

    def _inputs(self, task: ClaimedTask, folder: Path) -> Path:
        """Fetch the job's assets (cached by SHA-256) and lay them out under their names."""
        cache = self.workdir / "blobs"
        cache.mkdir(parents=True, exist_ok=True)
        inputs = folder / "input"
        inputs.mkdir(exist_ok=True)
        for name, sha in task.assets.items():
            blob = cache / sha
            if not blob.exists():
                tmp = cache / f".{sha}.{os.getpid()}.part"
                self._download(task.asset_urls.get(sha),
                               f"/internal/tasks/{task.task_id}/blobs/{sha}",
                               task.lease_token, tmp)
                os.replace(tmp, blob)
            target = inputs / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(blob, target)
            except OSError:
                shutil.copyfile(blob, target)
        return inputs

    def _download(self, presigned: str | None, route: str, lease: str, target: Path) -> None:
        """Fetch a file from a presigned storage URL, or through the API."""
        client = httpx.Client(timeout=600.0, follow_redirects=True) if presigned else None
        try:
            with target.open("wb") as out, (
                client.stream("GET", presigned) if client and presigned else
                self.client.stream("GET", route, headers=self._headers(lease),
                                   follow_redirects=True)
            ) as response:
                if response.status_code == 409:
                    raise LeaseLost(route)
                response.raise_for_status()
                for block in response.iter_bytes():
                    out.write(block)
        finally:
            if client is not None:
                client.close()

    def _execute(self, task: ClaimedTask, folder: Path, cancel: threading.Event,
                 progress: Progress) -> tuple[Path | None, str, Description | None]:
        """Run the task with its engine: its output file and extension (None: it has no
        output, the audio of a silent format), and a prepare task's description."""
        if task.engine == "framefarm" or task.kind is TaskKind.ASSEMBLE:
            return (*self._execute_document(task, folder, cancel, progress), None)
        if task.engine not in self.engines:
            raise errors.RenderError(f"this node does not run {task.engine} tasks")
        return self.code.execute(task, self._inputs(task, folder), folder, cancel, progress)

    def _execute_document(self, task: ClaimedTask, folder: Path, cancel: threading.Event,
                          progress: Progress) -> tuple[Path | None, str]:
        """A JSON document's task, or any job's assemble step."""
        if task.kind is TaskKind.ASSEMBLE and task.engine != "framefarm":
            if not task.fps:
                raise errors.RenderError("the server sent no frame rate for this assemble "
                                         "task; is it older than this node?")
            return self._assemble(task, task.fps, formats.get(task.options.get("format", "mp4")),
                                  folder)
        tl = document.load(task, self._inputs(task, folder))
        if task.kind is TaskKind.ASSEMBLE:
            return self._assemble(task, tl.fps, formats.get(tl.output.format), folder)
        return document.run(task, tl, folder, cancel, progress, self.threads)

    def _assemble(self, task: ClaimedTask, fps: int, fmt: formats.OutputFormat,
                  folder: Path) -> tuple[Path, str]:
        lease = task.lease_token
        listing = _INPUTS.validate_python(self._request(
            "GET", f"/internal/tasks/{task.task_id}/inputs", lease=lease).json())
        parts: list[tuple[Path, int]] = []
        audio: Path | None = None
        code = task.engine != "framefarm"
        part_suffix = self.code.part_suffix(fmt) if code else fmt.part_suffix
        for item in listing:
            if item.kind is TaskKind.AUDIO and fmt.audio_suffix is None:
                continue  # a silent format: its audio task made nothing
            suffix = fmt.audio_suffix if item.kind is TaskKind.AUDIO else part_suffix
            path = folder / f"{item.kind}{item.idx:04d}.{suffix}"
            self._download(item.url, f"/internal/tasks/{task.task_id}/inputs/{item.idx}",
                           lease, path)
            if item.kind is TaskKind.AUDIO:
                audio = path
            else:
                parts.append((path, item.frames[1] - item.frames[0]))
        if code:  # a code template's parts carry their own sound
            audio = self.code.join_sound(task, parts, folder)
        output = folder / f"final.{fmt.part_suffix}"
        if fmt.single_chunk:
            if len(parts) != 1:
                raise errors.RenderError(f"a {fmt.name.upper()} is rendered as one chunk")
            shutil.copyfile(parts[0][0], output)
        else:
            engine.assemble_parts(parts, audio, output, fmt=fmt.name, fps=fps, workdir=folder)
        return output, fmt.part_suffix

