"""Helpers for the fault tests: ``framefarm serve`` / ``framefarm worker`` as real processes
(each in its own process group, killed with its children whatever happens), documents,
polling, child processes from /proc, the database read-only, and the checks every test
makes on the final video.

Renders are small (360p, a few seconds); where a render must last long enough to be
interrupted, it has more shapes rather than more pixels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from fastapi.testclient import TestClient

from framefarm import engine
from framefarm.api.service import Service
from framefarm.ffmpeg import probe
from framefarm.settings import Settings
from framefarm.worker.agent import Agent
from helpers import bearer, free_port, wait_for

FPS = 30
FINISHED = ("succeeded", "failed", "cancelled")


def figure(test: str, text: str) -> None:
    """One line the lead can quote (run pytest with -s to see it)."""
    print(f"\nFIGURE [{test}] {text}", flush=True)


# -- documents ---------------------------------------------------------------------------------


def output(**extra: Any) -> dict[str, Any]:
    return {"size": "360p", "fps": FPS, "quality": "draft", **extra}


def long_doc(seconds: float, shapes: int = 8) -> dict[str, Any]:
    """Real per-frame work (rotating translucent shapes, a scaled title): about 100-200
    frames a second on one core, so a render can be caught (and hurt) mid-chunk."""
    colors = ["#ff5a00", "#00a0ff", "#40c040", "#c040c0"]
    layers: list[dict[str, Any]] = [
        {"type": "shape", "shape": "rounded", "x": 10 * i, "y": 8 * i, "width": 200,
         "height": 160, "radius": 20, "fill": colors[i % 4], "opacity": 0.7,
         "keyframes": {"x": [{"time": 0, "value": 0}, {"time": seconds, "value": 440}],
                       "rotation": [{"time": 0, "value": 0},
                                    {"time": seconds, "value": 360 + 15 * i}]}}
        for i in range(shapes)]
    layers.append({"type": "text", "text": "framefarm", "position": "center",
                   "keyframes": {"scale": [{"time": 0, "value": 0.5},
                                           {"time": seconds, "value": 1.5}]}})
    return {"output": output(), "scenes": [{"duration": seconds, "background": "#101820",
                                            "layers": layers}]}


def write_fake_ffmpeg(path: Path, body: str) -> Path:
    """An executable standing in for FFmpeg. It answers ``-hide_banner -version`` like
    FFmpeg (the node asks at start-up) and runs ``body`` for anything else."""
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = "-version" ]; then echo "ffmpeg version fault-test"; exit 0; fi\n'
        f"{body}\n")
    path.chmod(0o755)
    return path


# -- polling -----------------------------------------------------------------------------------





# -- processes -----------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class Proc:
    """A framefarm command in its own process group, its output kept for messages."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.lines: list[str] = []
        self.popen = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.popen.stdout, self.log.open("a", encoding="utf-8") as log:
            for raw in self.popen.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                log.write(line + "\n")
                log.flush()

    def text(self) -> str:
        return "\n".join(self.lines)

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])

    def kill(self) -> None:
        """SIGKILL the whole group (a stopped process too) and reap."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=15)
        self._reader.join(timeout=5)


def clean_env(**settings: Any) -> dict[str, str]:
    """The test's environment without any FRAMEFARM_ setting it may carry, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEFARM_")}
    env.update({f"FRAMEFARM_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """``framefarm serve --workers 0`` on a free port, and ``framefarm worker`` nodes."""

    def __init__(self, processes: list[Proc], data: Path, **settings: Any) -> None:
        self.processes, self.data = processes, data
        self.env = clean_env(**settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.key = ""
        self.workers: dict[str, Proc] = {}

    def start(self) -> Server:
        argv = [sys.executable, "-m", "framefarm", "serve", "--port", str(self.port),
                "--workers", "0", "--data-dir", str(self.data)]
        self.proc = Proc(argv, self.env, self.data.parent / f"serve-{len(self.processes)}.log")
        self.processes.append(self.proc)

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.popen.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.proc.tail()}")
            try:
                return self.http.get("/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, interval=0.05, what="serve to be ready")
        if not self.key:
            lines = self.proc.lines
            found = [i for i, line in enumerate(lines) if "shown once" in line]
            assert found and found[0] + 1 < len(lines), self.proc.tail()
            self.key = lines[found[0] + 1].strip()
            assert self.key.startswith("ff_"), self.proc.tail()
        return self

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.key)

    def worker(self, name: str, *args: str, **env: str) -> Proc:
        """A render node process (``args``: extra CLI options; ``env``: extra variables,
        e.g. FRAMEFARM_FFMPEG)."""
        token = (self.data / "enrolment.token").read_text().strip()
        argv = [sys.executable, "-m", "framefarm", "worker", "--server", self.url,
                "--token", token, "--name", name, "--workdir", str(self.workdir(name)),
                *args]
        proc = Proc(argv, {**self.env, **env}, self.data.parent / f"{name}.log")
        self.processes.append(proc)
        self.workers[name] = proc
        return proc

    def workdir(self, name: str) -> Path:
        return self.data.parent / f"node-{name}"

    # -- API -------------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        response = self.http.get(path, headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, headers=self.auth, **kwargs)

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {n["name"]: n for n in self.get("/v1/admin/nodes")}

    def wait_nodes(self, *names: str, timeout: float = 60) -> dict[str, dict[str, Any]]:
        """Wait until these nodes have registered (and are online)."""
        def check() -> dict[str, dict[str, Any]] | None:
            nodes = self.nodes()
            if all(n in nodes and nodes[n]["status"] in ("online", "busy") for n in names):
                return nodes
            for name in names:
                proc = self.workers.get(name)
                if proc is not None and proc.popen.poll() is not None:
                    raise AssertionError(f"worker {name} exited:\n{proc.tail()}")
            return None
        return wait_for(check, timeout=timeout, interval=0.1, what=f"nodes {names}")

    def set_draining(self, name: str, draining: bool) -> None:
        node_id = self.nodes()[name]["id"]
        verb = "drain" if draining else "undrain"
        response = self.post(f"/v1/admin/nodes/{node_id}/{verb}")
        assert response.status_code == 200, response.text

    def submit(self, document: dict[str, Any], **options: Any) -> str:
        body: dict[str, Any] = {"document": document}
        if options:
            body["options"] = options
        response = self.post("/v1/renders", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/renders/{job_id}"))

    def logs(self, job_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/renders/{job_id}/logs"))

    def messages(self, job_id: str) -> list[str]:
        return [line["message"] for line in self.logs(job_id)]

    def wait_job(self, job_id: str, *, timeout: float = 90,
                 until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """Poll GET /v1/renders/{id} until it is finished (or ``until`` holds)."""
        done = until or (lambda j: j["state"] in FINISHED)
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            last.clear()
            last.update(self.job(job_id))
            return last if done(last) else None

        try:
            return wait_for(check, timeout=timeout, interval=0.1, what=f"job {job_id}")
        except AssertionError:
            workers = "\n".join(f"-- {n}:\n{p.tail(15)}" for n, p in self.workers.items())
            raise AssertionError(f"job {job_id} did not get there: {last}\nlogs: "
                                 f"{self.messages(job_id)}\n{workers}") from None

    def wait_rendering(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_job(job_id, timeout=timeout,
                             until=lambda j: j["state"] == "running" and j["frames"]["done"] > 0)

    def download(self, job: dict[str, Any], target: Path) -> Path:
        response = self.http.get(f"/v1/exports/{job['export']['id']}/file", headers=self.auth)
        assert response.status_code == 200, response.text
        target.write_bytes(response.content)
        return target

    # -- the database, read-only -----------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        """Read the SQLite database directly (read-only, so the server's writers are never
        blocked by the test)."""
        db = self.data / "framefarm.db"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True,
                                                timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql, params))

    def tasks(self, job_id: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM tasks WHERE job_id = ? ORDER BY idx", job_id)

    def stop_and_close(self) -> None:
        self.http.close()


# -- the app in-process ---------------------------------------------------------------------


@dataclasses.dataclass
class Farm:
    backend: str
    settings: Settings
    svc: Service
    client: TestClient
    admin_key: str
    tmp: Path
    agents: list[Agent] = dataclasses.field(default_factory=list)
    threads: list[threading.Thread] = dataclasses.field(default_factory=list)
    crashes: dict[str, BaseException] = dataclasses.field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def start_nodes(self, count: int, **options: Any) -> list[Agent]:
        """Agents in threads (``options``: e.g. report_patience)."""
        started = []
        for _ in range(count):
            name = f"node{len(self.agents)}"
            folder = self.tmp / "nodes" / name
            folder.mkdir(parents=True)
            agent = Agent("http://testserver", self.svc.enrolment_token, name=name,
                          workdir=folder, poll_seconds=0.05, client=self.client, **options)
            agent.register()

            def run(agent: Agent = agent) -> None:
                try:
                    agent.run()
                except BaseException as exc:  # reported by the fixture's teardown
                    self.crashes[agent.name] = exc

            thread = threading.Thread(target=run, name=name, daemon=True)
            thread.start()
            self.agents.append(agent)
            self.threads.append(thread)
            started.append(agent)
        return started

    def stop_nodes(self) -> None:
        for agent in self.agents:
            agent.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), f"render node {thread.name} did not stop"
        self.threads.clear()
        assert not self.crashes, f"render nodes crashed: {self.crashes!r}"


# -- checks -------------------------------------------------------------------------------------


def check_video(path: Path, frames_total: int, size: tuple[int, int] = (640, 360)) -> None:
    """Exactly the job's frames, lasting them to within one frame."""
    info = probe.probe(path, count_frames=True)
    assert info.video is not None and info.video.codec == "h264", info
    assert (info.video.width, info.video.height) == size, info
    assert info.video.frames == frames_total, (info.video.frames, frames_total)
    assert abs(info.video.duration - frames_total / FPS) <= 1 / FPS, info.video.duration


def _frames(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def assert_frames_equal(farm_video: Path, document: dict[str, Any], folder: Path) -> int:
    """Render ``document`` once in this process (lossless, one chunk) and compare every
    decoded frame of ``farm_video`` with it, bit for bit. Returns the frame count."""
    reference = folder / "reference.mp4"
    engine.render(document, reference, quality="lossless", chunks=1)
    count = 0
    sentinel = object()
    for i, (a, b) in enumerate(itertools.zip_longest(_frames(farm_video), _frames(reference),
                                                     fillvalue=sentinel)):
        assert a is not sentinel and b is not sentinel, f"frame counts differ at frame {i}"
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        if not np.array_equal(a, b):
            diff = int(np.abs(a.astype(int) - b.astype(int)).max())
            raise AssertionError(f"frame {i} differs from the in-process render "
                                 f"(max difference {diff})")
        count += 1
    return count
