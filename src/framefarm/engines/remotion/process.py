"""The only place the Remotion engine starts a program: npm (``npm ci``) and Node.js
(``bridge.mjs``, which starts Chromium). A sandbox (an unprivileged user, its own folder,
no network but what rendering needs, memory and time limits) wraps these two functions
and nothing else.

Both run in their own process group, with a timeout and a cancel event; stopping one
terminates its group (Remotion then kills its Chromium, which it also starts with a
parent-death signal), then kills what is left after a grace period.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import IO, Any

from framefarm import errors
from framefarm.engines.remotion import errors as remotion_errors
from framefarm.engines.remotion import sandbox

_TAIL_LINES = 40
_KILL_GRACE = 3.0
_DEFAULT_CHROMIUM = Path("/usr/bin/chromium")

# Messages of a bridge command (see bridge.mjs): a JSON object per line on its channel (the
# pipe whose descriptor FRAMEFARM_BRIDGE_FD names); a
# "frame" line is followed by its PNG bytes.
Message = dict[str, Any]


def node_binary() -> str | None:
    return os.environ.get("FRAMEFARM_NODE") or shutil.which("node")


def npm_binary() -> str | None:
    return os.environ.get("FRAMEFARM_NPM") or shutil.which("npm")


def chromium_binary(given: str | Path | None = None) -> str | None:
    """The browser Remotion drives: ``given``, else ``FRAMEFARM_CHROMIUM``, else the
    system's Chromium (Debian's ``/usr/bin/chromium``). Never a downloaded one."""
    if given:
        return str(given)
    if os.environ.get("FRAMEFARM_CHROMIUM"):
        return os.environ["FRAMEFARM_CHROMIUM"]
    if _DEFAULT_CHROMIUM.exists():
        return str(_DEFAULT_CHROMIUM)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_tools(browser: str | Path | None = None) -> list[str]:
    """What this machine lacks to run the engine (empty: nothing)."""
    missing = []
    if node_binary() is None:
        missing.append("Node.js (node) is not installed; set FRAMEFARM_NODE or install it")
    if npm_binary() is None:
        missing.append("npm is not installed; set FRAMEFARM_NPM or install it")
    found = chromium_binary(browser)
    if found is None or not os.access(found, os.X_OK):
        missing.append(f"Chromium {'(' + found + ') ' if found else ''}is not installed or "
                       "not executable; install Debian's chromium or set FRAMEFARM_CHROMIUM")
    return missing


def _require(binary: str | None, what: str) -> str:
    if binary is None:
        raise remotion_errors.ToolMissing(f"{what} is not installed on this machine")
    return binary


class _Watch:
    """Stops a process group on cancel or timeout: SIGTERM, then SIGKILL after a grace."""

    def __init__(self, proc: subprocess.Popen[bytes], *, timeout: float | None,
                 cancel: threading.Event | None, memory_bytes: int | None = None) -> None:
        self.proc = proc
        self.stopped: str | None = None
        self._deadline = time.monotonic() + timeout if timeout else None
        self._cancel = cancel
        self.memory_bytes = memory_bytes
        self._next_memory_check = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.05):
            if self.proc.poll() is not None:
                return
            if self._cancel is not None and self._cancel.is_set():
                self.stop("cancel")
            elif self._deadline is not None and time.monotonic() > self._deadline:
                self.stop("timeout")
            elif self.memory_bytes and time.monotonic() > self._next_memory_check:
                self._next_memory_check = time.monotonic() + 0.5
                if sandbox.tree_rss(self.proc.pid) > self.memory_bytes:
                    self.stop("memory")

    def stop(self, reason: str) -> None:
        if self.stopped:
            return
        self.stopped = reason
        # Taken before any signal: once Node.js is gone its Chromium (which may run in a
        # process group of its own) is adopted by init and no longer found below it.
        tree = sandbox.descendants(self.proc.pid)
        _signal_group(self.proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(_KILL_GRACE)
        _signal_group(self.proc, signal.SIGKILL)  # whatever is left of the group
        for pid in tree:  # and of the tree
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(_KILL_GRACE)  # reaped, not left to the garbage collector

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def raise_if_stopped(self, what: str) -> None:
        if self.stopped == "cancel":
            raise errors.RenderCancelled(f"{what}: cancelled")
        if self.stopped == "timeout":
            raise errors.RenderTimeout(f"{what}: stopped after the time limit")
        if self.stopped == "memory":
            assert self.memory_bytes is not None
            raise remotion_errors.OverMemory(
                f"{what}: stopped: it used more than {self.memory_bytes >> 20} MiB, the "
                "limit for a code template (FRAMEFARM_SANDBOX_MEMORY_MB)")


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _tail_reader(stream: IO[bytes], tail: collections.deque[str]) -> threading.Thread:
    def read() -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail.append(line)
        stream.close()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def npm_ci(folder: Path, *, timeout: float | None = None,
           cancel: threading.Event | None = None, offline: bool = False) -> None:
    """``npm ci`` in ``folder`` (its package.json and package-lock.json): exactly the
    lockfile's versions, no install scripts, no audit or funding calls, cached tarballs
    first. Fails with npm's own error lines."""
    npm = _require(npm_binary(), "npm")
    argv = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--no-progress",
            "--prefer-offline", "--loglevel=error"]
    if offline:
        argv.append("--offline")
    rules = sandbox.policy()
    # npm says what is wrong first, then (for a usage error) its whole help: keep the start.
    said: collections.deque[str] = collections.deque()  # npm prints a few hundred lines
    with _scratch(rules) as scratch:
        env = rules.environment(scratch, {"NO_UPDATE_NOTIFIER": "1",
                                          "npm_config_update_notifier": "false"})
        rules.hand_over(folder)  # where it installs; the caller takes it back
        # The one step with the network: the registry, for the lockfile's exact versions.
        proc = subprocess.Popen(rules.command(argv, network=True), cwd=folder,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, process_group=0)
        watch = _Watch(proc, timeout=timeout, cancel=cancel, memory_bytes=rules.memory_bytes)
        assert proc.stdout is not None
        reader = _tail_reader(proc.stdout, said)
        try:
            code = proc.wait()
            reader.join(timeout=5)
        finally:
            watch.close()
            rules.take_back(folder, shared=True)  # the lockfile's packages, for any owner
    watch.raise_if_stopped("npm ci")
    if code != 0:
        message = npm_message(list(said)) or f"npm exited with code {code}"
        codes = {line.split()[-1] for line in said
                 if line.startswith(("npm error code ", "npm ERR! code "))}
        if codes & _NETWORK_CODES:
            raise remotion_errors.InstallUnavailable(message)
        raise remotion_errors.InstallError(message)


