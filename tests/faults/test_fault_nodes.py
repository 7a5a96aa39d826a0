"""Render nodes that die, fail every render, or hang: ``framefarm serve --workers 0`` and
``framefarm worker`` processes on real sockets; the job still ends with a correct video."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg
import pytest

from support.documents import FPS, long_doc
from support.figures import figure
from support.media import write_fake_ffmpeg
from support.polling import wait_for
from support.server import Server, children
from support.video_checks import assert_frames_equal, check_video

pytestmark = pytest.mark.ffmpeg


def test_a_node_killed_mid_chunk_is_requeued_and_the_video_is_frame_exact(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """SIGKILL the node rendering the only chunk: once the lease (3 s) expires the chunk is
    requeued without spending a retry, another node renders it, and the lossless result is
    bit for bit the in-process render."""
    server = servers(tmp_path / "data", lease_seconds=3, heartbeat_seconds=0.5,
                     min_chunk_seconds=60).start()
    first = server.worker("first")
    server.wait_nodes("first")
    document = long_doc(8, shapes=12)
    job_id = server.submit(document, quality="lossless")
    running = server.wait_rendering(job_id)
    total = running["frames"]["total"]
    assert total == 8 * FPS and 0 < running["frames"]["done"] < total
    assert children(first.pid), "the node's FFmpeg should be running"

    first.popen.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    first.popen.wait(timeout=10)
    server.worker("second")  # starts while the lease runs out

    def requeued() -> bool:
        return any("requeued: lease expired" in m for m in server.messages(job_id))

    wait_for(requeued, timeout=30, interval=0.05, what="the lease to expire")
    to_requeue = time.monotonic() - killed
    job = server.wait_job(job_id)
    to_done = time.monotonic() - killed
    assert job["state"] == "succeeded", (job, server.messages(job_id))
    assert job["attempt"] == 1 and job["frames"] == {"done": total, "total": total}
    messages = server.messages(job_id)
    assert not any("failed" in m for m in messages), messages  # no retry spent
    assert sorted(m for m in messages if m.endswith(" done")) == [
        "assemble 2 done", "audio 0 done", "render 1 done"], messages
    nodes = server.nodes()
    # first had mixed the audio (claimed first) before the chunk it died in.
    assert nodes["first"]["crashes"] == 1 and nodes["first"]["tasks_done"] == 1

    video = server.download(job, tmp_path / "farm.mp4")
    check_video(video, total)
    assert assert_frames_equal(video, document, tmp_path) == total
    # A lease of 3 s from the last heartbeat (at most 0.5 s before the kill), noticed by
    # the upkeep loop (every lease/3 = 1 s) or the next claim.
    assert to_requeue <= 3 + 1 + 1.5, to_requeue
    figure("node SIGKILL", f"SIGKILL -> task requeued {to_requeue:.2f} s (lease 3 s, "
           f"heartbeat 0.5 s); SIGKILL -> job succeeded {to_done:.2f} s; {total} frames, "
           "lossless, identical to the in-process render")


def test_a_node_whose_every_render_fails_is_blocked_and_the_job_succeeds(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """A node whose FFmpeg always exits 1 fails two tasks of the job, is blocked from it
    (node_block_failures=2), and a healthy node renders everything; no task reaches
    max_attempts, so the job succeeds on its first attempt."""
    server = servers(tmp_path / "data", lease_seconds=10, heartbeat_seconds=0.5,
                     min_chunk_seconds=1, node_block_failures=2, max_attempts=3,
                     retry_backoff_seconds=0.2).start()
    broken_ffmpeg = write_fake_ffmpeg(
        tmp_path / "broken-ffmpeg", 'echo "fault-test: encoder exploded" >&2\nexit 1')
    server.worker("healthy")
    server.worker("broken", FRAMEFARM_FFMPEG=str(broken_ffmpeg))
    server.wait_nodes("healthy", "broken")
    # The healthy node waits (drained) until the broken one has been blocked, so the
    # broken one gets the first tasks whatever the timing.
    server.set_draining("healthy", True)
    job_id = server.submit(long_doc(3, shapes=4))
    submitted = time.monotonic()

    def blocked() -> list[str]:
        return [m for m in server.messages(job_id) if "blocked for this job" in m]

    block = wait_for(blocked, timeout=30, interval=0.05, what="the broken node's block")
    to_block = time.monotonic() - submitted
    server.set_draining("healthy", False)
    job = server.wait_job(job_id)
    assert job["state"] == "succeeded", (job, server.messages(job_id))
    assert job["attempt"] == 1

    nodes = server.nodes()
    broken, healthy = nodes["broken"], nodes["healthy"]
    assert block == [f"node {broken['id']} blocked for this job after 2 failures"], block
    assert (broken["tasks_failed"], broken["tasks_done"]) == (2, 0), broken
    assert healthy["tasks_failed"] == 0, healthy
    rows = server.query("SELECT node_id, failures, blocked FROM node_blocks WHERE job_id = ?",
                        job_id)
    assert [(r["node_id"], r["failures"], bool(r["blocked"])) for r in rows] == [
        (broken["id"], 2, True)]
    messages = server.messages(job_id)
    failures = [m for m in messages if "failed (attempt" in m]
    assert len(failures) == 2 and all("exited with code 1" in m for m in failures), messages
    assert all("fault-test: encoder exploded" in m for m in failures), failures
    # Every task that succeeded ran on the healthy node.
    done = [line for line in server.logs(job_id) if line["message"].endswith(" done")]
    assert done and {line["node_id"] for line in done} == {healthy["id"]}, done
    tasks = server.tasks(job_id)
    assert tasks and all(t["state"] == "succeeded" and t["failures"] <= 1 for t in tasks), \
        [dict(t) for t in tasks]

    video = server.download(job, tmp_path / "out.mp4")
    check_video(video, job["frames"]["total"])
    figure("broken node", f"submit -> broken node blocked {to_block:.2f} s after 2 failures "
           f"(FFmpeg exits 1); job succeeded on the healthy node, {job['frames']['total']} "
           "frames")


def test_a_hung_render_is_stopped_counted_as_a_failure_and_rerun_elsewhere(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """A node whose FFmpeg reads nothing and sleeps: with ``--hang-seconds 3`` the node
    stops it after 3 s without progress and reports a failure; a healthy node renders
    the chunk again and the job succeeds."""
    server = servers(tmp_path / "data", lease_seconds=10, heartbeat_seconds=0.5,
                     min_chunk_seconds=1, node_block_failures=1, max_attempts=3,
                     retry_backoff_seconds=0.2).start()
    # Only the video encoder hangs: the audio mix, claimed first, runs the real FFmpeg.
    real = imageio_ffmpeg.get_ffmpeg_exe()
    hung_ffmpeg = write_fake_ffmpeg(tmp_path / "hung-ffmpeg",
                                    f'case "$*" in *libx264*) exec sleep 600;; esac\n'
                                    f'exec {real} "$@"')
    server.worker("healthy")
    hung = server.worker("hung", "--hang-seconds", "3", FRAMEFARM_FFMPEG=str(hung_ffmpeg))
    server.wait_nodes("healthy", "hung")
    server.set_draining("healthy", True)  # the hung node takes the audio, then a chunk
    job_id = server.submit(long_doc(3, shapes=4))

    def hung_claim() -> list[str]:
        return [m for m in server.messages(job_id) if m.startswith("render 1 ")
                and m.endswith("claimed")]

    wait_for(hung_claim, timeout=30, interval=0.05, what="the hung node's claim")
    claimed = time.monotonic()
    server.set_draining("healthy", False)
    sleeping = wait_for(lambda: children(hung.pid), timeout=10, what="the fake FFmpeg")

    def failure() -> list[str]:
        return [m for m in server.messages(job_id) if "failed (attempt 1)" in m]

    failed = wait_for(failure, timeout=30, interval=0.05, what="the hang to be reported")
    to_failure = time.monotonic() - claimed
    assert len(failed) == 1 and failed[0].startswith("render 1 failed"), failed
    assert "no progress for 3 s" in failed[0], failed
    # The sleeping stand-in was stopped, not left behind.
    wait_for(lambda: not set(sleeping) & set(children(hung.pid)), timeout=10,
             what="the hung FFmpeg to be stopped")

    job = server.wait_job(job_id)
    assert job["state"] == "succeeded", (job, server.messages(job_id))
    nodes = server.nodes()
    # hung mixed the audio (its real FFmpeg), then hung on the chunk.
    assert (nodes["hung"]["tasks_failed"], nodes["hung"]["tasks_done"]) == (1, 1)
    assert "no progress for 3 s" in (nodes["hung"]["last_error"] or "")
    done = {line["message"]: line["node_id"] for line in server.logs(job_id)
            if line["message"].endswith(" done")}
    assert done.pop("audio 0 done") == nodes["hung"]["id"], done
    assert set(done.values()) == {nodes["healthy"]["id"]}, done
    assert "no progress for 3 s" in hung.text(), hung.tail()
    video = server.download(job, tmp_path / "out.mp4")
    check_video(video, job["frames"]["total"])
    # 3 s without a frame, checked at each heartbeat (0.5 s), then the failure report.
    assert 2.5 <= to_failure <= 3 + 0.5 + 3, to_failure
    figure("hung render", f"claim -> hang reported as a failure {to_failure:.2f} s "
           "(--hang-seconds 3, heartbeat 0.5 s); job succeeded on the healthy node")


def test_a_hung_audio_task_is_stopped_too(servers: Callable[..., Server],
                                          tmp_path: Path) -> None:
    """The same hung FFmpeg on the audio task of a job: it should be stopped after
    ``--hang-seconds`` and counted as a failure like a hung chunk."""
    server = servers(tmp_path / "data", lease_seconds=10, heartbeat_seconds=0.5,
                     min_chunk_seconds=60, node_block_failures=1, max_attempts=3,
                     retry_backoff_seconds=0.2).start()
    hung_ffmpeg = write_fake_ffmpeg(tmp_path / "hung-ffmpeg", "exec sleep 600")
    server.worker("healthy")
    hung = server.worker("hung", "--hang-seconds", "3", FRAMEFARM_FFMPEG=str(hung_ffmpeg))
    server.wait_nodes("healthy", "hung")
    server.set_draining("healthy", True)  # hung takes the audio (claimed first)
    job_id = server.submit(long_doc(8, shapes=8))

    def claimed(what: str) -> list[dict[str, object]]:
        return [line for line in server.logs(job_id)
                if str(line["message"]).startswith(what) and
                str(line["message"]).endswith("claimed")]

    audio = wait_for(lambda: claimed("audio 0 "), timeout=30, interval=0.05,
                     what="the audio task")
    server.set_draining("healthy", False)  # healthy takes the only chunk
    assert audio[0]["node_id"] == server.nodes()["hung"]["id"], "hung should take the audio"
    started = time.monotonic()
    wait_for(lambda: children(hung.pid), timeout=10, what="the fake FFmpeg")
    try:
        failed = wait_for(
            lambda: [m for m in server.messages(job_id) if m.startswith("audio 0 failed")],
            timeout=3 + 0.5 + 4, interval=0.1, what="the hung audio task to be stopped")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: the audio FFmpeg still runs "
                       f"{time.monotonic() - started:.1f} s after its claim") from None
    assert "no progress for 3 s" in failed[0], failed
    job = server.wait_job(job_id)
    assert job["state"] == "succeeded", (job, server.messages(job_id))
    check_video(server.download(job, tmp_path / "out.mp4"), job["frames"]["total"])


def _processes_using(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (a node's FFmpeg writes there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            if str(folder) in argv:
                found.append(int(entry.name))
    return found


def test_sigterm_drains_a_node_it_finishes_its_task_and_claims_no_more(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """SIGTERM mid-chunk (what Kubernetes and Docker send): the node shows as draining,
    finishes the chunk in hand, claims nothing more and exits 0. Nothing is requeued or
    failed; a second node renders the rest."""
    server = servers(tmp_path / "data", lease_seconds=10, heartbeat_seconds=0.5,
                     min_chunk_seconds=2).start()
    first = server.worker("first")
    server.wait_nodes("first")
    job_id = server.submit(long_doc(8, shapes=12))  # one node: 2 chunks, audio, assemble
    server.wait_rendering(job_id)
    first.popen.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_for(lambda: server.nodes()["first"]["status"] == "draining", timeout=10,
             what="the node to show as draining")
    assert first.popen.wait(timeout=60) == 0, first.tail()
    to_exit = time.monotonic() - signalled
    node_id = server.nodes()["first"]["id"]
    tasks = server.tasks(job_id)
    assert not [t for t in tasks if t["state"] == "running"], [dict(t) for t in tasks]
    mine = [t for t in tasks if t["node_id"] == node_id]
    assert mine and all(t["state"] == "succeeded" for t in mine), [dict(t) for t in mine]
    assert any(t["state"] == "queued" for t in tasks), "the node should have left work"
    assert "draining: finishing the current task" in first.text()

    server.worker("second")
    job = server.wait_job(job_id)
    assert job["state"] == "succeeded" and job["attempt"] == 1, job
    messages = server.messages(job_id)
    assert not any("requeued" in m or "failed" in m for m in messages), messages
    video = server.download(job, tmp_path / "out.mp4")
    check_video(video, job["frames"]["total"])
    figure("node SIGTERM", f"SIGTERM -> node exited 0 after finishing its task in "
           f"{to_exit:.2f} s; {len(mine)} task(s) done by it, none requeued or failed")


def test_a_second_sigterm_stops_the_node_at_once(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """Twice: the node stops now (exit 130) and takes its FFmpeg with it; the task is
    requeued when its lease runs out, without spending a retry."""
    server = servers(tmp_path / "data", lease_seconds=3, heartbeat_seconds=0.5,
                     min_chunk_seconds=60).start()
    first = server.worker("first")
    server.wait_nodes("first")
    job_id = server.submit(long_doc(8, shapes=12))
    server.wait_rendering(job_id)
    assert [p for p in _processes_using(server.workdir("first")) if p != first.pid], \
        "the node's FFmpeg should be running"
    first.popen.send_signal(signal.SIGTERM)
    # The first SIGTERM has been handled (the node is draining) before the second is sent.
    wait_for(lambda: "draining: finishing the current task" in first.text(), timeout=10,
             what="the node to start draining")
    first.popen.send_signal(signal.SIGTERM)
    assert first.popen.wait(timeout=10) == 130, first.tail()
    wait_for(lambda: not _processes_using(server.workdir("first")), timeout=10,
             what="the node's FFmpeg to exit")
    server.worker("second")
    job = server.wait_job(job_id)
    assert job["state"] == "succeeded" and job["attempt"] == 1, job
    messages = server.messages(job_id)
    assert any("requeued: lease expired" in m for m in messages), messages
    assert not any("failed" in m for m in messages), messages
