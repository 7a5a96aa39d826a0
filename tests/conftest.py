from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from framefarm.ffmpeg import runner


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
