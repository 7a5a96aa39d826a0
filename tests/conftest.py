from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from framefarm.ffmpeg import runner
from support.server import Proc, Server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP endpoint speaking the S3 protocol (moto's server) on loopback."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def fresh_ffmpeg_binary() -> Iterator[None]:
    """``runner.ffmpeg_binary`` is cached: clear it before and after a test that changes
    FRAMEFARM_FFMPEG."""
    runner.ffmpeg_binary.cache_clear()
    yield
    runner.ffmpeg_binary.cache_clear()


@pytest.fixture
def processes() -> Iterator[list[Proc]]:
    """Processes a test starts; each is SIGKILLed with its group (a stopped one too) at the
    end, whatever happens to the test."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.kill()


@pytest.fixture
def servers(processes: list[Proc]) -> Iterator[Callable[..., Server]]:
    """``servers(data, workers=0, **settings)``: a ``framefarm serve`` process."""
    made: list[Server] = []

    def make(data: Path, **settings: Any) -> Server:
        server = Server(processes, data, **settings)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop_and_close()
