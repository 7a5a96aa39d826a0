"""``framefarm serve`` and ``framefarm worker`` as real processes on a free loopback port.

Every process runs in its own process group, its output kept (and copied to a log file) for
messages; the ``processes`` fixture SIGKILLs every group (a SIGSTOPped one too) whatever
happens to the test. Child processes (a node's FFmpeg) are read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from support.api import bearer, finished
from support.polling import wait_for


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    """``framefarm serve`` on a free port (with ``workers`` local nodes, none by default),
    and ``framefarm worker`` nodes."""

    def __init__(self, processes: list[Proc], data: Path, *, workers: int = 0,
                 **settings: Any) -> None:
        self.processes, self.data, self.local_nodes = processes, data, workers
        self.env = clean_env(**settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.key = ""
        self.workers: dict[str, Proc] = {}

    def start(self) -> Server:
        argv = [sys.executable, "-m", "framefarm", "serve", "--port", str(self.port),
                "--workers", str(self.local_nodes), "--data-dir", str(self.data)]
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
        """Poll GET /v1/renders/{id} until it is finished, a succeeded render with its
        export (or until ``until`` holds)."""
        done = until or finished
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
