"""The sandbox around a code template's programs (engines/remotion/sandbox.py), for real:
an unprivileged user that cannot read the node's files, a scrubbed environment, a network
namespace with only its own loopback, a memory limit; and, through the farm, templates that
try to reach a host or loop forever fail with a clear message while the node keeps
working. The node runs as root here (as in CI), which the sandbox needs."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framefarm import errors
from framefarm.engines.remotion import errors as remotion_errors
from framefarm.engines.remotion import process, project, sandbox
from support.api import wait_job
from support.remotion import EXAMPLE, code_tenant, render_body, upload_example

pytestmark = pytest.mark.ffmpeg


@pytest.fixture
def rules() -> sandbox.Policy:
    found = sandbox.policy()
    if not found.confined:
        pytest.skip("the sandbox confines only a node that runs as root")
    return found


def run(rules: sandbox.Policy, code: str, tmp_path: Path, *, network: bool,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Python code run the way the engine runs Node.js: inside the sandbox."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    rules.hand_over(scratch)
    return subprocess.run(rules.command([sys.executable, "-c", code], network=network),
                          env=rules.environment(scratch, env or {}), capture_output=True,
                          text=True, timeout=60, cwd=scratch)


@pytest.fixture
def listening() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on the node's loopback (where the API listens): its port and the
    paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(b"reached")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], asked
    server.shutdown()
    server.server_close()


def test_it_runs_as_the_unprivileged_user_without_the_nodes_secrets(
        rules: sandbox.Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "node" / "secret"
    secret.parent.mkdir()
    secret.write_text("the node's secret")
    os.chmod(secret.parent, 0o700)
    monkeypatch.setenv("FRAMEFARM_ENROLMENT_TOKEN", "enrolment-token")
    probe = run(rules, "import os, sys\n"
                f"print(os.getuid(), os.getgid(), os.getgroups())\n"
                f"print('FRAMEFARM_ENROLMENT_TOKEN' in os.environ)\n"
                f"open({str(secret)!r}).read()", tmp_path, network=False)
    said = probe.stdout.splitlines()
    assert said[0] == f"{rules.uid} {rules.gid} []"
    assert said[1] == "False"  # nothing of the node's environment
    assert probe.returncode != 0 and "Permission denied" in probe.stderr


def test_each_tenant_runs_as_a_user_of_its_own_that_cannot_read_the_others(
        rules: sandbox.Policy, remotion_cache: Path, tmp_path: Path) -> None:
    first, second = (project.owner_number(remotion_cache, f"ten_{name}_{tmp_path.name}")
                     for name in ("a", "b"))
    assert first != second
    assert project.owner_number(remotion_cache, f"ten_a_{tmp_path.name}") == first
    with sandbox.owned_by(first):
        owner = sandbox.policy()
        ready = project.prepare(EXAMPLE, remotion_cache)
    assert owner.uid not in (None, rules.uid) and owner.owned
    root = ready.source / "src" / "Root.tsx"
    for path in (ready.source, root, ready.bundle / "index.html"):
        found = path.stat()
        assert (found.st_uid, found.st_gid) == (os.getuid(), owner.gid), path
        assert not found.st_mode & 0o007, f"{path} is readable by others"
    read = f"print(open({str(root)!r}).read()[:20])"
    with sandbox.owned_by(first):  # its own project: readable
        mine = run(sandbox.policy(), read, tmp_path, network=False)
    assert mine.returncode == 0 and mine.stdout.strip(), mine.stderr
    with sandbox.owned_by(second):  # another tenant's: not
        theirs = run(sandbox.policy(), read, tmp_path, network=False)
    assert theirs.returncode != 0 and "Permission denied" in theirs.stderr, theirs
    # The same files prepared for the other tenant are a build of its own.
    with sandbox.owned_by(second):
        other = project.prepare(EXAMPLE, remotion_cache)
    assert other.source != ready.source and other.source.stat().st_gid != owner.gid


def test_drawing_has_its_own_loopback_and_no_other_network(
        rules: sandbox.Policy, tmp_path: Path, listening: tuple[int, list[str]]) -> None:
    port, _ = listening
    reach = ("import socket\n"
             f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
             "print('reached')")
    # Installing has the network (the registry): the node's loopback answers there...
    assert run(rules, reach, tmp_path, network=True).stdout.strip() == "reached"
    # ...drawing and bundling do not: the node's port is not there, nor any route out.
    blocked = run(rules, reach, tmp_path, network=False)
    assert blocked.returncode != 0 and "Connection refused" in blocked.stderr, blocked
    out = run(rules, "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=5)",
              tmp_path, network=False)
    assert out.returncode != 0 and "unreachable" in out.stderr.lower(), out.stderr
    # Its own loopback works: Remotion's bundle server and Chromium talk over it.
    own = run(rules, "import socket\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
              "c = socket.create_connection(s.getsockname()); print('own loopback')",
              tmp_path, network=False)
    assert own.stdout.strip() == "own loopback", own.stderr


def test_a_process_tree_over_the_memory_limit_is_stopped_with_a_message(
        rules: sandbox.Policy, tmp_path: Path) -> None:
    hog = subprocess.Popen([sys.executable, "-c",
                            "import time\nblock = bytearray(400 * 2**20)\n"
                            "for i in range(0, len(block), 4096): block[i] = 1\n"
                            "time.sleep(60)"], process_group=0)
    watch = process._Watch(hog, timeout=60, cancel=None, memory_bytes=200 * 2**20)
    try:
        hog.wait(timeout=60)
    finally:
        watch.close()
    with pytest.raises(remotion_errors.OverMemory, match="more than 200 MiB"):
        watch.raise_if_stopped("remotion frames")
    assert isinstance(remotion_errors.OverMemory("x"), errors.DocumentError)  # not retried


def probe_card(folder: Path, body: str) -> None:
    """The example's Card component with ``body`` (TSX) at its start."""
    card = folder / "src" / "Card.tsx"
    text = (EXAMPLE / "src" / "Card.tsx").read_text()
    text = ("import {cancelRender, continueRender, delayRender} from 'remotion';\n"
            + text.replace("const frame = useCurrentFrame();",
                           "const frame = useCurrentFrame();\n" + body, 1))
    card.write_text(text)