def npm_message(lines: Sequence[str], most: int = 12) -> str:
    """npm's own account of a failure: its ``npm error`` lines, without the help text a
    usage error adds and without the pointer to its log file."""
    said = []
    for line in lines:
        if not line.startswith(("npm error", "npm ERR!")):
            continue
        text = line.removeprefix("npm error").removeprefix("npm ERR!").strip()
        if text.startswith(("Clean install a project", "Usage:")):
            break  # the help that follows a usage error
        if text and "A complete log of this run" not in text:
            said.append(text)
    return "\n".join(said[:most])


# npm's codes for "could not reach the registry": worth a retry, not the project's fault.
_NETWORK_CODES = {"ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED",
                  "ENETUNREACH", "EHOSTUNREACH", "ENOTCACHED", "EPROTO"}


def bridge_script() -> Path:
    return Path(str(resources.files("framefarm.engines.remotion").joinpath("bridge.mjs")))


def bridge(
    command: str,
    request: Mapping[str, Any],
    *,
    cwd: Path,
    on_progress: Callable[[int], None] | None = None,
    on_frame: Callable[[int, bytes], None] | None = None,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    environment: Mapping[str, str] | None = None,
) -> Message:
    """Run ``node bridge.mjs COMMAND`` with ``request`` and return its result message.

    ``on_frame(n, png)`` gets each frame of a ``frames`` command, in order. An error the
    bridge reports becomes the engine's error for its step (see :func:`step_error`)."""
    rules = sandbox.policy()
    with _scratch(rules) as scratch:
        # What the command writes (a file, or the bundle's folder) is made in the
        # sandbox's own folder and moved where the caller asked once it succeeded.
        wanted = {k: Path(request[k]) for k in _WRITTEN if request.get(k)}
        inside = {k: scratch / f"out-{k}{path.suffix}" for k, path in wanted.items()}
        result = _bridge(command, {**request, **{k: str(v) for k, v in inside.items()}},
                         rules=rules, scratch=scratch, cwd=cwd, on_progress=on_progress,
                         on_frame=on_frame, timeout=timeout, cancel=cancel,
                         environment=environment)
        for key, path in wanted.items():
            if inside[key].exists():
                rules.take_back(inside[key])
                shutil.move(inside[key], path)
    return result


