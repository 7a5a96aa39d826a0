"""/readyz means something: not ready while the schema is behind the code, or while the
database or storage cannot be reached; ready once they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from framefarm import application
from framefarm.api.app import create_app
from framefarm.db import migrate
from framefarm.settings import Settings
from support.farm import clear_framefarm_env
from support.server import free_port


def test_not_ready_while_migrations_are_pending(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    clear_framefarm_env(monkeypatch)
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    migrate.upgrade(settings.db_url, "0003")
    app = application.build(settings)
    try:
        with TestClient(create_app(settings, app)) as client:
            behind = client.get("/readyz")
            assert behind.status_code == 503, behind.text
            checks = behind.json()["checks"]
            assert checks["database"] == "ok" and checks["storage"] == "ok"
            assert f"needs {migrate.head()}" in checks["migrations"]
            assert "framefarm migrate" in checks["migrations"]
            migrate.upgrade(settings.db_url)
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"ready": True, "checks": {
                "database": "ok", "migrations": "ok", "storage": "ok"}}
    finally:
        app.close()


def test_not_ready_without_its_database(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    clear_framefarm_env(monkeypatch)
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/framefarm"
    settings = Settings(data_dir=tmp_path / "data", database_url=nowhere)
    app = application.build(settings)
    try:
        with TestClient(create_app(settings, app)) as client:
            answer = client.get("/readyz")
        assert answer.status_code == 503
        checks = answer.json()["checks"]
        assert checks["database"].startswith("failing: ") and checks["storage"] == "ok"
        assert "127.0.0.1" not in answer.text  # the class of the failure, not its details
    finally:
        app.close()
