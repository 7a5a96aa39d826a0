"""A render node's readiness, as its container runtime sees it: the state file the agent
writes (starting, ready, draining, drained, stopped), the health command that Docker's
HEALTHCHECK and Kubernetes' probes run, and the preStop drain. The agent against the fake
API first, then real ``framefarm worker`` processes and the real command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from framefarm.protocol import ClaimedTask as Task
from framefarm.worker import health, status
from framefarm.worker.agent import Agent
from framefarm.worker.progress import Progress
from framefarm.worker.status import NodeState, StatusFile
from support.documents import long_doc
from support.fake_api import FakeApi, claimed
from support.polling import wait_for
from support.server import Server

MakeAgent = Callable[..., Agent]


def state_of(agent: Agent) -> status.Report:
    report = status.read(agent.workdir)
    assert report is not None, "the agent wrote no state"
    return report


def seen_during_execute(monkeypatch: pytest.MonkeyPatch,
                        during: Callable[[Agent], None] = lambda agent: None
                        ) -> list[status.Report]:
    """Replace the engine work; record the state file as the task runs."""
    seen: list[status.Report] = []

    def execute(self: Agent, task: Task, folder: Path, cancel: threading.Event,
                progress: Progress) -> tuple[Path | None, str, None]:
        during(self)
        seen.append(state_of(self))
        out = folder / "out.mp4"
        out.write_bytes(b"video")
        return out, "mp4", None

    monkeypatch.setattr(Agent, "_execute", execute)
    return seen


# -- the agent's side ------------------------------------------------------------------------


def test_a_node_is_ready_once_registered_and_shows_its_task(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = make_agent(register=False, poll_seconds=0.01)
    seen = seen_during_execute(monkeypatch)
    api.tasks = [claimed("render")]
    original = agent.register

    def register() -> None:
        assert state_of(agent).state is NodeState.STARTING  # written before registering
        original()

    monkeypatch.setattr(agent, "register", register)

    def stop_when_idle() -> bool:
        report = status.read(agent.workdir)
        if report and report.state is NodeState.READY and not report.task and seen:
            agent.drain()
            return True
        return False

    def watch() -> None:
        try:
            wait_for(stop_when_idle, timeout=10, what="the task to finish")
        finally:
            agent.drain()

    watcher = threading.Thread(target=watch)
    watcher.start()
    agent.run()
    watcher.join()
    assert agent._announcer is not None
    agent._announcer.join(timeout=10)
    [during] = seen
    assert (during.state, during.task, during.node_id) == (NodeState.READY, "task-1",
                                                            agent.node_id)
    assert state_of(agent).state is NodeState.STOPPED


def test_sigterm_drain_reports_draining_until_the_loop_ends(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = make_agent(poll_seconds=0.01)
    seen = seen_during_execute(monkeypatch, during=lambda a: (a.drain(),
                                                              a._announcer and
                                                              a._announcer.join(10)))
    api.tasks = [claimed("render"), claimed("render", task_id="task-2")]
    agent.run()
    [during] = seen  # the second task was never claimed
    assert (during.state, during.task) == (NodeState.DRAINING, "task-1")
    assert state_of(agent).state is NodeState.STOPPED
    assert api.routes().count("POST /internal/tasks/claim") == 1
    assert len(api.calls("/internal/nodes/drain")) == 1


def test_a_drain_request_finishes_the_task_then_idles_until_stopped(
        api: FakeApi, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the preStop hook asks: the node finishes, claims nothing more, says it is
    drained, and is still running when the SIGTERM comes, which then ends it at once."""
    agent = make_agent(poll_seconds=0.01)
    agent.heartbeat_seconds = 0.01
    requested = threading.Event()

    def during(a: Agent) -> None:
        status.request_drain(a.workdir)
        # The heartbeat thread notices the request while the task runs.
        wait_for(lambda: a.holding, timeout=10, what="the heartbeat to see the request")
        requested.set()

    seen = seen_during_execute(monkeypatch, during)
    api.tasks = [claimed("render"), claimed("render", task_id="task-2")]
    runner = threading.Thread(target=agent.run)
    runner.start()
    wait_for(lambda: (r := status.read(agent.workdir)) and r.state is NodeState.DRAINED,
             timeout=10, what="the node to report drained")
    assert requested.is_set() and runner.is_alive() and not agent.stopping.is_set()
    [during_task] = seen
    assert (during_task.state, during_task.task) == (NodeState.DRAINING, "task-1")
    assert len(api.calls("/internal/nodes/drain")) == 1
    claims = api.routes().count("POST /internal/tasks/claim")
    agent.drain()  # the SIGTERM after the hook: the first signal, and nothing to finish
    runner.join(timeout=10)
    assert agent._announcer is not None
    agent._announcer.join(timeout=10)
    assert not runner.is_alive()
    assert api.routes().count("POST /internal/tasks/claim") == claims == 1
    assert len(api.calls("/internal/nodes/drain")) == 1  # told once
    assert state_of(agent).state is NodeState.STOPPED


