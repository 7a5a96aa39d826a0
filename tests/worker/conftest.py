"""Fixtures for the render node's tests: a fake API (see support.fake_api), a fake clock,
and agents wired to both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from framefarm.worker.agent import Agent
from support.fake_api import TOKEN, FakeApi, FakeClock


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_agent(api: FakeApi, clock: FakeClock, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    clients: list[httpx.Client] = []

    def make(register: bool = True, **options: Any) -> Agent:
        client = httpx.Client(transport=httpx.MockTransport(api.handler),
                              base_url="http://api.test")
        clients.append(client)
        agent = Agent("http://api.test", TOKEN, name="test-node", workdir=tmp_path / "node",
                      client=client, sleep=clock.sleep, clock=clock, **options)
        if register:
            agent.register()
        return agent

    yield make
    for client in clients:
        client.close()
