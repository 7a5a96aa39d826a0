"""How fast a node's progress reaches a live-events client, against real `framefarm serve`
processes on loopback.

    python bench/events.py                 # SQLite, then PostgreSQL with two API replicas
    python bench/events.py --samples 500
    python bench/events.py --only sqlite   # or: postgresql

A node (this script, speaking the node protocol) holds a task of a render and reports
progress one frame at a time; an SSE client follows the render's events. For each report
the figure is the time from sending the heartbeat to receiving the ``progress`` event that
carries it. On PostgreSQL the client listens to a second API process (a replica) while the
node reports to the first, so the event crosses processes through LISTEN/NOTIFY.

Prints median, p90 and p99 per case, and the target (p99 under 50 ms).
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import admin_key, api_process, free_port

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_P99_MS = 50.0
DOCUMENT = {"output": {"size": "360p", "quality": "draft"},
            "scenes": [{"duration": 600, "layers": [{"type": "text", "text": "events"}]}]}


@contextmanager
def serving(data: Path, env: dict[str, str]) -> Iterator[str]:
    """A `framefarm serve` with no local nodes; yields its base URL once it is ready."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with api_process([sys.executable, "-m", "framefarm", "serve", "--port", str(port),
                      "--workers", "0", "--data-dir", str(data)], base,
                     data / f"serve-{port}.log", env):
        yield base


def _admin_key(data: Path) -> str:
    """The admin key, from the log of whichever replica made it (the first to start)."""
    for log in data.glob("serve-*.log"):
        if "shown once" in log.read_text():
            return admin_key(log)
    raise RuntimeError("no admin key in the serve logs")


def _follow(base: str, key: str, job_id: str, out: queue.Queue[tuple[float, int]],
            ready: threading.Event, stop: threading.Event) -> None:
    """Put (arrival time, frames done) of every progress event of the job."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=None) as client, \
            client.stream("GET", f"/v1/renders/{job_id}/events") as response:
        response.raise_for_status()
        kind = ""
        for line in response.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "progress":
                ready.set()
                out.put((time.perf_counter(), json.loads(line[6:])["frames"]["done"]))


def measure(node_base: str, client_base: str, key: str, token: str,
            samples: int) -> list[float]:
    """Milliseconds from each heartbeat sent to its progress event received."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30) as http:
        job = http.post(f"{node_base}/v1/renders", headers=auth,
                        json={"document": DOCUMENT}).json()
        # The audio mix is claimed first and reports no frames: one node holds it, and a
        # second claims the chunk whose progress is followed.
        for _ in range(2):
            node = http.post(f"{node_base}/internal/nodes/register",
                             json={"token": token,
                                   "name": f"bench-{uuid.uuid4().hex[:6]}"}).json()
            node_auth = {"Authorization": f"Bearer {node['node_id']}:{node['secret']}"}
            task = http.post(f"{node_base}/internal/tasks/claim", headers=node_auth).json()
            assert task["job_id"] == job["id"], task
            if task["kind"] == "render":
                break
        arrivals: queue.Queue[tuple[float, int]] = queue.Queue()
        ready, stop = threading.Event(), threading.Event()
        follower = threading.Thread(target=_follow, daemon=True,
                                    args=(client_base, key, job["id"], arrivals, ready, stop))
        follower.start()
        if not ready.wait(30):
            raise RuntimeError("the event stream did not start")
        latencies = []
        for done in range(1, samples + 1):
            sent = time.perf_counter()
            http.post(f"{node_base}/internal/tasks/{task['task_id']}/heartbeat",
                      headers=node_auth, json={"lease_token": task["lease_token"],
                                               "frames_done": done}).raise_for_status()
            while True:
                arrived, frames = arrivals.get(timeout=30)
                if frames == done:
                    latencies.append((arrived - sent) * 1000)
                    break
            time.sleep(0.01)
        stop.set()
        http.post(f"{node_base}/v1/renders/{job['id']}/cancel", headers=auth)
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sqlite_case(samples: int) -> list[float]:
    data = Path(tempfile.mkdtemp(prefix="ff-bench-events-"))
    with serving(data, {}) as base:
        token = (data / "enrolment.token").read_text().strip()
        return measure(base, base, _admin_key(data), token, samples)


def postgres_case(samples: int) -> list[float]:
    name = f"ff_bench_events_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        data = Path(tempfile.mkdtemp(prefix="ff-bench-events-"))
        env = {"FRAMEFARM_DATABASE_URL": ADMIN_URL.replace("postgresql://",
                                                           "postgresql+psycopg://")
               .rsplit("/", 1)[0] + f"/{name}"}
        with ExitStack() as stack:
            first = stack.enter_context(serving(data, env))
            replica = stack.enter_context(serving(data, env))
            token = (data / "enrolment.token").read_text().strip()
            return measure(first, replica, _admin_key(data), token, samples)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    cases = {"sqlite (one API process)": sqlite_case,
             "postgresql (node -> API 1, client <- API 2)": postgres_case}
    print(f"{'case':<46} {'n':>5} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8}  target")
    for name, case in cases.items():
        if args.only and not name.startswith(args.only):
            continue
        ms = case(args.samples)
        p99 = _pct(ms, 0.99)
        verdict = "met" if p99 < TARGET_P99_MS else "NOT met"
        print(f"{name:<46} {len(ms):>5} {statistics.median(ms):>10.1f} {_pct(ms, 0.9):>8.1f} "
              f"{p99:>8.1f}  p99 < {TARGET_P99_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