def test_a_request_left_by_an_earlier_node_is_ignored(
        api: FakeApi, make_agent: MakeAgent) -> None:
    agent = make_agent(poll_seconds=0.01)
    status.request_drain(agent.workdir)
    runner = threading.Thread(target=agent.run)
    runner.start()
    wait_for(lambda: (r := status.read(agent.workdir)) and r.state is NodeState.READY
             and api.routes().count("POST /internal/tasks/claim") >= 2,
             timeout=10, what="the node to claim")
    agent.drain()
    runner.join(timeout=10)
    assert agent._announcer is not None
    agent._announcer.join(timeout=10)
    assert not agent.holding


def test_writes_are_whole_and_beats_are_rate_limited(tmp_path: Path) -> None:
    now = [1000.0]
    file = StatusFile(tmp_path, wall=lambda: now[0])
    file.write()
    first = json.loads((tmp_path / status.STATE_FILE).read_text())
    assert first["state"] == "starting" and first["at"] == 1000.0
    now[0] += status.BEAT_SECONDS / 2
    file.beat()
    assert status.read(tmp_path).at == 1000.0  # type: ignore[union-attr]
    now[0] += status.BEAT_SECONDS
    file.beat()
    assert status.read(tmp_path).at == now[0]  # type: ignore[union-attr]
    assert [p.name for p in tmp_path.iterdir()] == [status.STATE_FILE]  # no temporaries


