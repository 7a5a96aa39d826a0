"""The app in-process: Settings, a migrated database, the service, the FastAPI app and a
TestClient, with render nodes (the real :class:`Agent`, recording what it ran) in threads
that talk to the app through the same TestClient, so nodes, API and database are the real
ones with no sockets."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from framefarm import application, protocol
from framefarm.api.app import create_app
from framefarm.application import Application
from framefarm.db import migrate
from framefarm.settings import Settings
from framefarm.worker.agent import Agent
from support.api import bearer

# Variables a test run may need from its environment; every other FRAMEFARM_* would be read
# by Settings.
KEPT_VARIABLES = ("FRAMEFARM_FFMPEG", "FRAMEFARM_TEST_POSTGRES_URL")


def clear_framefarm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every FRAMEFARM_* setting from the environment for this test (but the FFmpeg
    to use and the test PostgreSQL server)."""
    for name in os.environ:
        if name.startswith("FRAMEFARM_") and name not in KEPT_VARIABLES:
            monkeypatch.delenv(name)


# -- render nodes in threads -------------------------------------------------------------------


class RecordingAgent(Agent):
    """The real agent, noting which tasks it started and how each ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[protocol.ClaimedTask] = []
        self.outcomes: dict[str, str] = {}  # task id -> "done" or the exception's name
        self.task_ended = threading.Condition()
        self.crash: BaseException | None = None

    def _execute(self, task: protocol.ClaimedTask, *args: Any, **kwargs: Any) -> Any:
        self.started.append(task)
        try:
            result = super()._execute(task, *args, **kwargs)
        except BaseException as exc:
            self._ended(task.task_id, type(exc).__name__)
            raise
        self._ended(task.task_id, "done")
        return result

    def _ended(self, task_id: str, outcome: str) -> None:
        with self.task_ended:
            self.outcomes[task_id] = outcome
            self.task_ended.notify_all()

    def wait_ended(self, task_id: str, timeout: float) -> str:
        with self.task_ended:
            if not self.task_ended.wait_for(lambda: task_id in self.outcomes, timeout):
                raise AssertionError(f"task {task_id} still running after {timeout}s")
            return self.outcomes[task_id]


# -- the farm -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Farm:
    backend: str
    settings: Settings
    svc: Application
    app: FastAPI
    client: TestClient
    admin_key: str
    tmp: Path  # the farm's data folder; its nodes' work folders are under tmp/nodes
    agents: list[RecordingAgent] = dataclasses.field(default_factory=list)
    threads: list[threading.Thread] = dataclasses.field(default_factory=list)

    @classmethod
    def open(cls, backend: str, data: Path, **settings: Any) -> Farm:
        """Build the app on ``data`` (created; SQLite in it unless ``database_url`` says
        otherwise): migrated database, service, an admin tenant, the app's lifespan
        running. :meth:`close` it."""
        values = Settings(data_dir=data, **settings)
        data.mkdir(parents=True)
        migrate.upgrade(values.db_url)
        svc = application.build(values)
        app = create_app(values, svc)
        _, admin_key = svc.accounts.create_tenant("admin", admin=True)
        client = TestClient(app)
        client.__enter__()
        return cls(backend, values, svc, app, client, admin_key, data)

    def close(self) -> None:
        """Stop the nodes (failing if one crashed or hangs), then the app and its store."""
        try:
            self.stop_nodes()
        finally:
            self.client.__exit__(None, None, None)
            self.svc.close()

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_key)

    def tenant(self, name: str, **kwargs: Any) -> str:
        """A new tenant's API key."""
        return self.svc.accounts.create_tenant(name, **kwargs)[1]

    def agent(self, name: str, **options: Any) -> RecordingAgent:
        """An agent that is registered but not running (for driving the protocol by hand);
        ``options``: more Agent arguments, e.g. report_patience."""
        folder = self.tmp / "nodes" / name
        folder.mkdir(parents=True, exist_ok=True)
        agent = RecordingAgent("http://testserver", self.svc.ctx.enrolment_token, name=name,
                               workdir=folder, poll_seconds=0.05, client=self.client,
                               **options)
        agent.register()
        self.agents.append(agent)
        return agent

    def start_nodes(self, count: int = 1, prefix: str = "node",
                    **options: Any) -> list[RecordingAgent]:
        """``count`` agents running in threads (``options`` as for :meth:`agent`)."""
        started = []
        for _ in range(count):
            agent = self.agent(f"{prefix}{len(self.agents)}", **options)

            def run(agent: RecordingAgent = agent) -> None:
                try:
                    agent.run()
                except BaseException as exc:  # reported by the fixture's teardown
                    agent.crash = exc

            thread = threading.Thread(target=run, name=agent.name, daemon=True)
            thread.start()
            self.threads.append(thread)
            started.append(agent)
        return started

    def stop_nodes(self) -> None:
        for agent in self.agents:
            agent.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), f"render node {thread.name} did not stop"
        self.threads.clear()
        crashed = {a.name: repr(a.crash) for a in self.agents if a.crash is not None}
        assert not crashed, f"render nodes crashed: {crashed}"

    # -- convenience ---------------------------------------------------------------------

    def project_with_media(self, key: str, media: Path) -> str:
        """A project with seed 002's inputs: two images (one multipart request, folder
        'images') and two voice-overs."""
        c, auth = self.client, bearer(key)
        response = c.post("/v1/projects", json={"name": "smoke"}, headers=auth)
        assert response.status_code == 201, response.text
        project = str(response.json()["id"])
        files = [("files", ("a.jpg", (media / "a.jpg").read_bytes(), "image/jpeg")),
                 ("files", ("b.jpg", (media / "b.jpg").read_bytes(), "image/jpeg"))]
        response = c.post(f"/v1/projects/{project}/assets", files=files,
                          data={"folder": "images"}, headers=auth)
        assert response.status_code == 201, response.text
        assert [a["name"] for a in response.json()] == ["images/a.jpg", "images/b.jpg"]
        for name in ("vo1.m4a", "vo2.m4a"):
            response = c.post(f"/v1/projects/{project}/assets", headers=auth,
                              data={"folder": "voiceovers"},
                              files={"files": (name, (media / name).read_bytes(), "audio/mp4")})
            assert response.status_code == 201, response.text
        return project

    def submit(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/v1/renders", json=body, headers=bearer(key))
        assert response.status_code == 202, response.text
        return dict(response.json())
