"""Storage that refuses writes for a while (``StorageError("disk full")``, answered 503 to
the node): the task whose output cannot be stored fails, its retry succeeds once storage
behaves again, and at no moment does the API show the job succeeded without its export, or
an export whose file is missing or partial. The app in-process, on SQLite and PostgreSQL,
with two render nodes in threads."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import IO, Any

import pytest

from framefarm.storage.local import StorageError
from support.api import FINISHED
from support.documents import long_doc
from support.farm import Farm
from support.figures import figure
from support.polling import wait_for
from support.video_checks import check_video

pytestmark = pytest.mark.ffmpeg


@dataclasses.dataclass
class Outcome:
    job: dict[str, Any]
    messages: list[str]
    refused: list[str]  # keys whose write was refused
    failures: list[str]  # the job's log lines about failed attempts
    observations: int  # GET /v1/renders/{id} answers checked while it ran
    refusing_seconds: float
    violations: list[str]


def run_with_refusals(farm: Farm, kind: str) -> Outcome:
    """Render with two nodes while storage refuses writes of ``kind`` outputs (keys
    ``jobs/<job>/<kind>NNNN-....``), until the first task has failed; watch the job from
    another thread the whole time."""
    svc, client = farm.svc, farm.client
    real_put = svc.ctx.storage.put_stream
    refusing = threading.Event()
    refusing.set()
    refused: list[str] = []

    def put_stream(key: str, stream: IO[bytes], max_bytes: int) -> tuple[int, str]:
        if refusing.is_set() and key.startswith("jobs/") and key.split("/")[-1].startswith(kind):
            refused.append(key)
            raise StorageError("disk full")
        return real_put(key, stream, max_bytes)

    svc.ctx.storage.put_stream = put_stream  # type: ignore[method-assign]
    # Reports wait out a 503 for their patience: 1 s here, so the refusal fails the task.
    farm.start_nodes(2, report_patience=1.0)
    response = client.post("/v1/renders", json={"document": long_doc(4, shapes=4)},
                           headers=farm.admin)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    violations: list[str] = []
    observations = 0
    done = threading.Event()

    def watch() -> None:
        """Every answer of GET /v1/renders/{id}: succeeded implies an export, and an export
        implies its whole file in storage."""
        nonlocal observations
        while True:
            view = client.get(f"/v1/renders/{job_id}", headers=farm.admin).json()
            observations += 1
            export = view["export"]
            if view["state"] == "succeeded" and export is None:
                violations.append(f"seen succeeded without an export: {view}")
            if export is not None:
                key = svc.exports.get(None, export["id"]).storage_key
                if not svc.ctx.storage.exists(key):
                    violations.append(f"export {export['id']}: no file {key}")
                elif svc.ctx.storage.size(key) != export["size"]:
                    size = svc.ctx.storage.size(key)
                    violations.append(f"export {export['id']}: {size} bytes "
                                      f"stored, {export['size']} recorded")
            if view["state"] in FINISHED:
                return
            # Look again in 5 ms (as many answers as the app gives), until the job is
            # finished or the test stops watching.
            if done.wait(0.005):
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        def messages() -> list[str]:
            logs = client.get(f"/v1/renders/{job_id}/logs", headers=farm.admin).json()
            return [line["message"] for line in logs]

        began = time.monotonic()
        wait_for(lambda: any("failed (attempt" in m for m in messages()), timeout=60,
                 what=f"a {kind} task to fail")
        refusing.clear()
        refusing_seconds = time.monotonic() - began
        watcher.join(timeout=90)
        assert not watcher.is_alive(), "the job did not finish"
    finally:
        done.set()
    job = client.get(f"/v1/renders/{job_id}", headers=farm.admin).json()
    final = messages()
    return Outcome(job, final, refused, [m for m in final if "failed" in m], observations,
                   refusing_seconds, violations)


@pytest.mark.parametrize("kind", ["render", "assemble"])
def test_storage_refusing_writes_fails_the_task_then_the_retry_succeeds(
        farm: Farm, kind: str) -> None:
    outcome = run_with_refusals(farm, kind)
    job, messages = outcome.job, outcome.messages
    assert job["state"] == "succeeded", (job, messages)
    assert job["attempt"] == 1  # the job's own retry, not a new attempt
    assert outcome.refused, "storage was never asked to write"
    assert not outcome.violations, outcome.violations
    assert outcome.observations > 10, outcome.observations

    failed = [m for m in outcome.failures if "failed (attempt 1)" in m]
    assert failed and all(m.startswith(f"{kind} ") for m in failed), outcome.failures
    assert "HTTP 503" in failed[0], failed
    assert not any("failed (attempt 3)" in m for m in messages), messages
    for line in failed:  # each failed task succeeded on its retry
        task = line.split(" failed")[0]
        assert messages.count(f"{task} done") == 1, (task, messages)
        assert messages.index(f"{task} done") > messages.index(line)
    assert messages.count("job succeeded") == 1, messages

    row = farm.svc.exports.get(None, job["export"]["id"])
    path = farm.svc.ctx.storage.local_path(row.storage_key)
    check_video(path, job["frames"]["total"])
    # Nothing half-written left behind: the export is the job's only file.
    leftovers = sorted(p.name for p in path.parent.iterdir())
    assert leftovers == [path.name], leftovers
    figure(f"storage refusing {kind} writes ({farm.backend})",
           f"{len(outcome.refused)} writes refused over {outcome.refusing_seconds:.2f} s, "
           f"{len(failed)} task attempt(s) failed then succeeded on retry; "
           f"{outcome.observations} GET /v1/renders/{{id}} answers checked, none succeeded "
           "without its export or with a missing/partial file")


@pytest.mark.parametrize("farm", ["sqlite"], indirect=True)
def test_a_refused_write_is_explained_in_the_job_log(farm: Farm) -> None:
    outcome = run_with_refusals(farm, "render")
    assert outcome.job["state"] == "succeeded", outcome.messages
    failed = [m for m in outcome.failures if "failed (attempt 1)" in m]
    assert failed, outcome.messages
    if not all("disk full" in m for m in failed):
        raise AssertionError(f"the job log does not say why the write was refused: {failed}")
