"""Put a running compose stack of framefarm through what an operator meets, and time it.

Started by scripts/test-deploy once the images are built; standard library only (it runs
with the machine's python3, not the project's virtualenv). In order:

1. ``up``: PostgreSQL, the S3 store, the migration, the API, two render nodes; the stack
   counts as started when ``/readyz`` answers 200 and both nodes report ready.
2. The example (``examples/slideshow.json`` and its media) rendered through the API: a
   project, its assets, its document, a render, the export downloaded and decoded.
3. The same render again, hurt: a node container SIGKILLed mid-chunk, then the API
   container stopped (SIGTERM, with a client watching the job's event stream) and started
   again mid-render. The job must still succeed, with one export and every frame.
4. ``down`` and ``up`` again: the project, the jobs and the export's bytes are still there
   (PostgreSQL, S3 and the API's data live in volumes).
5. A render during which a node container is stopped (SIGTERM): the node reports not
   ready while it drains, finishes its chunk, exits 0, and nothing is requeued.

Every step fails loudly (exit 1, with the containers' last log lines); the figures are
printed at the end as ``figure: name: value`` lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mimetypes
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
API_GRACE = 10  # seconds `docker stop` gives the API mid-render
T = TypeVar("T")
FIGURES: list[tuple[str, str]] = []


class Failed(Exception):
    """A check of the deployment failed."""


def say(message: str) -> None:
    print(f"[deploy {time.strftime('%H:%M:%S')}] {message}", flush=True)


def figure(name: str, value: str) -> None:
    FIGURES.append((name, value))
    say(f"{name}: {value}")


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str,
             interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# -- Docker and Compose ------------------------------------------------------------------------

def run(argv: list[str], *, check: bool = True, timeout: float = 900) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise Failed(f"{shlex.join(argv)} exited {done.returncode}:\n"
                     f"{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


class Stack:
    def __init__(self, compose: list[str], project: str, file: Path) -> None:
        self.compose = [*compose, "-p", project, "-f", str(file)]

    def __call__(self, *args: str, timeout: float = 900) -> str:
        return run([*self.compose, *args], timeout=timeout)

    def containers(self, service: str, *, running: bool = True) -> list[str]:
        ids = self("ps", "-q", service).split()
        if running:
            ids = [c for c in ids if inspect(c, "{{.State.Running}}") == "true"]
        return ids

    def one(self, service: str) -> str:
        found = self.containers(service)
        if len(found) != 1:
            raise Failed(f"expected one running {service} container, found {len(found)}")
        return found[0]

    def tail(self, lines: int = 25) -> str:
        return run([*self.compose, "logs", "--no-color", "--tail", str(lines)], check=False)


def inspect(container: str, template: str) -> str:
    return run(["docker", "inspect", "-f", template, container], check=False).strip()


def node_state(container: str) -> dict[str, Any] | None:
    """The state file a node writes (framefarm.worker.status); None if unreadable."""
    done = subprocess.run(["docker", "exec", container, "cat", "/data/node/node.state"],
                          capture_output=True, text=True, timeout=30, check=False)
    try:
        found: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return None
    return found


def node_health(container: str) -> tuple[int, str]:
    """The node's own health command, as Docker's healthcheck runs it."""
    done = subprocess.run(["docker", "exec", container, "python", "-m",
                           "framefarm.worker.health", "--workdir", "/data/node"],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, (done.stdout + done.stderr).strip()


# -- the API -----------------------------------------------------------------------------------

class _Refuse(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_NO_REDIRECTS = urllib.request.build_opener(_Refuse)


class Api:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.key = ""

    def request(self, method: str, path: str, *, body: Any = None, data: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60) -> Any:
        head = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            head["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=head,
                                         method=method)
        try:
            try:
                with _NO_REDIRECTS.open(request, timeout=timeout) as response:
                    raw = response.read()
                    kind = response.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:
                if exc.code not in (301, 302, 303, 307, 308):
                    raise
                # A redirect to storage (a presigned URL): followed without the API key,
                # which S3 would refuse next to the URL's own signature.
                with urllib.request.urlopen(exc.headers["Location"],
                                            timeout=timeout) as response:
                    raw = response.read()
                    kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise Failed(f"{method} {path}: HTTP {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(raw) if "json" in kind else raw

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=5) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def upload(self, project: str, folder: str, files: list[Path]) -> None:
        boundary = uuid.uuid4().hex
        parts: list[bytes] = []
        for path in files:
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                         f'filename="{path.name}"\r\nContent-Type: {kind}\r\n\r\n'.encode()
                         + path.read_bytes() + b"\r\n")
        if folder:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="folder"'
                         f'\r\n\r\n{folder}\r\n'.encode())
        parts.append(f"--{boundary}--\r\n".encode())
        self.request("POST", f"/v1/projects/{project}/assets", data=b"".join(parts),
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def watch_events(api: Api, job: str, seen: list[str]) -> threading.Thread:
    """A client following the job's event stream, as a progress bar would; it records
    how the stream ended ("done", or the error that cut it)."""
    def follow() -> None:
        request = urllib.request.Request(f"{api.url}/v1/renders/{job}/events",
                                         headers={"Authorization": f"Bearer {api.key}"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                for line in response:
                    if line.startswith(b"event: done"):
                        seen.append("done")
                        return
            seen.append("closed by the server")
        except OSError as exc:
            seen.append(f"cut: {type(exc).__name__}")

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread


# -- the steps -------------------------------------------------------------------------------

def start(stack: Stack, api: Api, *, first: bool) -> float:
    """``up -d`` until the API is ready and both nodes report ready; the seconds it took."""
    began = time.monotonic()
    stack("up", "-d", "--no-build", timeout=600)
    wait_for(api.ready, timeout=180, what="the API's /readyz")

    def nodes_ready() -> bool:
        nodes = stack.containers("node")
        return len(nodes) == 2 and all(inspect(c, "{{.State.Health.Status}}") == "healthy"
                                       for c in nodes)

    wait_for(nodes_ready, timeout=180, what="two render nodes to report ready")
    took = time.monotonic() - began
    if first:
        lines = subprocess.run(["docker", "logs", stack.one("api")], capture_output=True,
                               text=True, check=False)
        text = (lines.stdout + lines.stderr).splitlines()
        keys = [text[i + 1].strip() for i, line in enumerate(text[:-1]) if "shown once" in line]
        if not keys or not keys[0].startswith("ff_"):
            raise Failed("the API printed no admin key:\n" + "\n".join(text[-20:]))
        api.key = keys[0]
    listed = api.get("/v1/admin/nodes")
    online = [n for n in listed if n.get("status") in ("online", "busy")]
    if len(online) < 2:
        raise Failed(f"the API lists {len(online)} online node(s): {listed}")
    return took


def example_project(api: Api, document: Path, media: Path) -> str:
    doc = json.loads(document.read_text(encoding="utf-8"))
    sources: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "src" and isinstance(item, str):
                    sources.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc)
    project = api.request("POST", "/v1/projects", body={"name": "deploy-check"})["id"]
    folders: dict[str, list[Path]] = {}
    for source in sorted(sources):
        path = document.parent / source
        if not path.is_file():
            raise Failed(f"{source} is missing (make it with scripts/make_example_media.py "
                         f"--out {media})")
        folders.setdefault(str(Path(source).parent).strip("."), []).append(path)
    for folder, files in folders.items():
        api.upload(project, folder, files)
    api.request("PUT", f"/v1/projects/{project}/document", body=doc)
    say(f"project {project}: {len(sources)} assets and the document of {document.name}")
    return str(project)


def submit(api: Api, project: str, options: dict[str, Any]) -> str:
    job: str = api.request("POST", "/v1/renders",
                           body={"project_id": project, "options": options})["id"]
    return job


def job_of(api: Api, job: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = api.get(f"/v1/renders/{job}")
    except (OSError, Failed):
        return None  # the API is restarting
    return found


def finish(api: Api, job: str, timeout: float = 900) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = job_of(api, job)
        return found if found and found["state"] in ("succeeded", "failed", "cancelled") \
            else None

    found = wait_for(done, timeout=timeout, what=f"render {job} to finish")
    if found["state"] != "succeeded":
        logs = api.get(f"/v1/renders/{job}/logs")
        raise Failed(f"render {job} {found['state']}: {found.get('error')}\n"
                     + "\n".join(f"  {e['level']}: {e['message']}" for e in logs[-15:]))
    return found


def busy_node(stack: Stack, *, timeout: float = 300) -> tuple[str, str]:
    """(container, task) of a node holding a task."""
    def find() -> tuple[str, str] | None:
        for container in stack.containers("node"):
            state = node_state(container)
            if state and state.get("task"):
                return container, str(state["task"])
        return None

    return wait_for(find, timeout=timeout, what="a node to hold a task", interval=0.2)


def check_export(api: Api, job: dict[str, Any], image: str, into: Path) -> str:
    """Exactly one export for the job; its file downloaded and decoded frame by frame in
    the image (PyAV). Returns the file's SHA-256."""
    exports = [e for e in api.get("/v1/exports") if e["job_id"] == job["id"]]
    if len(exports) != 1:
        raise Failed(f"render {job['id']} has {len(exports)} exports, not one")
    export = exports[0]
    if not job.get("export") or job["export"]["id"] != export["id"]:
        raise Failed(f"render {job['id']} names export {job.get('export')}, not {export}")
    body = api.request("GET", f"/v1/exports/{export['id']}/file", timeout=300)
    target = into / f"{job['id']}.mp4"
    target.write_bytes(body)
    if len(body) != export["size"]:
        raise Failed(f"export {export['id']}: {len(body)} bytes downloaded, {export['size']} "
                     "stored")
    probe = ("import av, json, sys; c = av.open(sys.argv[1]); v = c.streams.video[0]; "
             "n = sum(1 for _ in c.decode(v)); "
             "print(json.dumps([n, v.width, v.height, [s.type for s in c.streams]]))")
    frames, width, height, streams = json.loads(run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{into}:/v:ro", "--entrypoint",
         "python", image, "-c", probe, f"/v/{target.name}"]))
    total = job["frames"]["total"]
    if frames != total or "audio" not in streams:
        raise Failed(f"export {export['id']}: {frames} frames (want {total}), streams "
                     f"{streams}")
    say(f"export {export['id']}: {len(body)} bytes, {frames} frames {width}x{height}, "
        f"{export['duration']:.2f} s, streams {streams}")
    return hashlib.sha256(body).hexdigest()


