"""The image itself, where a Docker daemon answers: built from the Dockerfile on the base
scripts/deploy/base-image makes from Debian's packages (no registry needed), then run as
the API and stopped.

Without a daemon nothing is built: outside CI the test says so and skips; under CI, where
.ci/run starts a daemon before the suite (and runs scripts/test-deploy after it), it fails.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "framefarm:local"
BASE = "framefarm-base:bookworm"


def daemon() -> bool:
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def sh(*argv: str, timeout: float = 1200, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=ROOT, env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{shlex.join(argv)}:\n{(done.stdout + done.stderr)[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def image() -> str:
    if not daemon():
        if os.environ.get("CI") == "true":
            pytest.fail("no Docker daemon answers under CI: .ci/run starts one before the "
                        "suite")
        pytest.skip("no Docker daemon here: nothing built (scripts/test-deploy builds the "
                    "image and runs the stack where one answers)")
    sh("bash", "scripts/deploy/base-image", BASE)
    registries = dict(line.split("=", 1) for line in sh(
        "python3", "scripts/deploy/registries.py").split())
    args = [f"--build-arg={key}={shlex.split(value)[0] if shlex.split(value) else ''}"
            for key, value in registries.items() if key != "NPM_REGISTRY"]
    sh("docker", "build", "--network", "host", f"--build-arg=BASE={BASE}", *args, "-t",
       IMAGE, ".", env={"DOCKER_BUILDKIT": "0"})
    return IMAGE


def test_the_image_is_small_non_root_and_starts_framefarm_under_tini(image: str) -> None:
    [found] = json.loads(sh("docker", "image", "inspect", image))
    config = found["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["tini", "--", "framefarm"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert found["Size"] < 1_000_000_000, f"{found['Size'] / 1e6:.0f} MB"
    assert sh("docker", "run", "--rm", "--entrypoint", "id", image, "-u").strip() == "10001"
    # Only what a node or the API needs: no compiler, no pip, no browser.
    listing = sh("docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
                 "for c in gcc pip chromium node espeak-ng; do command -v $c; done; echo end")
    assert listing.strip() == "end", listing


def test_the_api_serves_and_stops_on_sigterm(image: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    container = sh("docker", "run", "-d", "--network", "host", image, "serve", "--host",
                   "127.0.0.1", "--port", str(port), "--workers", "0").strip()
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz",
                                            timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, sh("docker", "logs", container)
            time.sleep(0.3)
        assert sh("docker", "exec", container, "cat", "/proc/1/cmdline").startswith("tini")
        # The node health check ships in the image: here it finds no node's state.
        done = subprocess.run(["docker", "exec", container, "python", "-m",
                               "framefarm.worker.health", "--workdir", "/data/node"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1 and "no state" in done.stderr, done
        began = time.monotonic()
        sh("docker", "stop", "-t", "20", container)
        took = time.monotonic() - began
        code = sh("docker", "inspect", "-f", "{{.State.ExitCode}}", container).strip()
        # 143: uvicorn's graceful shutdown re-raises SIGTERM; 137 would be Docker's SIGKILL.
        assert code in ("0", "143") and took < 10, (code, took)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