def test_templates_that_reach_out_or_loop_fail_and_the_node_keeps_working(
        rules: sandbox.Policy, make_farm: Any, remotion_cache: Path, example_copy: Path,
        listening: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    port, asked = listening
    farm = make_farm(max_attempts=1)
    monkeypatch.setenv("FRAMEFARM_LIMIT_RENDER_TIMEOUT", "30")
    key = code_tenant(farm)
    farm.start_nodes(1, threads=1, remotion_cache=remotion_cache)

    probe_card(example_copy, f"""
  const [probe] = React.useState(() => delayRender('reach the node'));
  React.useEffect(() => {{
    fetch('http://127.0.0.1:{port}/from-the-template')
      .then(() => continueRender(probe))
      .catch((e) => cancelRender(new Error('the template reached nothing: ' + e)));
  }}, [probe]);
""")
    reaching = upload_example(farm, key, folder=example_copy)
    done = wait_job(farm.client, key, farm.submit(key, render_body(reaching))["id"],
                    timeout=600)
    assert done["state"] == "failed", done
    assert "the template reached nothing" in done["error"], done["error"]
    assert asked == []  # the node's loopback never saw it

    probe_card(example_copy, "  if (frame >= 2) { while (true) { /* never returns */ } }\n")
    looping = upload_example(farm, key, folder=example_copy)
    done = wait_job(farm.client, key, farm.submit(key, render_body(looping))["id"],
                    timeout=600)
    assert done["state"] == "failed", done
    assert "time limit" in done["error"], done["error"]

    # The same node renders a well-behaved template afterwards.
    plain = upload_example(farm, key)
    body = render_body(plain)
    body["options"] = {"quality": "draft", "size": "360p"}
    done = wait_job(farm.client, key, farm.submit(key, body)["id"], timeout=600)
    assert done["state"] == "succeeded", done


def test_the_policy_is_off_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.base_policy.cache_clear()
    try:
        monkeypatch.setenv("FRAMEFARM_SANDBOX", "off")
        assert not sandbox.policy().confined
        sandbox.base_policy.cache_clear()
        monkeypatch.setenv("FRAMEFARM_SANDBOX", "sometimes")
        with pytest.raises(remotion_errors.ToolMissing, match="auto, on or off"):
            sandbox.policy()
    finally:
        sandbox.base_policy.cache_clear()
