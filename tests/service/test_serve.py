"""Acceptance: ``framefarm serve`` and ``framefarm worker`` as real processes on real
sockets — a render end to end, a render node killed mid-task, the server killed mid-job.

Every process is started in its own process group and killed (with its children) by a
finalizer, whatever happens to the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_support import FPS, bearer, long_doc, simple_doc, wait_for, wait_job

from framefarm.ffmpeg import probe
from helpers import free_port

pytestmark = pytest.mark.ffmpeg


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

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.popen.stdout, self.log.open("a", encoding="utf-8") as log:
            for raw in self.popen.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                log.write(line + "\n")
                log.flush()

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines[-n:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group (``serve`` starts its render nodes in it) and reap."""
        if self.popen.poll() is None or sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=15)
        self._reader.join(timeout=5)


@pytest.fixture
def processes() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def clean_env(**settings: Any) -> dict[str, str]:
    """The test's environment without any FRAMEFARM_ setting it may carry, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEFARM_")}
    env.update({f"FRAMEFARM_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    def __init__(self, processes: list[Proc], data: Path, workers: int,
                 **settings: Any) -> None:
        self.processes, self.data, self.workers = processes, data, workers
        self.env = clean_env(**settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def start(self) -> Server:
        argv = [sys.executable, "-m", "framefarm", "serve", "--port", str(self.port),
                "--workers", str(self.workers), "--data-dir", str(self.data)]
        self.proc = Proc(argv, self.env, self.data.parent / f"serve-{self.port}.log")
        self.processes.append(self.proc)

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.popen.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.proc.tail()}")
            try:
                return self.http.get("/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, interval=0.1, what="serve to be ready")
        return self

    def admin_key(self) -> str:
        """The key printed once, on the line after the one that says 'shown once'."""
        assert self.proc is not None
        lines = self.proc.lines
        found = [i for i, line in enumerate(lines) if "shown once" in line]
        assert found and found[0] + 1 < len(lines), self.proc.tail()
        key = lines[found[0] + 1].strip()
        assert key.startswith("ff_"), self.proc.tail()
        return key

    def worker(self, name: str) -> Proc:
        token = (self.data / "enrolment.token").read_text().strip()
        folder = self.data.parent / name
        argv = [sys.executable, "-m", "framefarm", "worker", "--server", self.url,
                "--token", token, "--name", name, "--workdir", str(folder)]
        proc = Proc(argv, self.env, self.data.parent / f"{name}.log")
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def servers(processes: list[Proc]) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(data: Path, workers: int, **settings: Any) -> Server:
        server = Server(processes, data, workers, **settings)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def submit(server: Server, key: str, document: dict[str, Any]) -> str:
    response = server.http.post("/v1/renders", json={"document": document},
                                headers=bearer(key))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def check_video(server: Server, key: str, job: dict[str, Any], target: Path) -> None:
    """Download the export and check it has exactly the job's frames."""
    response = server.http.get(f"/v1/exports/{job['export']['id']}/file", headers=bearer(key))
    assert response.status_code == 200, response.text
    target.write_bytes(response.content)
    info = probe.probe(target, count_frames=True)
    assert info.video is not None and info.video.codec == "h264"
    assert (info.video.width, info.video.height) == (640, 360)
    frames = job["frames"]["total"]
    assert info.video.frames == frames
    assert abs(info.video.duration - frames / FPS) <= 1 / FPS


def test_serve_renders_an_inline_document(servers: Callable[..., Server],
                                          tmp_path: Path) -> None:
    server = servers(tmp_path / "data", workers=2).start()
    key = server.admin_key()
    job_id = submit(server, key, simple_doc(2.0, text="served"))
    job = wait_job(server.http, key, job_id, timeout=90)
    assert job["state"] == "succeeded", job
    assert job["frames"]["total"] == 2 * FPS
    check_video(server, key, job, tmp_path / "out.mp4")
    nodes = server.http.get("/v1/admin/nodes", headers=bearer(key)).json()
    assert sorted(n["name"] for n in nodes) == ["local-0", "local-1"]
    # Signed links point at the server's own address and work without a key.
    link = server.http.post(f"/v1/exports/{job['export']['id']}/link", headers=bearer(key))
    assert link.json()["url"].startswith(server.url)
    assert httpx.get(link.json()["url"], timeout=30).status_code == 200