_WRITTEN = ("output", "outDir", "audioOutput")  # request fields naming what a command writes


@contextlib.contextmanager
def _scratch(rules: sandbox.Policy) -> Iterator[Path]:
    """A folder of the sandbox's own (its HOME and TMPDIR), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="framefarm-sandbox-"))
    try:
        rules.hand_over(folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bridge(command: str, request: Mapping[str, Any], *, rules: sandbox.Policy,
            scratch: Path, cwd: Path, on_progress: Callable[[int], None] | None,
            on_frame: Callable[[int, bytes], None] | None, timeout: float | None,
            cancel: threading.Event | None,
            environment: Mapping[str, str] | None) -> Message:
    node = _require(node_binary(), "Node.js")
    read_fd, write_fd = os.pipe()
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    env = rules.environment(scratch, {**(environment or {}),
                                      "FRAMEFARM_BRIDGE_FD": str(write_fd)})
    try:
        # Drawing and bundling never need the network: loopback of their own only.
        proc = subprocess.Popen(
            rules.command([node, str(bridge_script()), command], network=False), cwd=cwd,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, process_group=0, pass_fds=(write_fd,))
    except OSError as exc:
        os.close(read_fd)
        raise remotion_errors.ToolMissing(f"cannot start Node.js ({node}): {exc}") from None
    finally:
        os.close(write_fd)
    watch = _Watch(proc, timeout=timeout, cancel=cancel, memory_bytes=rules.memory_bytes)
    assert proc.stdout is not None and proc.stdin is not None
    reader = _tail_reader(proc.stdout, tail)
    result: Message | None = None
    failure: Message | None = None
    try:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(json.dumps(request).encode())
            proc.stdin.close()
        with os.fdopen(read_fd, "rb") as channel:
            for message in _messages(channel):
                kind = message.get("type")
                if kind == "frame":
                    payload = _read_exact(channel, int(message["size"]))
                    if on_frame is not None:
                        on_frame(int(message["frame"]), payload)
                elif kind == "progress" and on_progress is not None:
                    on_progress(int(message.get("done", 0)))
                elif kind == "result":
                    result = message
                elif kind == "error":
                    failure = message
        code = proc.wait()
        reader.join(timeout=5)
    except BaseException:
        watch.stop("error")
        raise
    finally:
        if proc.poll() is None:
            watch.stop("error")
        watch.close()
        # The watch may have stopped it first (a cancel): reap it here in any case.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(_KILL_GRACE)
    watch.raise_if_stopped(f"remotion {command}")
    if failure is not None:
        raise step_error(failure, list(tail))
    if code != 0 or result is None:
        said = "\n".join(list(tail)[-12:])
        raise remotion_errors.BridgeError(
            command, f"Node.js exited with code {code}" + (f"; it said:\n{said}" if said else ""))
    return result


def _messages(channel: IO[bytes]) -> Any:
    while line := channel.readline():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            raise remotion_errors.BridgeError(
                "bridge", f"unreadable message from the bridge: {line[:200]!r}") from None


def _read_exact(channel: IO[bytes], size: int) -> bytes:
    data = channel.read(size)
    if len(data) != size:
        raise remotion_errors.BridgeError("render", "the bridge stopped in the middle of a frame")
    return data


def step_error(message: Message, tail: Sequence[str] = ()) -> errors.FramefarmError:
    """The engine's error for an error the bridge reported in its ``step``."""
    step = str(message.get("step") or "bridge")
    text = str(message.get("message") or "failed")
    if step == "project":
        return remotion_errors.ProjectError(text)
    if step == "bundle":
        return remotion_errors.BundleError(text)
    if step == "composition":
        return remotion_errors.CompositionError(text, message.get("available") or ())
    if step == "props":
        issues = message.get("issues") or []
        problems = [f"{i.get('path') or '(root)'}: {i.get('message')}" for i in issues]
        return remotion_errors.PropsError("props invalid", problems or [text])
    if step == "browser":
        return remotion_errors.BridgeError("browser", text)
    detail = text
    if tail and step in ("render", "audio", "snapshot", "compositions"):
        detail += "\n" + "\n".join(list(tail)[-6:])
    return remotion_errors.BridgeError(step, detail)
