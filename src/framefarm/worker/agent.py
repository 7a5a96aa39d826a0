"""The render node: register, claim a task, fetch its inputs, render it with the engine,
report progress and previews, upload the output, complete or fail.

It speaks only HTTP to the API (the same protocol for ``serve``'s local nodes and for
remote machines) and never holds database or storage credentials.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import logging
import os
import platform
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from PIL import Image

from framefarm import engine, errors
from framefarm.compositor.bitmap import Array
from framefarm.ffmpeg import runner

log = logging.getLogger("framefarm.worker")
_PREVIEW_EVERY = 2.0  # seconds between preview frames sent with heartbeats
T = TypeVar("T")


def capabilities(threads: int | None = None) -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    try:
        ffmpeg = runner.ffmpeg_version()
    except Exception:
        ffmpeg = "unavailable"
    return {"cores": engine.cores(), "threads": threads, "memory_bytes": pages * page,
            "ffmpeg": ffmpeg, "python": platform.python_version(),
            "engines": ["framefarm"], "host": socket.gethostname()}


def machine_sample() -> dict[str, Any]:
    """Load and memory in use on this machine, for the node's health history."""
    sample: dict[str, Any] = {"load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        total = int(info["MemTotal"].split()[0]) * 1024
        available = int(info["MemAvailable"].split()[0]) * 1024
        sample["memory_used"] = total - available
    except (OSError, KeyError, ValueError):
        sample["memory_used"] = None
    return sample


class LeaseLost(Exception):
    """The server no longer recognises this task's lease (409): drop the work."""


class ServerUnavailable(httpx.TransportError):
    """The server could not be reached within the node's patience."""


class Stalled(Exception):
    """The render made no progress for the node's hang limit."""


class Agent:
    def __init__(self, server: str, enrolment_token: str, *, name: str | None = None,
                 workdir: Path | None = None, poll_seconds: float = 1.0,
                 client: httpx.Client | None = None, report_patience: float = 300.0,
                 hang_seconds: float = 300.0, threads: int | None = None,
                 parent_pid: int | None = None) -> None:
        self.server = server.rstrip("/")
        self.enrolment_token = enrolment_token
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
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
        # A node started by `framefarm serve` stops when serve is gone (even SIGKILLed).
        self.parent_pid = parent_pid
        self.stopping = threading.Event()

    # -- HTTP ---------------------------------------------------------------------------------

    def _headers(self, lease: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.node_id}:{self._secret}"}
        if lease:
            headers["X-Lease-Token"] = lease
        return headers

    def _call(self, method: str, url: str, *, lease: str | None = None,
              patience: float | None = None, **kwargs: Any) -> httpx.Response:
        """A request, retried on network errors and 502/503/504 for up to ``patience``
        seconds (default: the node's report patience), so reports wait out a server
        restart or a network blip. 409 raises LeaseLost."""
        deadline = time.monotonic() + (self.report_patience if patience is None else patience)
        delay = 0.5
        while True:
            try:
                response = self.client.request(method, url, headers=self._headers(lease),
                                               **kwargs)
                if response.status_code not in (502, 503, 504):
                    break
                problem = f"HTTP {response.status_code}"
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    problem += f" ({response.json()['error']['message']})"
            except httpx.TransportError as exc:
                problem = str(exc) or type(exc).__name__
            if time.monotonic() + delay > deadline:
                raise ServerUnavailable(f"{method} {url}: {problem}")
            log.warning("%s %s: %s; retrying in %.1fs", method, url, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        if response.status_code == 409:
            raise LeaseLost(response.text)
        response.raise_for_status()
        return response

    def register(self) -> None:
        response = self.client.post("/internal/nodes/register", json={
            "token": self.enrolment_token, "name": self.name,
            "capabilities": capabilities(self.threads)})
        response.raise_for_status()
        body = response.json()
        self.node_id, self._secret = body["node_id"], body["secret"]
        self.heartbeat_seconds = float(body["heartbeat_seconds"])
        log.info("registered as %s (%s)", self.node_id, self.name)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        if not self.node_id:
            self.register()
        while not self.stopping.is_set():
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.warning("the process that started this node has gone; stopping")
                break
            try:
                worked = self.run_one()
            except httpx.HTTPError as exc:
                log.warning("server unreachable: %s", exc)
                worked = False
            if not worked:
                self.stopping.wait(self.poll_seconds)
        log.info("stopped")

    def drain(self) -> None:
        """Finish the task in hand, claim nothing more, then return from ``run`` (SIGTERM).
        The server is told, so the node shows as draining and is offered no work."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        log.info("draining: finishing the current task, then stopping")
        if self.node_id:  # not from here: this may run in a signal handler
            threading.Thread(target=self._announce_drain, daemon=True).start()

    def _announce_drain(self) -> None:
        try:
            self._call("POST", "/internal/nodes/drain", patience=0)
        except httpx.HTTPError as exc:
            log.warning("could not tell the server this node is draining: %s", exc)

    def run_one(self) -> bool:
        """Claim and run one task; False when there was nothing to do."""
        response = self._call("POST", "/internal/tasks/claim", patience=0)
        if response.status_code == 204:
            return False
        self.run_task(response.json())
        return True

    def run_task(self, task: dict[str, Any]) -> None:
        task_id, lease = task["task_id"], task["lease_token"]
        cancel = threading.Event()
        progress = _Progress()
        beat = threading.Thread(target=self._heartbeat, args=(task_id, lease, cancel, progress),
                                daemon=True)
        folder = self.workdir / "tasks" / task_id
        folder.mkdir(parents=True, exist_ok=True)
        beat.start()
        try:
            output, ext = self._execute(task, folder, cancel, progress)
            if progress.stalled:
                raise Stalled(f"no progress for {self.hang_seconds:g} s; the render was "
                              "stopped")
            if cancel.is_set():
                return
            key = self._upload(task_id, lease, output, ext) if output else None
            self._call("POST", f"/internal/tasks/{task_id}/complete",
                       json={"lease_token": lease, "output_key": key})
            log.info("task %s (%s %s) done", task_id, task["kind"], task["idx"],
                     extra=self._context(task))
        except (LeaseLost, errors.RenderCancelled) as exc:
            if progress.stalled:
                self._report_failure(task, f"no progress for {self.hang_seconds:g} s; the "
                                     "render was stopped", permanent=False)
            else:
                log.info("task %s: cancelled or lease lost (%s); dropped", task_id,
                         type(exc).__name__)
        except Exception as exc:
            permanent = isinstance(exc, errors.DocumentError)
            message = str(exc) if isinstance(exc, errors.FramefarmError) else (
                f"{type(exc).__name__}: {exc}")
            self._report_failure(task, message, permanent=permanent)
        finally:
            progress.finished = True
            cancel.set()
            beat.join(timeout=10)
            shutil.rmtree(folder, ignore_errors=True)

    def _context(self, task: dict[str, Any]) -> dict[str, str]:
        return {"job_id": task["job_id"], "task_id": task["task_id"], "node_id": self.node_id}

    def _report_failure(self, task: dict[str, Any], message: str, *, permanent: bool) -> None:
        log.warning("task %s failed: %s", task["task_id"], message, extra=self._context(task))
        with contextlib.suppress(LeaseLost):
            self._call("POST", f"/internal/tasks/{task['task_id']}/fail", json={
                "lease_token": task["lease_token"], "error": message[-20000:],
                "permanent": permanent, "step": task["kind"]})

    def _upload(self, task_id: str, lease: str, output: Path, ext: str) -> str:
        """Send the output where the server says: straight to storage (one presigned PUT,
        or part by part for a large file) or through the API. Each attempt reopens the
        file; network errors are retried for up to the report patience."""
        size = output.stat().st_size
        target = self._call("POST", f"/internal/tasks/{task_id}/upload-url",
                            params={"ext": ext, "size": size}, json={"lease_token": lease}).json()
        key = str(target["output_key"])
        parts = target.get("multipart")
        if parts:
            step = int(parts["part_size"])
            etags = []
            for i, url in enumerate(parts["urls"]):
                offset = i * step
                etags.append(self._retrying(functools.partial(
                    _put, url, output, offset, min(step, size - offset))))
            self._call("POST", f"/internal/tasks/{task_id}/upload-complete", json={
                "lease_token": lease, "output_key": key, "upload_id": parts["upload_id"],
                "etags": etags, "size": size})
        elif target["url"]:
            self._retrying(lambda: _put(target["url"], output, 0, size))
        else:
            def through_api() -> str:
                with output.open("rb") as handle:
                    return str(self._call(
                        "PUT", f"/internal/tasks/{task_id}/output", lease=lease, patience=0,
                        params={"ext": ext}, content=_chunks(handle)).json()["output_key"])
            key = self._retrying(through_api)
        return key

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, again after network errors, for up to the report patience."""
        deadline = time.monotonic() + self.report_patience
        delay = 0.5
        while True:
            try:
                return attempt()
            except httpx.TransportError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("upload: %s; retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _heartbeat(self, task_id: str, lease: str, cancel: threading.Event,
                   progress: _Progress) -> None:
        """Extend the lease while the task runs; stop the render when told to, or when it
        has made no progress for ``hang_seconds``."""
        while not cancel.wait(self.heartbeat_seconds):
            if progress.idle_seconds() > self.hang_seconds:
                progress.stalled = True
                cancel.set()
                return
            body: dict[str, Any] = {"lease_token": lease, "frames_done": progress.frames,
                                    "sample": machine_sample()}
            preview = progress.take_preview()
            if preview:
                body["preview_jpeg"] = preview
            try:
                answer = self._call("POST", f"/internal/tasks/{task_id}/heartbeat", json=body,
                                    patience=0).json()
            except LeaseLost:
                cancel.set()
                return
            except httpx.HTTPError as exc:
                # Keep rendering: the lease may outlive a short outage.
                log.warning("heartbeat failed: %s", exc)
                continue
            if answer.get("command") == "cancel":
                cancel.set()
                return

    # -- running the engine -------------------------------------------------------------------

    def _inputs(self, task: dict[str, Any], folder: Path) -> Path:
        """Fetch the job's assets (cached by SHA-256) and lay them out under their names."""
        cache = self.workdir / "blobs"
        cache.mkdir(parents=True, exist_ok=True)
        inputs = folder / "input"
        inputs.mkdir(exist_ok=True)
        urls = task.get("asset_urls") or {}
        for name, sha in task["assets"].items():
            blob = cache / sha
            if not blob.exists():
                tmp = cache / f".{sha}.{os.getpid()}.part"
                self._download(urls.get(sha), f"/internal/tasks/{task['task_id']}/blobs/{sha}",
                               task["lease_token"], tmp)
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

    def _execute(self, task: dict[str, Any], folder: Path, cancel: threading.Event,
                 progress: _Progress) -> tuple[Path | None, str]:
        options = {k: v for k, v in task["options"].items()
                   if k in ("quality", "size", "fps", "format")}
        tl = engine.load_timeline(task["document"], base_dir=self._inputs(task, folder),
                                  **options)
        fmt = tl.output.format
        start, end = task["frames"]
        kind = task["kind"]
        if kind == "snapshot":
            ext = task["options"].get("snapshot_format", "png")
            out = folder / ("frame.jpg" if ext == "jpeg" else "frame.png")
            engine.snapshot(tl, out, frame=start)
            return out, ext
        if kind == "render":
            ext = "webm" if fmt == "webm" else "gif" if fmt == "gif" else "mp4"
            out = folder / f"part.{ext}"
            progress.watch()
            try:
                engine.render_part(tl, (start, end), out, cancel=cancel, threads=self.threads,
                                   on_frames=progress.set_frames, on_frame=progress.offer,
                                   timeout=tl.project.limits.render_timeout)
            finally:
                progress.unwatch()
            return out, ext
        if kind == "audio":
            ext = "webm" if fmt == "webm" else "m4a"
            if fmt == "gif":
                return None, ext
            out = folder / f"audio.{ext}"
            progress.watch()
            try:
                engine.render_audio(tl, out, (start, end), cancel=cancel,
                                    on_progress=progress.touch)
            finally:
                progress.unwatch()
            return out, ext
        if kind == "assemble":
            return self._assemble(task, tl.fps, fmt, folder)
        raise errors.RenderError(f"unknown task kind {kind!r}")

    def _assemble(self, task: dict[str, Any], fps: int, fmt: str,
                  folder: Path) -> tuple[Path, str]:
        lease = task["lease_token"]
        listing = self._call("GET", f"/internal/tasks/{task['task_id']}/inputs",
                             lease=lease).json()
        parts: list[tuple[Path, int]] = []
        audio: Path | None = None
        ext = "webm" if fmt == "webm" else "gif" if fmt == "gif" else "mp4"
        for item in listing:
            suffix = (".m4a" if fmt != "webm" else ".webm") if item["kind"] == "audio" else (
                f".{ext}")
            path = folder / f"{item['kind']}{item['idx']:04d}{suffix}"
            self._download(item.get("url"),
                           f"/internal/tasks/{task['task_id']}/inputs/{item['idx']}", lease, path)
            if item["kind"] == "audio":
                audio = path
            else:
                parts.append((path, item["frames"][1] - item["frames"][0]))
        output = folder / f"final.{ext}"
        if fmt == "gif":
            if len(parts) != 1:
                raise errors.RenderError("a GIF is rendered as one chunk")
            shutil.copyfile(parts[0][0], output)
        else:
            engine.assemble_parts(parts, audio, output, fmt=fmt, fps=fps, workdir=folder)
        return output, ext


class _Progress:
    """Shared between the render thread and the heartbeat thread."""

    def __init__(self) -> None:
        self.frames = 0
        self.finished = False
        self.stalled = False
        self._watching_since: float | None = None
        self._preview: str | None = None
        self._last_offer = 0.0
        self._lock = threading.Lock()

    def set_frames(self, done: int) -> None:
        if done != self.frames and self._watching_since is not None:
            self._watching_since = time.monotonic()
        self.frames = done

    def touch(self) -> None:
        """Output advanced (an FFmpeg phase without frames: audio)."""
        if self._watching_since is not None:
            self._watching_since = time.monotonic()

    def watch(self) -> None:
        """Start timing stalls: the render phase reports frames as it goes."""
        self._watching_since = time.monotonic()

    def unwatch(self) -> None:
        self._watching_since = None

    def idle_seconds(self) -> float:
        """Seconds since the last frame while rendering; 0 outside the render phase."""
        since = self._watching_since
        return 0.0 if since is None else time.monotonic() - since

    def offer(self, _frame: int, pixels: Array) -> None:
        now = time.monotonic()
        if now - self._last_offer < _PREVIEW_EVERY:
            return
        self._last_offer = now
        image = Image.fromarray(pixels)
        image.thumbnail((320, 320))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
        with self._lock:
            self._preview = base64.b64encode(buffer.getvalue()).decode()

    def take_preview(self) -> str | None:
        with self._lock:
            preview, self._preview = self._preview, None
        return preview


def _chunks(handle: io.BufferedReader, size: int = 1024 * 1024,
            limit: int | None = None) -> Iterator[bytes]:
    left = limit
    while left is None or left > 0:
        block = handle.read(size if left is None else min(size, left))
        if not block:
            break
        if left is not None:
            left -= len(block)
        yield block


def _put(url: str, path: Path, offset: int, length: int) -> str:
    """PUT ``length`` bytes of ``path`` from ``offset`` to a presigned URL, streamed (a
    part can be gigabytes); returns the ETag storage gives it."""
    with path.open("rb") as handle, httpx.Client(timeout=600.0) as client:
        handle.seek(offset)
        response = client.put(url, content=_chunks(handle, limit=length),
                              headers={"Content-Length": str(length)})
    if response.status_code >= 500:
        raise ServerUnavailable(f"storage answered {response.status_code}")
    response.raise_for_status()
    return str(response.headers.get("ETag", ""))