def crash_settings() -> dict[str, Any]:
    """Short leases so a dead node is noticed within seconds; one chunk per render."""
    return {"lease_seconds": 3, "heartbeat_seconds": 0.5, "min_chunk_seconds": 30}


def wait_rendering(server: Server, key: str, job_id: str) -> dict[str, Any]:
    return wait_job(server.http, key, job_id, timeout=60,
                    until=lambda j: j["state"] == "running" and j["frames"]["done"] > 0)


def test_a_killed_render_node_loses_nothing(servers: Callable[..., Server],
                                            tmp_path: Path) -> None:
    """SIGKILL the only node mid-render: its lease expires, the task is requeued without
    spending a retry, another node renders it, and the video has every frame."""
    server = servers(tmp_path / "data", workers=0, **crash_settings()).start()
    key = server.admin_key()
    first = server.worker("first")
    # Enough work per frame that the node is still rendering when it is seen rendering,
    # even on a loaded machine (with 8 shapes, a full suite once saw the chunk finished).
    job_id = submit(server, key, long_doc(8, shapes=16))
    running = wait_rendering(server, key, job_id)
    assert running["frames"]["done"] < running["frames"]["total"] == 8 * FPS
    first.kill()

    server.worker("second")
    job = wait_job(server.http, key, job_id, timeout=90)
    assert job["state"] == "succeeded", (job, first.tail())
    assert job["attempt"] == 1 and job["frames"] == {"done": 240, "total": 240}
    check_video(server, key, job, tmp_path / "out.mp4")
    logs = server.http.get(f"/v1/renders/{job_id}/logs", headers=bearer(key)).json()
    messages = [line["message"] for line in logs]
    assert any("requeued: lease expired" in m for m in messages), messages
    assert not any("failed" in m for m in messages), messages  # no retry was spent
    nodes = {n["name"]: n for n in server.http.get("/v1/admin/nodes",
                                                    headers=bearer(key)).json()}
    assert nodes["first"]["crashes"] == 1 and nodes["first"]["tasks_done"] == 0
    assert nodes["second"]["tasks_done"] == 3  # render, audio, assemble


def test_a_restarted_server_finishes_the_job_once(servers: Callable[..., Server],
                                                  tmp_path: Path) -> None:
    """SIGKILL ``serve`` mid-job and start it again on the same data dir: the node keeps
    rendering, reconnects, and the job ends with one export."""
    data = tmp_path / "data"
    server = servers(data, workers=0, lease_seconds=10, heartbeat_seconds=0.5,
                     min_chunk_seconds=30).start()
    key = server.admin_key()
    server.worker("node")
    job_id = submit(server, key, long_doc(8, shapes=8))
    wait_rendering(server, key, job_id)
    assert server.proc is not None
    server.proc.kill()

    server.start()  # same port, same data dir
    assert server.proc is not None
    assert not any("shown once" in line for line in server.proc.lines)  # no second admin
    job = wait_job(server.http, key, job_id, timeout=90)
    assert job["state"] == "succeeded", job
    check_video(server, key, job, tmp_path / "out.mp4")
    exports = server.http.get("/v1/exports", headers=bearer(key)).json()
    assert [e["id"] for e in exports] == [job["export"]["id"]]
    renders = server.http.get("/v1/renders", headers=bearer(key)).json()["items"]
    assert [r["id"] for r in renders] == [job_id]
    logs = server.http.get(f"/v1/renders/{job_id}/logs", headers=bearer(key)).json()
    done = [line["message"] for line in logs if line["message"].endswith(" done")]
    assert sorted(done) == ["assemble 2 done", "audio 1 done", "render 0 done"], done
    outputs = [p for p in (data / "storage" / "jobs" / job_id).iterdir()
               if p.name.startswith("assemble")]
    assert len(outputs) == 1, outputs
