"""A real ``framefarm serve`` (one local render node) for the client tests, started once
per module, and a tenant of it for each test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server import Proc, Server

# Quick heartbeats, so progress reaches the event stream several times in a short render.
SETTINGS = {"heartbeat_seconds": 0.2, "lease_seconds": 10, "retry_backoff_seconds": 0.2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    processes: list[Proc] = []
    served = Server(processes, tmp_path_factory.mktemp("client-server") / "data", workers=1,
                    **SETTINGS)
    try:
        yield served.start()
    finally:
        served.stop_and_close()
        for proc in reversed(processes):
            proc.kill()


@pytest.fixture
def tenant_key(server: Server) -> str:
    """A fresh (non-admin) tenant's API key."""
    response = server.post("/v1/admin/tenants", json={"name": f"t{secrets.token_hex(4)}"})
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path
