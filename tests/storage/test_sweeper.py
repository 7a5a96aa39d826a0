"""The storage sweeper, on local storage and on S3 (moto's server): it deletes what nothing
references — the part a node uploaded under a lease it lost, the parts of finished and
vanished jobs, unused blobs, staged uploads, old snapshot cache entries and old previews —
and nothing that is referenced or younger than its guard."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framefarm.storage.local import LocalStorage, Storage
from support.api import bearer
from support.documents import simple_doc
from support.farm import Farm, clear_framefarm_env

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


@pytest.fixture(params=["local", "s3"])
def farm(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    clear_framefarm_env(monkeypatch)
    values: dict[str, Any] = {"lease_seconds": 10.0, "heartbeat_seconds": 0.2,
                              "retry_backoff_seconds": 0.0, "public_url": "http://testserver"}
    if request.param == "s3":
        values.update(storage_backend="s3", s3_endpoint_url=request.getfixturevalue(
            "s3_endpoint"), s3_bucket=f"sweep-{time.monotonic_ns()}",
            s3_access_key_id="test", s3_secret_access_key="test")
    found = Farm.open("sqlite", tmp_path / "farm", **values)
    try:
        yield found
    finally:
        found.close()


def put(storage: Storage, key: str, body: bytes = b"x" * 100) -> str:
    storage.put_stream(key, io.BytesIO(body), max_bytes=10_000)
    return key


def keys(storage: Storage) -> set[str]:
    return {item.key for prefix in ("jobs/", "assets/", "uploads/", "snapshots/", "previews/")
            for item in storage.list_objects(prefix)}


def test_the_sweeper_deletes_only_what_nothing_references(farm: Farm) -> None:
    svc, storage = farm.svc, farm.svc.ctx.storage
    c, key = farm.client, farm.tenant("acme")
    node_id = svc.farm.register(svc.ctx.enrolment_token, "n1", {}).node_id

    # A project with one asset (referenced by its row).
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    response = c.post(f"/v1/projects/{project}/assets", headers=bearer(key),
                      files={"files": ("a.txt", b"asset body", "text/plain")})
    assert response.status_code == 201, response.text
    asset = f"assets/{hashlib.sha256(b'asset body').hexdigest()}"

    # Job A runs: its first node died after uploading a part, the task runs again.
    job_a = farm.submit(key, {"document": simple_doc(1.0)})["id"]
    first = svc.farm.claim(node_id)
    assert first is not None and first.job_id == job_a
    dead = svc.farm.output_key(first.task_id, first.lease_token, "mp4")
    svc.farm.store_output(dead, io.BytesIO(b"dead lease part"))
    assert svc.farm.release(node_id) == 1  # what an expired lease does
    other = svc.farm.register(svc.ctx.enrolment_token, "n2", {}).node_id
    second = svc.farm.claim(other)
    assert second is not None and second.task_id == first.task_id
    live = svc.farm.output_key(second.task_id, second.lease_token, "mp4")
    svc.farm.store_output(live, io.BytesIO(b"live lease part"))  # uploaded, not completed
    svc.farm.task_heartbeat(other, second.task_id, second.lease_token, frames_done=1,
                            preview=JPEG, sample=None)
    preview_a = f"previews/{job_a}.jpeg"

    # Job B was cancelled with a part of a lost lease left behind, and a preview.
    job_b = farm.submit(key, {"document": simple_doc(1.0)})["id"]
    assert c.post(f"/v1/renders/{job_b}/cancel", headers=bearer(key)).status_code == 200
    part_b = put(storage, f"jobs/{job_b}/render0000-deadbeef.mp4")
    preview_b = put(storage, f"previews/{job_b}.jpeg", JPEG)

    gone_job = put(storage, "jobs/job_0000000000000000/render0000-abcdefgh.mp4")
    orphan = put(storage, f"assets/{hashlib.sha256(b'nobody').hexdigest()}", b"nobody")
    staged = put(storage, "uploads/123456")
    snapshot = put(storage, "snapshots/" + "ab" * 32 + ".png")
    everything = {asset, dead, live, preview_a, part_b, preview_b, gone_job, orphan, staged,
                  snapshot}
    assert everything <= keys(storage)

    sweeper = svc.exports.sweeper
    now = dt.datetime.now(dt.UTC)
    # Everything is younger than the guard: an upload may be in progress. Nothing goes.
    assert sum(sweeper.sweep(now=now).values()) == 0
    assert everything <= keys(storage)

    # Two hours on: what nothing references goes; the running task's current part, the
    # asset, the snapshot cache entry and fresh previews stay.
    swept = sweeper.sweep(now=now + dt.timedelta(hours=2))
    assert swept == {"parts": 3, "assets": 1, "uploads": 1, "snapshots": 0, "previews": 0,
                     "shared": 0}
    left = keys(storage)
    assert {dead, part_b, gone_job, orphan, staged}.isdisjoint(left)
    assert {asset, live, preview_a, preview_b, snapshot} <= left

    # Eight days on: the snapshot cache entry has expired and the cancelled job's preview
    # is old; the running job's part and preview and the project's asset stay.
    swept = sweeper.sweep(now=now + dt.timedelta(days=8))
    assert swept == {"parts": 0, "assets": 0, "uploads": 0, "snapshots": 1, "previews": 1,
                     "shared": 0}
    assert keys(storage) & everything == {asset, live, preview_a}
    assert c.get(f"/v1/renders/{job_b}", headers=bearer(key)).json()["preview_url"] is None

    # The part is completed under its lease: still kept (a succeeded task's output).
    svc.farm.complete(second.task_id, second.lease_token, live, None)
    assert sweeper.sweep(now=now + dt.timedelta(days=8))["parts"] == 0
    assert storage.exists(live)


def test_assets_an_unfinished_job_uses_are_kept(farm: Farm) -> None:
    """The project's asset row is gone, but a queued job still renders from the blob."""
    svc, storage = farm.svc, farm.svc.ctx.storage
    c, key = farm.client, farm.tenant("acme")
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    body = (Path(__file__).parent.parent / "support" / "documents.py").read_bytes()
    assert c.post(f"/v1/projects/{project}/assets", headers=bearer(key),
                  files={"files": ("notes.txt", body, "text/plain")}).status_code == 201
    job = c.post("/v1/renders", headers=bearer(key),
                 json={"document": simple_doc(1.0), "project_id": project})
    assert job.status_code == 202, job.text
    assert c.delete(f"/v1/projects/{project}/assets/notes.txt",
                    headers=bearer(key)).status_code in (200, 204)
    blob = f"assets/{hashlib.sha256(body).hexdigest()}"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert svc.exports.sweeper.sweep(now=later)["assets"] == 0
    assert storage.exists(blob)
    assert c.post(f"/v1/renders/{job.json()['id']}/cancel",
                  headers=bearer(key)).status_code == 200
    assert svc.exports.sweeper.sweep(now=later)["assets"] == 1
    assert not storage.exists(blob)


