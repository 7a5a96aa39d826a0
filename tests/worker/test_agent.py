"""The render node against a fake API (worker_support): registration, claiming, the
output's upload, completion and failure reports, the one retry policy, heartbeats and
draining. Time is injected: nothing here sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from framefarm import errors, protocol
from framefarm.protocol import ClaimedTask as Task
from framefarm.worker import agent as agent_module
from framefarm.worker.agent import Agent, LeaseLost, ServerUnavailable
from framefarm.worker.progress import Progress
from framefarm.worker.retry import FIRST_DELAY, JITTER, MAX_DELAY, base_delay
from support.fake_api import AUTH, NODE_ID, SECRET, FakeApi, FakeClock, claimed, task

MakeAgent = Callable[..., Agent]
TASK = "/internal/tasks/task-1"


def without_cpu(body: dict[str, Any]) -> dict[str, Any]:
    """A report's body without the CPU seconds the node measured (checked, then left out:
    their value depends on the machine)."""
    seconds = body.pop("cpu_seconds")
    assert isinstance(seconds, float) and seconds >= 0
    return body


def stub_execute(monkeypatch: pytest.MonkeyPatch, content: bytes = b"video bytes",
                 ext: str = "mp4", error: Exception | None = None) -> list[Task]:
    """Replace the engine work: write ``content`` as the output (or raise ``error``)."""
    ran: list[Task] = []

    def execute(self: Agent, task: Task, folder: Path, cancel: threading.Event,
                progress: Progress) -> tuple[Path | None, str, None]:
        ran.append(task)
        if error is not None:
            raise error
        out = folder / f"out.{ext}"
        out.write_bytes(content)
        return out, ext, None

    monkeypatch.setattr(Agent, "_execute", execute)
    return ran


# -- registration and claiming ---------------------------------------------------------------


def test_register_sends_name_and_capabilities_and_keeps_the_credentials(
        api: FakeApi, make_agent: MakeAgent) -> None:
    agent = make_agent(register=False)
    agent.register()
    (seen,) = api.seen
    assert seen.path == "/internal/nodes/register"
    body = seen.json()
    assert body["token"] == "enrol-me" and body["name"] == "test-node"
    assert {"cores", "threads", "memory_bytes", "ffmpeg"} <= set(body["capabilities"])
    assert "Authorization" not in seen.headers
    assert (agent.node_id, agent._secret, agent.heartbeat_seconds) == (NODE_ID, SECRET, 60.0)
    assert agent._headers("lease-1") == {"Authorization": AUTH, "X-Lease-Token": "lease-1"}


def test_nothing_to_claim(api: FakeApi, make_agent: MakeAgent, clock: FakeClock) -> None:
    agent = make_agent()
    assert agent.run_one() is False
    assert api.routes() == ["POST /internal/nodes/register", "POST /internal/tasks/claim"]
    assert api.seen[-1].headers["Authorization"] == AUTH
    assert clock.sleeps == []


def test_claim_parses_the_task_into_the_protocol_model(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = stub_execute(monkeypatch)
    api.tasks.append(claimed("render", limits={"max_width": 640}, future_field="ignored"))
    assert make_agent().run_one() is True
    (got,) = ran
    assert got.kind is protocol.TaskKind.RENDER and got.frames == (0, 10)
    assert got.limits == {"max_width": 640}
    assert got.task_id == "task-1"


# -- a task from claim to complete -----------------------------------------------------------


def test_a_task_runs_uploads_through_the_api_and_completes(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    stub_execute(monkeypatch, b"\x00part\x01" * 100)
    api.tasks.append(claimed("render"))
    agent = make_agent()
    assert agent.run_one() is True

    assert api.routes() == [
        "POST /internal/nodes/register", "POST /internal/tasks/claim",
        f"POST {TASK}/upload-url", f"PUT {TASK}/output", f"POST {TASK}/complete"]
    (ask,) = api.calls("/upload-url")
    assert ask.params == {"ext": "mp4", "size": "600"}
    assert ask.json() == {"lease_token": "lease-abcdef12"}
    (put,) = api.calls("/output")
    assert put.params == {"ext": "mp4"}
    assert put.headers["X-Lease-Token"] == "lease-abcdef12"
    assert api.stored == {"jobs/job-1/task-1.mp4": b"\x00part\x01" * 100}
    (done,) = api.calls("/complete")
    # No media for a chunk: only an assemble task's export is described.
    assert without_cpu(done.json()) == {"lease_token": "lease-abcdef12",
                                        "output_key": "jobs/job-1/task-1.mp4"}
    assert not api.calls("/fail")
    assert not (tmp_path / "node" / "tasks" / "task-1").exists()


def test_a_task_without_output_completes_without_a_key(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    def silent(self: Agent, *args: Any) -> tuple[Path | None, str, None]:
        return None, "", None

    monkeypatch.setattr(Agent, "_execute", silent)
    api.tasks.append(claimed("audio"))
    make_agent().run_one()
    assert api.routes()[2:] == [f"POST {TASK}/complete"]
    assert without_cpu(api.calls("/complete")[0].json()) == {"lease_token": "lease-abcdef12"}


def test_multipart_upload_puts_each_part_retrying_storage_errors(
        api: FakeApi, make_agent: MakeAgent, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stub_execute(monkeypatch, b"x" * 25)
    api.upload = protocol.UploadUrlResponse(output_key="", multipart=protocol.Multipart(
        upload_id="up-1", part_size=10, urls=["https://s3/p1", "https://s3/p2", "https://s3/p3"]))
    puts: list[tuple[str, int, int]] = []

    def put(url: str, path: Path, offset: int, length: int) -> str:
        puts.append((url, offset, length))
        if len(puts) == 2:  # storage is briefly down for the second part
            raise agent_module.TryAgain("storage answered 503")
        return f"etag-{offset}"

    monkeypatch.setattr(agent_module, "put", put)
    api.tasks.append(claimed("render"))
    make_agent().run_one()
    assert puts == [("https://s3/p1", 0, 10), ("https://s3/p2", 10, 10),
                    ("https://s3/p2", 10, 10), ("https://s3/p3", 20, 5)]
    assert len(clock.sleeps) == 1
    (joined,) = api.calls("/upload-complete")
    assert joined.json() == {"lease_token": "lease-abcdef12",
                             "output_key": "jobs/job-1/task-1.mp4", "upload_id": "up-1",
                             "etags": ["etag-0", "etag-10", "etag-20"], "size": 25}
    assert api.calls("/complete")[0].json()["output_key"] == "jobs/job-1/task-1.mp4"


def test_assemble_reports_the_probed_export(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    stub_execute(monkeypatch)
    info = protocol.MediaInfo(size=11, duration=2.0, width=64, height=48, codec="h264",
                              format="mp4")
    monkeypatch.setattr(agent_module, "describe", lambda path, ext: info)
    api.tasks.append(claimed("assemble"))
    make_agent().run_one()
    (done,) = api.calls("/complete")
    assert done.json()["media"] == {"size": 11, "duration": 2.0, "width": 64, "height": 48,
                                    "codec": "h264", "format": "mp4"}


# -- the retry policy ------------------------------------------------------------------------


def test_gateway_errors_are_retried_with_growing_capped_pauses(
        api: FakeApi, make_agent: MakeAgent, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stub_execute(monkeypatch)
    api.fail("POST", f"{TASK}/complete", 503, 502, 504, 503, 503, 503, 503, 503)
    api.tasks.append(claimed("render"))
    make_agent().run_one()

    assert len(api.calls("/complete")) == 9  # eight refusals, then accepted
    assert not api.calls("/fail")
    sleeps = clock.sleeps
    assert len(sleeps) == 8
    for attempt, pause in enumerate(sleeps, start=1):
        low = base_delay(attempt)
        assert low <= pause <= min(low + JITTER, MAX_DELAY), (attempt, pause)
    assert sleeps[0] >= FIRST_DELAY and sleeps == sorted(sleeps)
    assert sleeps[-3:] == [MAX_DELAY] * 3  # capped


def test_transport_errors_are_retried(api: FakeApi, make_agent: MakeAgent,
                                      clock: FakeClock) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    agent = make_agent()
    api.fail("POST", "/internal/nodes/drain", refused, refused)
    agent._call(protocol.DrainResponse, "POST", "/internal/nodes/drain")
    assert len(api.calls("/drain")) == 3
    assert len(clock.sleeps) == 2


def test_patience_runs_out(api: FakeApi, make_agent: MakeAgent, clock: FakeClock) -> None:
    agent = make_agent(report_patience=5)
    api.fail("POST", f"{TASK}/complete", *[503] * 20)
    with pytest.raises(ServerUnavailable, match=r"POST .*/complete: HTTP 503 \(down\)"):
        agent._request("POST", f"{TASK}/complete",
                       body=protocol.CompleteRequest(lease_token="lease-abcdef12"))
    # 0.5 + 1 + 2 (+ jitter) fit in 5 s; the next pause (4 s) would not.
    assert len(clock.sleeps) == 3
    assert len(api.calls("/complete")) == 4
    assert clock.now <= 5


def test_no_patience_means_one_attempt(api: FakeApi, make_agent: MakeAgent,
                                       clock: FakeClock) -> None:
    agent = make_agent()
    api.fail("POST", "/internal/tasks/claim", 503)
    with pytest.raises(ServerUnavailable):
        agent.run_one()  # the claim is not worth waiting for: the loop polls again
    assert len(api.calls("/claim")) == 1
    assert clock.sleeps == []


def test_other_errors_are_not_retried(api: FakeApi, make_agent: MakeAgent,
                                      clock: FakeClock) -> None:
    agent = make_agent()
    api.fail("POST", "/internal/nodes/drain", 500)
    with pytest.raises(httpx.HTTPStatusError):
        agent._call(protocol.DrainResponse, "POST", "/internal/nodes/drain")
    assert len(api.calls("/drain")) == 1
    assert clock.sleeps == []


# -- lease lost and failures -----------------------------------------------------------------


def test_a_lost_lease_on_complete_drops_the_task(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    stub_execute(monkeypatch)
    api.fail("POST", f"{TASK}/complete", 409)
    api.tasks.append(claimed("render"))
    agent = make_agent()
    assert agent.run_one() is True
    assert len(api.calls("/complete")) == 1
    assert not api.calls("/fail")  # nothing to report: another node owns it now
    assert not (tmp_path / "node" / "tasks" / "task-1").exists()
    with pytest.raises(LeaseLost):
        api.fail("POST", "/internal/nodes/drain", 409)
        agent._request("POST", "/internal/nodes/drain")


def test_an_invalid_document_is_a_permanent_failure(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    stub_execute(monkeypatch, error=errors.DocumentError("scenes[0].duration: too long"))
    api.tasks.append(claimed("render"))
    make_agent().run_one()
    assert api.routes()[2:] == [f"POST {TASK}/fail"]
    assert without_cpu(api.calls("/fail")[0].json()) == {
        "lease_token": "lease-abcdef12", "error": "scenes[0].duration: too long",
        "permanent": True, "step": "render"}


def test_a_crash_is_a_retryable_failure_with_its_type(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    stub_execute(monkeypatch, error=MemoryError("x" * 30000))
    api.tasks.append(claimed("snapshot"))
    make_agent().run_one()
    body = api.calls("/fail")[0].json()
    assert body["permanent"] is False and body["step"] == "snapshot"
    assert len(body["error"]) == protocol.MAX_ERROR_CHARS and body["error"].endswith("xxx")


def test_a_task_the_node_cannot_read_is_handed_back(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = stub_execute(monkeypatch)
    api.tasks.append(claimed("transcode"))
    assert make_agent().run_one() is True
    assert ran == []
    body = api.calls("/fail")[0].json()
    assert body["step"] == "claim" and body["permanent"] is False
    assert "kind" in body["error"]


# -- heartbeats and draining -----------------------------------------------------------------


def test_heartbeats_report_progress_until_told_to_cancel(
        api: FakeApi, make_agent: MakeAgent, clock: FakeClock) -> None:
    agent = make_agent()
    agent.heartbeat_seconds = 0  # beat at once, each time round
    api.commands = ["continue", "cancel"]
    progress, cancel = Progress(clock), threading.Event()
    progress.set_frames(7)
    agent._heartbeat("task-1", "lease-abcdef12", cancel, progress)  # returns on 'cancel'
    assert cancel.is_set()
    beats = api.calls("/heartbeat")
    assert len(beats) == 2
    body = beats[0].json()
    assert body["lease_token"] == "lease-abcdef12" and body["frames_done"] == 7
    assert set(body["sample"]) <= {"load", "memory_used"}
    assert "preview_jpeg" not in body


def test_a_heartbeat_that_finds_the_lease_gone_stops_the_render(
        api: FakeApi, make_agent: MakeAgent, clock: FakeClock) -> None:
    agent = make_agent()
    agent.heartbeat_seconds = 0
    api.fail("POST", f"{TASK}/heartbeat", 503, 409)  # an outage is sat out; 409 is not
    cancel = threading.Event()
    agent._heartbeat("task-1", "lease-abcdef12", cancel, Progress(clock))
    assert cancel.is_set() and len(api.calls("/heartbeat")) == 2
    assert clock.sleeps == []  # heartbeats are not retried: the next one comes anyway


def test_a_render_without_progress_is_stopped_as_stalled(
        api: FakeApi, make_agent: MakeAgent, clock: FakeClock) -> None:
    agent = make_agent(hang_seconds=30)
    agent.heartbeat_seconds = 0
    progress, cancel = Progress(clock), threading.Event()
    progress.watch()
    clock.now += 31
    agent._heartbeat("task-1", "lease-abcdef12", cancel, progress)
    assert progress.stalled and cancel.is_set()
    assert api.calls("/heartbeat") == []


def test_drain_tells_the_server_and_claims_nothing_more(api: FakeApi,
                                                        make_agent: MakeAgent) -> None:
    agent = make_agent()
    agent.drain()
    assert agent.stopping.is_set()
    assert agent._announcer is not None
    agent._announcer.join(timeout=30)
    assert not agent._announcer.is_alive()
    agent.drain()  # a second SIGTERM's drain: no second announcement
    agent.run()  # returns at once: draining
    assert api.routes() == ["POST /internal/nodes/register", "POST /internal/nodes/drain"]
    assert api.calls("/drain")[0].headers["Authorization"] == AUTH


# -- the protocol models ---------------------------------------------------------------------


def test_requests_forbid_unknown_fields_and_responses_ignore_them() -> None:
    with pytest.raises(ValueError, match="extra"):
        protocol.CompleteRequest.model_validate({"lease_token": "l", "outputkey": "typo"})
    with pytest.raises(ValueError, match="20000"):
        protocol.FailRequest(lease_token="l", error="x" * 20001)
    answer = protocol.TaskHeartbeatResponse.model_validate({"command": "cancel", "new": 1})
    assert answer.command is protocol.Command.CANCEL


def test_the_claim_round_trips_in_todays_wire_format() -> None:
    wire = claimed("assemble", asset_urls={"ab" * 32: None})
    parsed = task("assemble", asset_urls={"ab" * 32: None})
    assert parsed.model_dump(mode="json", exclude={"limits"}) == wire
    assert parsed.lease_expires_at.isoformat() == "2030-01-01T00:00:00+00:00"
