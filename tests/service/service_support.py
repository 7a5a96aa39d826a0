"""Helpers for the render-service tests: generated media, documents, polling, error shapes,
and the :class:`Farm` (the app, its service, a TestClient and render nodes in threads).

Everything a test uploads is generated here (Pillow stills, FFmpeg ``lavfi`` tones), small
(360p, draft quality, a few seconds), so a real render takes about a second.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from framefarm.api.service import Service
from framefarm.ffmpeg import runner
from framefarm.settings import Settings
from framefarm.worker.agent import Agent
from helpers import bearer, wait_for

IN_CI = os.environ.get("CI", "").lower() == "true"
FINISHED = ("succeeded", "failed", "cancelled")
FPS = 30


def skip_or_fail(reason: str) -> None:
    """Skip locally; under CI=true a missing capability is a failure, not a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)", pytrace=False)
    pytest.skip(reason)


# -- generated media -----------------------------------------------------------------------


def write_photo(path: Path, color: str, size: tuple[int, int] = (640, 360)) -> Path:
    """A still with some structure (a disc and stripes), so motion is visible."""
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    w, h = size
    for x in range(0, w, 40):
        draw.line([(x, 0), (x, h)], fill="#202020", width=3)
    draw.ellipse((w / 2 - 80, h / 2 - 80, w / 2 + 80, h / 2 + 80), fill="white")
    img.save(path)
    return path


def write_tone(path: Path, seconds: float, freq: int) -> Path:
    """An AAC voice-over stand-in: ``-f lavfi -i sine=...``."""
    argv = [runner.ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
            "-c:a", "aac", "-b:a", "64k", str(path)]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')}")
    return path


# -- documents ------------------------------------------------------------------------------


def output(**extra: Any) -> dict[str, Any]:
    return {"size": "360p", "fps": FPS, "quality": "draft", **extra}


def simple_doc(seconds: float = 1.0, text: str = "hello", **out: Any) -> dict[str, Any]:
    """An inline document without assets: a coloured background, a shape and a title."""
    return {"output": output(**out), "scenes": [{
        "duration": seconds, "background": "#1e3a5f",
        "layers": [
            {"type": "shape", "shape": "circle", "x": 40, "y": 40, "width": 120,
             "height": 120, "fill": "#ff5a00",
             "keyframes": {"x": [{"time": 0, "value": 40}, {"time": seconds, "value": 480}]}},
            {"type": "text", "text": text, "position": "bottom",
             "animation": {"in": "fade", "duration": 0.3}},
        ]}]}


def slideshow_doc() -> dict[str, Any]:
    """Seed 002's narrated slideshow, small: two scenes whose length is their voice-over
    (1.5 s and 1.0 s) plus 0.5 s padding, with slides and a title."""
    def scene(vo: str, images: list[str], title: str) -> dict[str, Any]:
        return {
            "duration": "auto", "auto": {"padding": 0.5, "min": 1.0, "max": 5.0},
            "voiceover": {"src": vo},
            "layers": [
                {"type": "slides", "crossfade": 0.3, "images": [
                    {"src": src, "motion": {"zoom": [1.0, 1.1], "pan": "left"}}
                    for src in images]},
                {"type": "text", "text": title, "position": "bottom",
                 "animation": {"in": "fade", "duration": 0.3}},
            ]}
    return {"output": output(), "scenes": [
        scene("voiceovers/vo1.m4a", ["images/a.jpg", "images/b.jpg"], "One"),
        scene("voiceovers/vo2.m4a", ["images/b.jpg"], "Two"),
    ]}


def long_doc(seconds: float, shapes: int = 4) -> dict[str, Any]:
    """A render with real per-frame work (rotating shapes, scaled text): about 100 frames
    a second with 4 shapes on one core."""
    colors = ["#ff5a00", "#00a0ff", "#40c040", "#c040c0"]
    layers: list[dict[str, Any]] = [
        {"type": "shape", "shape": "rounded", "x": 10 * i, "y": 8 * i, "width": 200,
         "height": 160, "radius": 20, "fill": colors[i % 4], "opacity": 0.7,
         "keyframes": {"x": [{"time": 0, "value": 0}, {"time": seconds, "value": 440}],
                       "rotation": [{"time": 0, "value": 0},
                                    {"time": seconds, "value": 360 + 15 * i}]}}
        for i in range(shapes)]
    layers.append({"type": "text", "text": "framefarm", "position": "center",
                   "keyframes": {"scale": [{"time": 0, "value": 0.5},
                                           {"time": seconds, "value": 1.5}]}})
    return {"output": output(), "scenes": [{"duration": seconds, "background": "#101820",
                                            "layers": layers}]}


# -- HTTP ------------------------------------------------------------------------------------



def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, the expected status, and no stack trace."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    for marker in ("Traceback", 'File "', "site-packages", ".py\", line"):
        assert marker not in response.text, response.text
    return error



def finished(job: dict[str, Any]) -> bool:
    """Finished, and a succeeded render has its export: the service commits 'succeeded'
    a moment before it creates the export (test_a_succeeded_render_has_its_export)."""
    if job["state"] == "succeeded" and job["kind"] == "render":
        return job["export"] is not None
    return job["state"] in FINISHED


def wait_job(client: httpx.Client, key: str, job_id: str, *, timeout: float = 60.0,
             until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Poll GET /v1/renders/{id} until it finishes (or ``until`` holds)."""
    done = until or finished
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        response = client.get(f"/v1/renders/{job_id}", headers=bearer(key))
        assert response.status_code == 200, response.text
        last.update(response.json())
        return last if done(last) else None

    try:
        return wait_for(check, timeout=timeout, interval=0.1, what=f"job {job_id}")
    except AssertionError:
        logs = client.get(f"/v1/renders/{job_id}/logs", headers=bearer(key))
        raise AssertionError(f"job {job_id} did not get there: {last}\nlogs: "
                             f"{logs.text[-3000:]}") from None



# -- render nodes in threads -------------------------------------------------------------------


class RecordingAgent(Agent):
    """The real agent, noting which tasks it started and how each ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[dict[str, Any]] = []
        self.outcomes: dict[str, str] = {}  # task id -> "done" or the exception's name
        self.task_ended = threading.Condition()
        self.crash: BaseException | None = None

    def _execute(self, task: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.started.append(task)
        try:
            result = super()._execute(task, *args, **kwargs)
        except BaseException as exc:
            self._ended(task["task_id"], type(exc).__name__)
            raise
        self._ended(task["task_id"], "done")
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
    svc: Service
    app: FastAPI
    client: TestClient
    admin_key: str
    tmp: Path
    agents: list[RecordingAgent] = dataclasses.field(default_factory=list)
    threads: list[threading.Thread] = dataclasses.field(default_factory=list)

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_key)

    def tenant(self, name: str, **kwargs: Any) -> str:
        """A new tenant's API key."""
        return self.svc.store.create_tenant(name, **kwargs)[1]

    def agent(self, name: str) -> RecordingAgent:
        """An agent that is registered but not running (for driving the protocol by hand)."""
        folder = self.tmp / "nodes" / name
        folder.mkdir(parents=True, exist_ok=True)
        agent = RecordingAgent("http://testserver", self.svc.enrolment_token, name=name,
                               workdir=folder, poll_seconds=0.05, client=self.client)
        agent.register()
        self.agents.append(agent)
        return agent

    def start_nodes(self, count: int = 1, prefix: str = "node") -> list[RecordingAgent]:
        started = []
        for _ in range(count):
            agent = self.agent(f"{prefix}{len(self.agents)}")

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