def test_the_upkeep_loop_starts_a_sweep_at_its_own_rate(farm: Farm) -> None:
    sweeper = farm.svc.exports.sweeper
    assert not sweeper.start_if_due()  # not before every_seconds have passed
    sweeper._next = 0.0
    assert sweeper.start_if_due()
    assert not sweeper.start_if_due()  # and then not again for every_seconds


def test_listing(farm: Farm) -> None:
    storage = farm.svc.ctx.storage
    put(storage, "jobs/j1/render0000-aaaaaaaa.mp4", b"a" * 10)
    put(storage, "jobs/j1/audio0000-bbbbbbbb.m4a", b"b" * 20)
    put(storage, "jobs/j2/render0000-cccccccc.mp4", b"c" * 30)
    put(storage, "jobsx/other", b"d")
    found = {item.key: item.size for item in storage.list_objects("jobs/j1/")}
    assert found == {"jobs/j1/render0000-aaaaaaaa.mp4": 10,
                     "jobs/j1/audio0000-bbbbbbbb.m4a": 20}
    assert {item.key for item in storage.list_objects("jobs/")} == {
        "jobs/j1/render0000-aaaaaaaa.mp4", "jobs/j1/audio0000-bbbbbbbb.m4a",
        "jobs/j2/render0000-cccccccc.mp4"}
    assert {item.key for item in storage.list_objects("jobs")} >= {"jobsx/other"}
    assert list(storage.list_objects("nothing/")) == []
    now = dt.datetime.now(dt.UTC)
    for item in storage.list_objects("jobs/"):
        assert item.modified.tzinfo is not None
        assert abs((now - item.modified).total_seconds()) < 120
    if isinstance(storage, LocalStorage):  # a write in progress is not listed
        (storage.root / "jobs" / "j1" / ".tmp-123").write_bytes(b"half")
        assert len(list(storage.list_objects("jobs/j1/"))) == 2