def keda_query() -> str:
    """The query KEDA's PostgreSQL trigger runs (deploy/keda/scaledobject.yaml)."""
    text = (ROOT / "deploy" / "keda" / "scaledobject.yaml").read_text(encoding="utf-8")
    match = re.search(r'^\s*query:\s*"(.+)"\s*$', text, re.M)
    if not match:
        raise Failed("no query in deploy/keda/scaledobject.yaml")
    return match[1]


def tasks_wanting_nodes(stack: Stack) -> int:
    """KEDA's metric, asked of the stack's own PostgreSQL as KEDA would."""
    password = os.environ.get("POSTGRES_PASSWORD", "framefarm")
    out = run(["docker", "exec", "-e", f"PGPASSWORD={password}", stack.one("postgres"),
               "psql", "-h", "127.0.0.1", "-p", os.environ.get("OFFLINE_PG_PORT", "5432"),
               "-U", "framefarm", "-d", "framefarm", "-tAc", keda_query()])
    return int(out.strip())


class Peaks:
    """The most memory each container used, sampled with ``docker stats`` while alive."""

    def __init__(self, containers: dict[str, list[str]]) -> None:
        self.containers = containers
        self.peak: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        ids = {c: role for role, found in self.containers.items() for c in found}
        while not self.stop.is_set():
            out = run(["docker", "stats", "--no-stream", "--format",
                       "{{.ID}} {{.MemUsage}}", *ids], check=False, timeout=60)
            for line in out.splitlines():
                short, used, *_ = line.split()
                role = next((r for c, r in ids.items() if c.startswith(short)), None)
                if role:
                    self.peak[role] = max(self.peak.get(role, 0.0), _mib(used))

    def done(self) -> str:
        self.stop.set()
        self.thread.join(timeout=60)
        return ", ".join(f"{role} {mib:.0f} MiB" for role, mib in sorted(self.peak.items()))