def test_a_state_file_that_cannot_be_written_costs_no_work(tmp_path: Path) -> None:
    """The heartbeat thread writes it too: a full or read-only disk must not stop the
    heartbeats. The file just goes stale, which the health check reports."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    file = StatusFile(blocked)
    file.write()  # no exception
    file.beat()
    assert status.read(blocked) is None
    assert not status.judge(status.read(blocked), now=0, max_age=60)[0]


# -- the checker's side --------------------------------------------------------------------


def report(state: NodeState, at: float = 100.0, task: str | None = None) -> status.Report:
    return status.Report(state=state, pid=7, node_id="node-1", task=task, at=at)


@pytest.mark.parametrize(("state", "ready", "live"), [
    (NodeState.STARTING, False, True),
    (NodeState.READY, True, True),
    (NodeState.DRAINING, False, True),
    (NodeState.DRAINED, False, True),
    (NodeState.STOPPED, False, False),
])
def test_ready_only_when_taking_work(state: NodeState, ready: bool, live: bool) -> None:
    assert status.judge(report(state), now=110, max_age=60)[0] is ready
    assert status.judge(report(state), now=110, max_age=60, live_only=True)[0] is live


def test_a_silent_node_is_neither_ready_nor_live() -> None:
    ok, why = status.judge(report(NodeState.READY, task="t"), now=200, max_age=60)
    assert not ok and "100 s old" in why
    assert not status.judge(report(NodeState.READY), now=200, max_age=60, live_only=True)[0]
    assert not status.judge(None, now=200, max_age=60)[0]


def test_the_drain_hook_waits_for_the_task_in_hand(tmp_path: Path) -> None:
    file = StatusFile(tmp_path)
    file.registered, file.node_id, file.task = True, "node-1", "task-1"
    file.write()
    now = [0.0]

    def sleep(seconds: float) -> None:  # the node finishes while the hook waits
        now[0] += seconds
        assert (tmp_path / status.DRAIN_FILE).exists()
        if now[0] >= 2:
            file.draining, file.task = True, None
            file.write()

    ok, why = health.drain(tmp_path, wait=30, clock=lambda: now[0], sleep=sleep)
    assert ok and "drained" in why and now[0] == 2.0
    file.draining, file.task = False, "task-2"
    file.write()
    ok, why = health.drain(tmp_path, wait=3, clock=lambda: now[0],
                           sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert not ok and "still ready" in why


# -- real processes ------------------------------------------------------------------------


def check(workdir: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "framefarm.worker.health", "--workdir",
                           str(workdir), *args], capture_output=True, text=True, timeout=60,
                          check=False)
    return done.returncode, done.stdout + done.stderr


def test_the_health_command_follows_a_real_node_through_sigterm_and_the_prestop_hook(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """Two ``framefarm worker`` processes, each caught mid-chunk: one drained by SIGTERM
    (not ready at once, exits 0 when its chunk is done), one by the preStop hook (the hook
    returns once its chunk is done, the node idles, and the SIGTERM after it ends it at
    once). The jobs still succeed, nothing requeued."""
    server = servers(tmp_path / "data", lease_seconds=10, heartbeat_seconds=0.5,
                     min_chunk_seconds=2).start()
    first, second = server.worker("first"), server.worker("second")
    server.wait_nodes("first", "second")
    for name in ("first", "second"):
        wait_for(lambda n=name: check(server.workdir(n))[0] == 0, timeout=30,  # type: ignore[misc]
                 what=f"{name} to report ready")
    assert check(server.workdir("first"), "--live")[0] == 0

    job_id = server.submit(long_doc(8, shapes=12))  # two nodes: several chunks each
    server.wait_rendering(job_id)
    busy = wait_for(lambda: [n for n in ("first", "second")
                             if (r := status.read(server.workdir(n))) and r.task],
                    timeout=30, what="a node with a task")
    term, hook = (first, "second") if busy[0] == "first" else (second, "first")
    term_name = "first" if term is first else "second"

    term.popen.send_signal(signal.SIGTERM)
    code, why = wait_for(lambda: (c := check(server.workdir(term_name)))[0] == 1 and c,
                         timeout=10, what="the SIGTERMed node to report not ready")
    assert "draining" in why or "stopped" in why, why  # (its chunk may be done already)
    assert term.popen.wait(timeout=120) == 0, term.tail()
    assert "stopped" in check(server.workdir(term_name))[1]

    # The other node, via the hook, once it holds a task (of a second job: the first may
    # be done by now).
    second_job = server.submit(long_doc(8, shapes=12))
    wait_for(lambda: (r := status.read(server.workdir(hook))) and r.task, timeout=60,
             what=f"{hook} to take a task")
    started = time.monotonic()
    code, why = check(server.workdir(hook), "--drain", "--wait", "120")
    assert code == 0 and "drained" in why, why
    proc = server.workers[hook]
    assert proc.popen.poll() is None, "the hook must not stop the node"
    assert check(server.workdir(hook))[0] == 1
    assert time.monotonic() - started < 120
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=10) == 0, proc.tail()

    server.worker("third")
    for each in (job_id, second_job):
        job = server.wait_job(each, timeout=180)
        assert job["state"] == "succeeded" and job["attempt"] == 1, job
        messages = server.messages(each)
        assert not any("requeued" in m or "failed" in m for m in messages), messages
