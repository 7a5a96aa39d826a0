"""Cancel a render while two node processes encode its chunks: both stop within one
heartbeat interval (their FFmpeg processes are gone), the job is cancelled, and no export
exists, in the API or in storage."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.documents import long_doc
from support.figures import figure
from support.polling import wait_for
from support.server import Server, children

pytestmark = pytest.mark.ffmpeg

HEARTBEAT = 0.5
SLACK = 1.0  # the FFmpeg stop (SIGTERM, exit), the /proc poll, a busy 2-core machine


def beat(node: dict[str, Any]) -> dt.datetime:
    """When the server last heard from the node (a heartbeat or a claim)."""
    return dt.datetime.fromisoformat(node["last_heartbeat"])


def test_cancel_stops_both_nodes_within_a_heartbeat(servers: Callable[..., Server],
                                                   tmp_path: Path) -> None:
    server = servers(tmp_path / "data", lease_seconds=10, heartbeat_seconds=HEARTBEAT,
                     min_chunk_seconds=2).start()
    a, b = server.worker("a"), server.worker("b")
    server.wait_nodes("a", "b")
    job_id = server.submit(long_doc(24, shapes=12))
    renders = [t for t in server.tasks(job_id) if t["kind"] == "render"]
    assert len(renders) == 4, [dict(t) for t in renders]
    encoders = wait_for(lambda: (children(a.pid) and children(b.pid)) and
                        (children(a.pid), children(b.pid)),
                        timeout=30, interval=0.02, what="both nodes to be encoding")

    asked = time.monotonic()
    response = server.post(f"/v1/renders/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    wait_for(lambda: not children(a.pid) and not children(b.pid), timeout=15,
             interval=0.01, what="both nodes' FFmpeg to stop")
    stopped = time.monotonic() - asked

    # The nodes dropped their tasks (and told nobody: the task is cancelled already) and
    # are free again: the server sees them idle, not busy with a task. (A node whose chunk
    # happened to end just as the cancel arrived drops it without a log line.)
    def idle() -> dict[str, dict[str, Any]] | None:
        nodes = server.nodes()
        return nodes if {n["status"] for n in nodes.values()} == {"online"} else None

    idle_nodes = wait_for(idle, timeout=10, what="both nodes to be idle")
    job = server.job(job_id)
    assert job["state"] == "cancelled" and job["export"] is None, job
    tasks = server.tasks(job_id)
    assert not [t["idx"] for t in tasks if t["state"] == "running"], [dict(t) for t in tasks]
    assert {t["state"] for t in tasks if t["kind"] == "assemble"} == {"cancelled"}
    assert all(job_id != e["job_id"] for e in server.get("/v1/exports"))
    stored = server.data / "storage" / "jobs" / job_id
    files = sorted(p.name for p in stored.iterdir()) if stored.exists() else []
    assert not [f for f in files if f.startswith("assemble")], files

    # Nothing starts again for this job: each node asks for work again, after the cancel
    # and after it was seen idle (an idle node's claim moves its last heartbeat on), and is
    # given nothing (a claim that got a task would show the node busy).
    def asked_again() -> dict[str, dict[str, Any]] | None:
        nodes = server.nodes()
        return nodes if all(beat(nodes[n]) > beat(idle_nodes[n]) for n in ("a", "b")) else None

    nodes = wait_for(asked_again, timeout=10, what="both nodes to ask for work again")
    assert {n["status"] for n in nodes.values()} == {"online"}, nodes
    assert not children(a.pid) and not children(b.pid)
    assert [t["state"] for t in server.tasks(job_id)] == [t["state"] for t in tasks]

    assert stopped <= HEARTBEAT + SLACK, stopped
    figure("cancel", f"cancel -> both nodes' FFmpeg gone {stopped:.2f} s (heartbeat "
           f"{HEARTBEAT} s, 2 nodes encoding chunks of a 4-chunk render, encoder pids "
           f"{encoders}); job cancelled, no export, no export file")