def _mib(text: str) -> float:
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "kB": 1e3 / 2**20,
             "MB": 1e6 / 2**20, "GB": 1e9 / 2**20}
    number = re.match(r"[0-9.]+", text)
    unit = text[number.end():] if number else ""
    return float(number[0]) * units.get(unit, 0.0) if number else 0.0


def readyz(api: Api) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(api.url + "/readyz", timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


def readiness_follows_dependencies(stack: Stack, api: Api) -> None:
    """Stop the S3 store, then PostgreSQL: /readyz answers 503 naming the check that fails
    while each is down, and 200 again once it is back."""
    seen = []

    def not_ready() -> dict[str, Any] | None:
        status, body = readyz(api)
        return body if status == 503 else None

    for service, check in (("minio", "storage"), ("postgres", "database")):
        container = stack.one(service)
        run(["docker", "stop", "-t", "10", container])
        began = time.monotonic()
        try:
            body = wait_for(not_ready, timeout=90, what=f"/readyz to fail, {service} stopped")
        finally:
            run(["docker", "start", container])
        took = time.monotonic() - began
        failing = str(body.get("checks", {}).get(check, ""))
        if not failing.startswith("failing"):
            raise Failed(f"{service} stopped, but /readyz says {body}")
        wait_for(api.ready, timeout=120, what=f"/readyz to pass again after {service}")
        seen.append(f"{service} stopped -> 503 in {took:.1f} s ({check}: {failing})")
    figure("readiness", "; ".join(seen) + "; 200 again once each was back")


def log_messages(api: Api, job: str) -> list[str]:
    return [str(e["message"]) for e in api.get(f"/v1/renders/{job}/logs")]


def hurt_render(stack: Stack, api: Api, project: str, options: dict[str, Any],
                image: str, into: Path) -> tuple[str, str]:
    """SIGKILL a busy node, then stop and start the API, both mid-render."""
    began = time.monotonic()
    job = submit(api, project, options)
    events: list[str] = []
    watcher = watch_events(api, job, events)
    victim, task = busy_node(stack)
    run(["docker", "kill", "-s", "KILL", victim])
    killed_at = time.monotonic() - began
    say(f"SIGKILLed node container {victim[:12]} holding task {task} "
        f"({killed_at:.1f} s into the render)")

    # Mid-render still: the other node is busy with work of this job.
    busy_node(stack)
    api_container = stack.one("api")
    stopping = time.monotonic()
    run(["docker", "stop", "-t", str(API_GRACE), api_container])
    stop_took = time.monotonic() - stopping
    code = inspect(api_container, "{{.State.ExitCode}}")
    watcher.join(timeout=30)
    run(["docker", "start", api_container])
    wait_for(api.ready, timeout=120, what="the API to be ready again")
    down_for = time.monotonic() - stopping
    # 143: uvicorn shuts down gracefully, then re-raises the SIGTERM so its parent sees
    # why it ended; 137: Docker's SIGKILL at the end of the grace period.
    if code not in ("0", "143", "137"):
        raise Failed(f"the API exited {code} on SIGTERM:\n{stack.tail()}")
    how = (f"SIGKILLed at the end of its {API_GRACE} s grace period: KNOWN ISSUE, an open "
           "event stream keeps uvicorn's graceful shutdown waiting"
           if code == "137" else f"exit {code} after a graceful shutdown")
    figure("API restart mid-render", f"SIGTERM -> {how}, {stop_took:.1f} s, with a client "
           f"on the event stream ({events[0] if events else 'still open'}); ready again "
           f"{down_for:.1f} s after the stop began")

    found = finish(api, job)
    wall = time.monotonic() - began
    digest = check_export(api, found, image, into)
    messages = log_messages(api, job)
    requeued = [m for m in messages if "requeued" in m]
    if not requeued:
        raise Failed(f"the killed node's task was never requeued: {messages}")
    figure("node SIGKILL mid-render", f"task {task} requeued ({requeued[0]!r}); the job "
           f"succeeded, one export, every frame")
    figure("render wall time, hurt", f"{wall:.1f} s (node killed at {killed_at:.1f} s, API "
           f"restarted; lease {os.environ.get('FRAMEFARM_LEASE_SECONDS', '30')} s)")
    return job, digest


def drained_render(stack: Stack, api: Api, project: str, options: dict[str, Any],
                   image: str, into: Path) -> None:
    """SIGTERM (docker stop) a busy node: not ready while it drains, exit 0, no requeue."""
    began = time.monotonic()
    job = submit(api, project, options)
    node, task = busy_node(stack)
    stopper = threading.Thread(target=run, args=(["docker", "stop", "-t", "600", node],),
                               daemon=True)
    signalled = time.monotonic()
    stopper.start()
    seen: list[str] = []

    def reported() -> bool:
        state = node_state(node)
        if state:
            seen.append(str(state["state"]))
        return bool(state and state["state"] in ("draining", "stopped")) or \
            inspect(node, "{{.State.Running}}") != "true"

    wait_for(reported, timeout=30, what="the node to report draining", interval=0.1)
    health = node_health(node) if inspect(node, "{{.State.Running}}") == "true" else (1, "")
    stopper.join(timeout=620)
    drained_in = time.monotonic() - signalled
    code = inspect(node, "{{.State.ExitCode}}")
    if code != "0":
        raise Failed(f"the node exited {code} on SIGTERM (want 0):\n{stack.tail()}")
    if "draining" not in seen:
        raise Failed(f"the node never reported draining: {seen}")
    if health[0] == 0:
        raise Failed(f"the node's health check passed while it drained: {health[1]}")
    found = finish(api, job)
    wall = time.monotonic() - began
    check_export(api, found, image, into)
    bad = [m for m in log_messages(api, job) if "requeued" in m or "failed" in m]
    if bad:
        raise Failed(f"a drained node cost a requeue or a failure: {bad}")
    figure("node SIGTERM mid-render", f"reported not ready while draining "
           f"({health[1] or 'exited before the check'}), finished task {task}, exited 0 "
           f"{drained_in:.1f} s after the signal; nothing requeued")
    figure("render wall time, one node drained", f"{wall:.1f} s")
    run(["docker", "start", node])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compose", required=True, help="the compose command, e.g. "
                        "'docker-compose' or 'docker compose'")
    parser.add_argument("--project", required=True)
    parser.add_argument("--file", type=Path, required=True, help="the rendered compose file")
    parser.add_argument("--api", required=True, help="the API's URL")
    parser.add_argument("--image", default="framefarm:local")
    parser.add_argument("--document", type=Path, default=ROOT / "examples" / "slideshow.json")
    parser.add_argument("--size", default="480p")
    parser.add_argument("--quality", default="medium")
    args = parser.parse_args()

    stack = Stack(shlex.split(args.compose), args.project, args.file)
    api = Api(args.api)
    options = {"size": args.size, "quality": args.quality}
    into = Path(tempfile.mkdtemp(prefix="framefarm-deploy-"))
    os.chmod(into, 0o755)
    try:
        figure("stack start-up", f"{start(stack, api, first=True):.1f} s (up -d until /readyz "
               "is 200 and both nodes report ready)")
        project = example_project(api, args.document, args.document.parent / "media")

        if tasks_wanting_nodes(stack) != 0:
            raise Failed("KEDA's query counts tasks before any render")
        peaks = Peaks({"api": stack.containers("api"), "node": stack.containers("node")})
        began = time.monotonic()
        job = submit(api, project, options)
        wanted = tasks_wanting_nodes(stack)
        clean = finish(api, job)
        wall = time.monotonic() - began
        memory = peaks.done()
        after = tasks_wanting_nodes(stack)
        if not wanted or after:
            raise Failed(f"KEDA's query counted {wanted} task(s) mid-render, {after} after")
        check_export(api, clean, args.image, into)
        figure("render wall time", f"{wall:.1f} s ({args.document.name} at {args.size}, "
               f"quality {args.quality}: {clean['frames']['total']} frames, two nodes)")
        figure("peak memory during the render", memory)
        figure("KEDA's query on the stack's PostgreSQL", f"0 before, {wanted} task(s) "
               f"wanting a node just after the submit, {after} after")

        hurt, digest = hurt_render(stack, api, project, options, args.image, into)
        before = api.get("/v1/exports")
        assets = len(api.get(f"/v1/projects/{project}/assets"))

        down = time.monotonic()
        stack("down", timeout=900)
        again = start(stack, api, first=False)
        figure("down and up again", f"{time.monotonic() - down:.1f} s (start-up "
               f"{again:.1f} s)")
        exports = api.get("/v1/exports")
        if sorted(e["id"] for e in exports) != sorted(e["id"] for e in before):
            raise Failed(f"exports before down: {before}; after up: {exports}")
        if len(api.get(f"/v1/projects/{project}/assets")) != assets:
            raise Failed("the project's assets changed across down and up")
        kept = next(e for e in exports if e["job_id"] == hurt)
        body = api.request("GET", f"/v1/exports/{kept['id']}/file", timeout=300)
        if hashlib.sha256(body).hexdigest() != digest:
            raise Failed("the export's bytes changed across down and up")
        figure("data across down/up", f"{len(exports)} exports, {assets} assets and the "
               "export's bytes kept (PostgreSQL, S3 and the API's data in volumes)")

        readiness_follows_dependencies(stack, api)
        drained_render(stack, api, project, options, args.image, into)
    except (Failed, subprocess.TimeoutExpired) as exc:
        print(f"\nFAILED: {exc}\n\nthe stack's last log lines:\n{stack.tail()}",
              file=sys.stderr)
        return 1
    finally:
        for path in into.iterdir():
            path.unlink()
        into.rmdir()
    print()
    for name, value in FIGURES:
        print(f"figure: {name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
