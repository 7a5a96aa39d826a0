from __future__ import annotations

from collections.abc import Iterator

import pytest

from framefarm.ffmpeg import runner


@pytest.fixture
def fresh_ffmpeg_binary() -> Iterator[None]:
    """``runner.ffmpeg_binary`` is cached: clear it before and after a test that changes
    FRAMEFARM_FFMPEG."""
    runner.ffmpeg_binary.cache_clear()
    yield
    runner.ffmpeg_binary.cache_clear()
