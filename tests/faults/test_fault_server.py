"""The API server goes away under running nodes: stopped (SIGSTOP) for a while, with the
lease outliving the outage or not, and killed (SIGKILL) and started again on the same data
dir and port. Nodes keep rendering, their reports wait, a report on a lease that expired
meanwhile is refused (409), and every job ends once, with one export and every frame."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.documents import FPS, long_doc
from support.figures import figure
from support.polling import wait_for
from support.server import Proc, Server, children, clean_env, free_port
from support.video_checks import check_video

pytestmark = pytest.mark.ffmpeg

OUTAGE = 30.0  # the node loses the server this long (the figure)
SHORT_OUTAGE = 10.0  # the variant whose lease expires meanwhile: 10 s keeps the folder fast


def only_export(server: Server, job_id: str) -> None:
    exports = server.get("/v1/exports")
    assert [e["job_id"] for e in exports] == [job_id], exports
    # Parts and audio are tidied away once the job succeeds; one assembled file stays.
    outputs = sorted(p.name for p in (server.data / "storage" / "jobs" / job_id).iterdir())
    assert len(outputs) == 1 and outputs[0].startswith("assemble"), outputs


def test_a_node_that_loses_the_server_for_30_s_keeps_rendering_and_reports_later(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """SIGSTOP ``serve`` for 30 s while the only node renders (lease 60 s, so it outlives
    the outage): the render goes on and finishes meanwhile, its reports wait (patience
    120 s), and once the server is back the node's part is accepted and the job ends."""
    server = servers(tmp_path / "data", lease_seconds=60, heartbeat_seconds=0.5,
                     min_chunk_seconds=60).start()
    node = server.worker("node", "--patience", "120")
    server.wait_nodes("node")
    job_id = server.submit(long_doc(16, shapes=8))
    running = server.wait_rendering(job_id)
    total = running["frames"]["total"]
    assert total == 16 * FPS and running["frames"]["done"] < total
    part = wait_for(lambda: list(server.workdir("node").glob("tasks/*/part.mp4")),
                    timeout=10, what="the node's part file")[0]
    assert children(node.pid), "the node should be encoding"
    assert server.proc is not None
    serve_pid = server.proc.pid

    os.kill(serve_pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        size_at_stop = part.stat().st_size
        wait_for(lambda: not children(node.pid), timeout=OUTAGE - 5, interval=0.1,
                 what="the node to finish rendering while the server is stopped")
        rendered_after = time.monotonic() - stopped
        size_rendered = part.stat().st_size
        # The outage is the scenario, not a wait for something: the server stays stopped
        # for the whole OUTAGE, however soon the node is done.
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        assert node.popen.poll() is None, node.tail()
    finally:
        os.kill(serve_pid, signal.SIGCONT)
    outage = time.monotonic() - stopped
    assert size_rendered > size_at_stop, (size_at_stop, size_rendered)

    job = server.wait_job(job_id, timeout=60)
    to_done = time.monotonic() - stopped - outage
    assert job["state"] == "succeeded", (job, server.messages(job_id), node.tail())
    messages = server.messages(job_id)
    assert not any("requeued" in m or "failed" in m for m in messages), messages
    assert sorted(m for m in messages if m.endswith(" done")) == [
        "assemble 2 done", "audio 0 done", "render 1 done"], messages
    assert server.nodes()["node"]["tasks_done"] == 3
    only_export(server, job_id)
    check_video(server.download(job, tmp_path / "out.mp4"), total)
    assert outage >= OUTAGE
    figure("server stopped 30 s", f"outage {outage:.1f} s (SIGSTOP..SIGCONT, lease 60 s, "
           f"--patience 120): the node finished its {total}-frame chunk {rendered_after:.1f} s "
           f"into the outage (part {size_at_stop} -> {size_rendered} bytes while the server "
           f"was stopped); SIGCONT -> job succeeded {to_done:.2f} s")


def test_a_late_report_on_a_lease_that_expired_during_the_outage_is_refused(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """SIGSTOP ``serve`` for 10 s while node 'first' renders, with a lease of 3 s and an
    idle node 'second': when the server resumes, the lease is found expired and the chunk
    requeued and rendered again (by whichever node claims it first); first's late reports
    are answered 409 and its work dropped. The job succeeds once, with one export."""
    server = servers(tmp_path / "data", lease_seconds=3, heartbeat_seconds=0.5,
                     min_chunk_seconds=60).start()
    first = server.worker("first", "--patience", "120")
    server.worker("second", "--patience", "120")
    server.wait_nodes("first", "second")
    server.set_draining("second", True)  # first takes the audio, then the chunk
    job_id = server.submit(long_doc(12, shapes=16))
    running = server.wait_rendering(job_id)
    total = running["frames"]["total"]
    server.set_draining("second", False)  # nothing is left for second: it waits
    server.wait_job(job_id, timeout=30,
                    until=lambda j: "audio 0 done" in server.messages(job_id))
    assert server.job(job_id)["frames"]["done"] < total, "the chunk ended too soon"
    assert children(first.pid), "first should be encoding"
    assert server.proc is not None
    serve_pid = server.proc.pid

    os.kill(serve_pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        # The outage is the scenario: the server stays stopped for SHORT_OUTAGE, well past
        # the 3 s lease, so the lease has expired when it resumes.
        time.sleep(SHORT_OUTAGE)
    finally:
        os.kill(serve_pid, signal.SIGCONT)
    outage = time.monotonic() - stopped

    def requeued() -> bool:
        return any("requeued: lease expired" in m for m in server.messages(job_id))

    wait_for(requeued, timeout=30, what="the expired lease to be requeued")
    to_requeue = time.monotonic() - stopped - outage
    wait_for(lambda: "409 Conflict" in first.text() and "dropped" in first.text(),
             timeout=30, what="first's late report to be refused")
    job = server.wait_job(job_id, timeout=60)
    to_done = time.monotonic() - stopped - outage
    assert job["state"] == "succeeded", (job, server.messages(job_id))
    assert job["attempt"] == 1 and job["frames"] == {"done": total, "total": total}

    nodes = server.nodes()
    logs = server.logs(job_id)
    messages = [line["message"] for line in logs]
    assert messages.count("job succeeded") == 1, messages
    assert sum("requeued: lease expired" in m for m in messages) == 1, messages
    assert not any("failed" in m for m in messages), messages  # no retry spent
    done = {line["message"]: line["node_id"] for line in logs
            if line["message"].endswith(" done")}
    assert sorted(m for m in messages if m.endswith(" done")) == sorted(done) == [
        "assemble 2 done", "audio 0 done", "render 1 done"], messages
    # Re-run once, by whichever node claimed it first after the resume: usually 'first'
    # itself (see the report: the requeue does not steer the chunk away from it, and
    # second's claim, parked on a keep-alive connection, is reset when the server resumes).
    rerun_by = {nodes["first"]["id"]: "first", nodes["second"]["id"]: "second"}[
        done["render 1 done"]]
    assert nodes["first"]["crashes"] == 1, nodes["first"]
    # The refused report, in first's own log (httpx logs every response).
    refused = [line for line in first.lines if "409 Conflict" in line]
    assert refused and all("/internal/tasks/" in line for line in refused), first.tail()
    only_export(server, job_id)
    check_video(server.download(job, tmp_path / "out.mp4"), total)
    figure("server stopped, lease expired", f"outage {outage:.1f} s (lease 3 s, the variant "
           f"runs 10 s, not 30 s, to keep the folder fast); SIGCONT -> requeued "
           f"{to_requeue:.2f} s; first's late report(s) refused 409: "
           f"{len(refused)} request(s); chunk re-rendered by '{rerun_by}'; SIGCONT -> job "
           f"succeeded once {to_done:.2f} s")


def test_a_killed_and_restarted_server_finishes_the_job_once(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """SIGKILL ``serve`` while two nodes render chunks of one job, and start it again on
    the same data dir and port: the nodes keep going, reconnect, and every task succeeds
    exactly once; one export."""
    data = tmp_path / "data"
    server = servers(data, lease_seconds=10, heartbeat_seconds=0.5, min_chunk_seconds=1).start()
    a, b = server.worker("a"), server.worker("b")
    server.wait_nodes("a", "b")
    job_id = server.submit(long_doc(16, shapes=12))
    renders = [t for t in server.tasks(job_id) if t["kind"] == "render"]
    assert len(renders) == 4, [dict(t) for t in renders]
    wait_for(lambda: children(a.pid) and children(b.pid), timeout=30, interval=0.02,
             what="both nodes to be encoding")
    assert server.proc is not None
    server.proc.kill()
    killed = time.monotonic()

    server.start()  # same port, same data dir
    downtime = time.monotonic() - killed
    job = server.wait_job(job_id, timeout=90)
    to_done = time.monotonic() - killed
    assert job["state"] == "succeeded", (job, server.messages(job_id))
    total = job["frames"]["total"]
    assert total == 16 * FPS and job["attempt"] == 1

    logs = server.logs(job_id)
    messages = [line["message"] for line in logs]
    assert sorted(m for m in messages if m.endswith(" done")) == [
        "assemble 5 done", "audio 0 done", "render 1 done", "render 2 done",
        "render 3 done", "render 4 done"], messages
    assert not any("requeued" in m or "failed" in m for m in messages), messages
    assert messages.count("job succeeded") == 1, messages
    tasks = server.tasks(job_id)
    assert [(t["kind"], t["state"], t["failures"], t["requeues"]) for t in tasks] == [
        ("audio", "succeeded", 0, 0)] + [("render", "succeeded", 0, 0)] * 4 + [
        ("assemble", "succeeded", 0, 0)]
    nodes = server.nodes()
    render_nodes = {line["node_id"] for line in logs
                    if line["message"].startswith("render ") and line["message"].endswith(" done")}
    assert render_nodes == {nodes["a"]["id"], nodes["b"]["id"]}, render_nodes
    only_export(server, job_id)
    check_video(server.download(job, tmp_path / "out.mp4"), total)
    figure("server SIGKILL", f"serve down {downtime:.2f} s (SIGKILL -> restarted and ready, "
           f"2 nodes rendering 4 chunks); SIGKILL -> job succeeded {to_done:.2f} s; each "
           "task succeeded once, no requeue, one export")


def test_local_nodes_stop_when_serve_is_killed(processes: list[Proc], tmp_path: Path) -> None:
    """`framefarm serve --workers 1` SIGKILLed (no chance to stop its nodes): the local
    node notices that its parent is gone and exits instead of polling a dead address."""
    data = tmp_path / "data"
    serve = Proc([sys.executable, "-m", "framefarm", "serve", "--port", str(free_port()),
                  "--workers", "1", "--data-dir", str(data)], clean_env(),
                 tmp_path / "serve.log")
    processes.append(serve)
    node_pid = wait_for(lambda: next(iter(children(serve.pid)), None), timeout=60,
                        what="serve's local node")
    node_log = data / "nodes" / "node0" / "node.log"
    # Registered, and polling for work: its log shows a claim (httpx logs each request).
    wait_for(lambda: node_log.exists() and "registered as" in node_log.read_text()
             and "/internal/tasks/claim" in node_log.read_text(),
             timeout=60, what="the node to register and ask for work")
    os.kill(serve.pid, signal.SIGKILL)
    serve.popen.wait(timeout=10)
    killed = time.monotonic()

    def gone() -> bool:
        try:
            os.kill(node_pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{node_pid}/stat").read_text().split(") ")[1].startswith("Z")

    wait_for(gone, timeout=15, what="the orphaned node to exit")
    figure("serve SIGKILL", f"its local node exited {time.monotonic() - killed:.2f} s later")
