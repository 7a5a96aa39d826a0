"""Batches through the real API, on SQLite and PostgreSQL: rows from CSV and JSON checked
row by row (bad ones skipped or refusing the batch), live counts over SSE, cancel, retry,
the manifest and the ZIP of the videos, fairness towards other tenants, and the limits.

Most batches here are never rendered (no node runs): counting needs no video. The ones
that are rendered are tiny (64x36, 1 s at 24 fps, draft)."""

from __future__ import annotations

import csv
import io
import json
import queue
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from framefarm import media as probe
from support.api import assert_error, bearer
from support.farm import Farm
from support.media import write_photo
from support.polling import wait_for

TEMPLATE: dict[str, Any] = {
    "output": {"width": 64, "height": 36, "fps": 24, "quality": "draft"},
    "variables": {
        "name": {"type": "text", "required": True},
        "price": {"type": "number", "default": 9},
        "vip": {"type": "boolean", "default": False},
        "tone": {"type": "choice", "choices": ["dark", "light"], "default": "dark"},
    },
    "scenes": [{"duration": 1, "background": "#203040", "layers": [
        {"type": "text", "text": "{{name}} {{price}}", "position": "center"}]}],
}


def template(farm: Farm, key: str, document: dict[str, Any] | None = None,
             project_id: str | None = None) -> str:
    response = farm.client.post("/v1/templates", headers=bearer(key), json={
        "name": "card", "document": document or TEMPLATE, "project_id": project_id})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def post_csv(farm: Farm, key: str, template_id: str, text: str | bytes,
             **query: Any) -> Any:
    body = text.encode() if isinstance(text, str) else text
    return farm.client.post(f"/v1/templates/{template_id}/batches", content=body,
                            params=query, headers={**bearer(key), "Content-Type": "text/csv"})


def post_json(farm: Farm, key: str, template_id: str, body: dict[str, Any],
              **headers: str) -> Any:
    return farm.client.post(f"/v1/templates/{template_id}/batches", json=body,
                            headers={**bearer(key), **headers})


def get(farm: Farm, key: str, path: str, **params: Any) -> Any:
    response = farm.client.get(path, headers=bearer(key), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def wait_batch(farm: Farm, key: str, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = get(farm, key, f"/v1/batches/{batch_id}")
        return found if found["finished_at"] else None
    return wait_for(check, timeout=timeout, interval=0.1, what=f"batch {batch_id}")


def csv_text(rows: list[list[str]], header: tuple[str, ...] = ("name", "price", "vip")) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


# -- rows in, jobs queued -----------------------------------------------------------------------


def test_a_csv_of_200_rows_with_3_bad_ones_queues_197(farm: Farm) -> None:
    key = farm.tenant("acme")
    template_id = template(farm, key)
    rows = [[f"person {i}", str(i), "yes" if i % 2 else "no"] for i in range(1, 201)]
    rows[2][1] = "abc"  # row 3: not a number
    rows[49] = ["only", "two"]  # row 50: a cell short
    rows[199][2] = "maybe"  # row 200: not a boolean
    rows[9][0] = 'Quoted, with a comma\nand a newline'
    response = post_csv(farm, key, template_id, "\ufeff" + csv_text(rows), quality="low")
    assert response.status_code == 202, response.text
    batch = response.json()
    assert (batch["rows_total"], batch["rows_queued"], batch["rows_skipped"]) == (200, 197, 3)
    assert batch["state"] == "queued" and batch["mode"] == "skip"
    assert batch["counts"] == {"queued": 197, "running": 0, "succeeded": 0, "failed": 0,
                               "cancelled": 0}
    assert [(s["row"], s["field"]) for s in batch["skipped"]] == [
        (3, "price"), (50, None), (200, "vip")]
    assert batch["skipped"][0]["message"] == "row 3, price: 'abc' is not a number"
    assert "row 50" in batch["skipped"][1]["message"]
    assert batch["options"] == {"quality": "low"}

    # The row jobs, a page at a time, by row number: the bad rows have none.
    seen: list[int] = []
    after = 0
    while True:
        page = get(farm, key, f"/v1/batches/{batch['id']}/jobs", limit=80, after=after)
        seen += [item["row"] for item in page["items"]]
        if not page["has_more"]:
            assert page["next"] is None
            break
        after = page["next"]
    assert seen == [r for r in range(1, 201) if r not in (3, 50, 200)]
    first = get(farm, key, f"/v1/batches/{batch['id']}/jobs", limit=10)["items"]
    assert first[0]["options"] == {"quality": "low"} and first[0]["state"] == "queued"
    assert [b["id"] for b in get(farm, key, "/v1/batches")["items"]] == [batch["id"]]
    # Every row's document is its own: row 10 kept its quoted comma and newline.
    row10 = next(i for i in get(farm, key, f"/v1/batches/{batch['id']}/jobs",
                                limit=12)["items"] if i["row"] == 10)
    job = farm.svc.renders.job(None, row10["id"])
    assert job.document["scenes"][0]["layers"][0]["text"] == \
        "Quoted, with a comma\nand a newline 10"


def test_mode_refuse_queues_nothing_and_lists_every_bad_row(farm: Farm) -> None:
    key = farm.tenant("acme")
    template_id = template(farm, key)
    rows = [{"name": f"p{i}", "price": i} for i in range(30)]
    for i in range(0, 30, 2):
        rows[i]["price"] = "lots"
    response = post_json(farm, key, template_id, {"rows": rows, "mode": "refuse"})
    error = assert_error(response, 422, "invalid_rows")
    assert len(error["details"]) == 15
    assert error["details"][0] == {"row": 1, "field": "price",
                                   "message": "row 1, price: 'lots' is not a number"}
    assert error["message"].startswith("15 of 30 rows cannot be rendered")
    assert "and 0 more" not in error["message"]
    assert get(farm, key, "/v1/batches")["items"] == []
    assert get(farm, key, "/v1/renders")["items"] == []
    # Skip (the default) with no good row left is refused too.
    none_good = post_json(farm, key, template_id, {"rows": [{"price": 1}, {"name": None}]})
    error = assert_error(none_good, 422, "invalid_rows")
    assert [(d["row"], d["field"]) for d in error["details"]] == [(1, "name"), (2, "name")]


def test_each_row_document_is_checked_with_the_projects_assets(farm: Farm,
                                                              tmp_path: Path) -> None:
    """A row naming a photo the project lacks is a bad row at its variable, found by the
    same check as a render's (its assets read once for the batch)."""
    key = farm.tenant("acme")
    c = farm.client
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    photo = write_photo(tmp_path / "a.jpg", "#c03030", (64, 36))
    uploaded = c.post(f"/v1/projects/{project}/assets", headers=bearer(key),
                      files={"files": ("a.jpg", photo.read_bytes(), "image/jpeg")})
    assert uploaded.status_code == 201, uploaded.text
    document = {**TEMPLATE, "variables": {"photo": {"type": "image", "required": True}},
                "scenes": [{"duration": 1, "layers": [{"type": "image", "src": "{{photo}}"}]}]}
    template_id = template(farm, key, document, project)
    response = post_json(farm, key, template_id, {"rows": [
        {"photo": "a.jpg"}, {"photo": "missing.jpg"}, {"photo": "a.jpg"}]})
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["rows_queued"] == 2
    [skipped] = batch["skipped"]
    assert (skipped["row"], skipped["field"]) == (2, "photo")
    assert skipped["message"].startswith("row 2, photo: scenes[0].layers[0].src")
    assert "missing.jpg" in skipped["message"]


def test_an_idempotency_key_gives_back_the_same_batch(farm: Farm) -> None:
    key = farm.tenant("acme")
    template_id = template(farm, key)
    first = post_json(farm, key, template_id, {"rows": [{"name": "a"}]},
                      **{"Idempotency-Key": "k1"})
    again = post_json(farm, key, template_id, {"rows": [{"name": "a"}, {"name": "b"}]},
                      **{"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["rows_total"] == 1


# -- live counts, cancel, retry, results --------------------------------------------------------


def _listen(farm: Farm, key: str, batch_id: str, out: queue.Queue[dict[str, Any] | None]) -> None:
    with farm.client.stream("GET", f"/v1/batches/{batch_id}/events",
                            headers=bearer(key)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                out.put(json.loads(line[5:]))
    out.put(None)


def _next(events: queue.Queue[dict[str, Any] | None], until: Any) -> dict[str, Any]:
    while True:
        event = events.get(timeout=30)
        assert event is not None, "the stream ended early"
        if until(event):
            return event


def test_live_counts_and_cancel_mid_batch(farm: Farm) -> None:
    """One row is taken by a node (held by hand, so nothing finishes by itself), one row
    is cancelled alone, then the batch: the stream shows each change, then ``done``."""
    key = farm.tenant("acme")
    template_id = template(farm, key)
    batch = post_json(farm, key, template_id,
                      {"rows": [{"name": f"p{i}"} for i in range(5)]}).json()
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    listener = threading.Thread(target=_listen, args=(farm, key, batch["id"], events))
    listener.start()
    first = _next(events, lambda e: True)
    assert (first["event"], first["state"], first["counts"]["queued"]) == ("progress",
                                                                           "queued", 5)
    node = farm.agent("held")
    task = farm.svc.ctx.queue.claim(node.node_id)
    assert task is not None
    running = _next(events, lambda e: e["counts"]["running"] == 1)
    assert running["state"] == "running"
    jobs = get(farm, key, f"/v1/batches/{batch['id']}/jobs")["items"]
    alone = next(j for j in jobs if j["id"] != task.job_id)
    assert farm.client.post(f"/v1/renders/{alone['id']}/cancel",
                            headers=bearer(key)).status_code == 200
    _next(events, lambda e: e["counts"]["cancelled"] == 1)

    cancelled = farm.client.post(f"/v1/batches/{batch['id']}/cancel", headers=bearer(key))
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["state"] == "cancelled" and body["counts"]["cancelled"] == 5
    done = _next(events, lambda e: e["event"] == "done")
    assert done["state"] == "cancelled" and done["counts"]["cancelled"] == 5
    listener.join(timeout=30)
    assert not listener.is_alive()
    # The node holding a row hears 'cancel' at its next heartbeat; nothing is left to cancel.
    assert farm.svc.ctx.queue.heartbeat(task.id, task.lease_token or "") == "cancel"
    assert_error(farm.client.post(f"/v1/batches/{batch['id']}/cancel", headers=bearer(key)),
                 409, "conflict")


@pytest.mark.ffmpeg
def test_retry_failed_rows_then_manifest_and_archive(farm: Farm, tmp_path: Path) -> None:
    """Row jobs render on real nodes; one fails (reported by hand, for good), the batch
    finishes failed, its retry renders the row again, and the manifest and the ZIP show
    the newest attempt of every row."""
    key = farm.tenant("acme")
    template_id = template(farm, key)
    batch = post_json(farm, key, template_id, {"rows": [{"name": f"p{i}"} for i in range(3)]
                                               + [{"name": "bad", "price": "x"}]}).json()
    node = farm.agent("failing")
    task = farm.svc.ctx.queue.claim(node.node_id)
    assert task is not None and task.lease_token
    farm.svc.ctx.queue.fail(task.id, task.lease_token, "boom", permanent=True)
    farm.start_nodes(1)
    finished = wait_batch(farm, key, batch["id"])
    assert finished["state"] == "failed"
    assert finished["counts"] == {"queued": 0, "running": 0, "succeeded": 2, "failed": 1,
                                  "cancelled": 0}
    retried = farm.client.post(f"/v1/batches/{batch['id']}/retry", headers=bearer(key))
    assert retried.status_code == 202, retried.text
    assert retried.json()["counts"]["queued"] == 1
    finished = wait_batch(farm, key, batch["id"])
    assert finished["state"] == "succeeded" and finished["percent"] == 100.0
    assert finished["counts"]["succeeded"] == 3 and finished["counts"]["failed"] == 0

    manifest = get(farm, key, f"/v1/batches/{batch['id']}/manifest")
    rows = manifest["rows"]
    assert [(r["row"], r["state"]) for r in rows] == [
        (1, "succeeded"), (2, "succeeded"), (3, "succeeded"), (4, "skipped")]
    assert task.job_id not in [r["job_id"] for r in rows]  # the newest attempt shows
    assert all(r["download_url"] and r["download_expires_at"] for r in rows[:3])
    assert rows[3]["error"] == "row 4, price: 'x' is not a number"
    link = farm.client.get(rows[0]["download_url"].removeprefix("http://testserver"))
    assert link.status_code == 200 and link.content[4:8] == b"ftyp"
    as_csv = farm.client.get(f"/v1/batches/{batch['id']}/manifest", params={"format": "csv"},
                             headers=bearer(key))
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["row"], r["state"], r["file"]) for r in table] == [
        ("1", "succeeded", "row-00001.mp4"), ("2", "succeeded", "row-00002.mp4"),
        ("3", "succeeded", "row-00003.mp4"), ("4", "skipped", "")]

    archive = farm.client.get(f"/v1/batches/{batch['id']}/archive", headers=bearer(key))
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["row-00001.mp4", "row-00002.mp4", "row-00003.mp4",
                                 "manifest.csv"]
        for name in zf.namelist()[:3]:
            path = tmp_path / name
            path.write_bytes(zf.read(name))
            info = probe.probe(path, count_frames=True)
            assert info.video is not None and info.video.codec == "h264"
            assert (info.video.width, info.video.height, info.video.frames) == (64, 36, 24)
        inside = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode())))
        assert [r["file"] for r in inside] == [r["file"] for r in table]


# -- fairness and the concurrency limit -----------------------------------------------------------


def test_another_tenants_render_is_claimed_while_a_500_row_batch_waits(farm: Farm) -> None:
    big, small = farm.tenant("big"), farm.tenant("small")
    template_id = template(farm, big)
    batch = post_json(farm, big, template_id,
                      {"rows": [{"name": f"p{i}"} for i in range(500)]})
    assert batch.status_code == 202, batch.text
    single = farm.submit(small, {"document": {"output": TEMPLATE["output"],
                                              "scenes": [{"duration": 1, "layers": []}]}})
    queue_ = farm.svc.ctx.queue
    first = queue_.claim(farm.agent("n1").node_id)
    second = queue_.claim(farm.agent("n2").node_id)
    assert first is not None and second is not None
    # The batch is older, so it goes first; the next node goes to the tenant with fewer
    # tasks running, not to the batch's 499 other rows.
    assert second.job_id == single["id"]
    assert get(farm, small, f"/v1/renders/{single['id']}")["state"] == "running"
    assert get(farm, big, f"/v1/batches/{batch.json()['id']}")["counts"]["queued"] == 499


def test_a_batch_counts_once_against_the_concurrent_jobs_limit(make_farm: Any) -> None:
    farm = make_farm(max_concurrent_jobs=2)
    key = farm.tenant("acme")
    template_id = template(farm, key)
    first = post_json(farm, key, template_id, {"rows": [{"name": f"p{i}"} for i in range(20)]})
    assert first.status_code == 202, first.text
    one = farm.client.post(f"/v1/templates/{template_id}/renders", headers=bearer(key),
                           json={"data": {"name": "alone"}})
    assert one.status_code == 202, one.text
    assert_error(post_json(farm, key, template_id, {"rows": [{"name": "x"}]}), 429,
                 "too_many_jobs")
    assert_error(farm.client.post(f"/v1/templates/{template_id}/renders", headers=bearer(key),
                                  json={"data": {"name": "again"}}), 429, "too_many_jobs")


# -- limits and refusals -------------------------------------------------------------------------


def test_limits_and_bad_input_are_clear_4xx(make_farm: Any) -> None:
    farm = make_farm(batch_max_rows=5, batch_max_bytes=2048)
    key = farm.tenant("acme")
    template_id = template(farm, key)
    six = [[f"p{i}", "1", "no"] for i in range(6)]
    error = assert_error(post_csv(farm, key, template_id, csv_text(six)), 422, "too_many_rows")
    assert "at most 5" in error["message"] and error["details"] == {"max_rows": 5}
    assert_error(post_json(farm, key, template_id, {"rows": [{"name": "a"}] * 6}), 422,
                 "too_many_rows")
    big = csv_text([["x" * 100, "1", "no"]] * 30)
    assert_error(post_csv(farm, key, template_id, big), 413, "too_large")

    error = assert_error(post_csv(farm, key, template_id, "name,colour\nA,red\n"), 422)
    assert "'colour' is not a variable" in error["message"]
    error = assert_error(post_csv(farm, key, template_id, "price\n3\n"), 422)
    assert "required variable(s) name" in error["message"]
    assert "empty" in assert_error(post_csv(farm, key, template_id, ""), 422)["message"]
    error = assert_error(post_csv(farm, key, template_id, b"name\n\xff\xfe\n"), 422,
                         "invalid_csv")
    assert "not UTF-8" in error["message"]
    error = assert_error(post_csv(farm, key, template_id, 'name\n"a"b\n'), 422)
    assert "line 2" in error["message"]
    assert_error(post_csv(farm, key, template_id, "name\na\n", mode="sometimes"), 422)
    assert_error(farm.client.post(f"/v1/templates/{template_id}/batches", content=b"x",
                                  headers={**bearer(key), "Content-Type": "text/plain"}),
                 422, "invalid_request")
    assert_error(farm.client.post(f"/v1/templates/{template_id}/batches?mode=skip",
                                  json={"rows": [{"name": "a"}]}, headers=bearer(key)),
                 422, "invalid_request")
    assert_error(post_json(farm, key, template_id, {"rows": "name"}), 422, "invalid_request")
    assert_error(post_json(farm, key, "tpl_nothere", {"rows": [{"name": "a"}]}), 404)


def test_another_tenants_batch_is_404(farm: Farm) -> None:
    owner, other = farm.tenant("owner"), farm.tenant("other")
    batch = post_json(farm, owner, template(farm, owner), {"rows": [{"name": "a"}]}).json()
    c, auth = farm.client, bearer(other)
    for method, path in [("GET", ""), ("GET", "/jobs"), ("GET", "/manifest"),
                         ("GET", "/archive"), ("GET", "/events"), ("POST", "/cancel"),
                         ("POST", "/retry")]:
        assert_error(c.request(method, f"/v1/batches/{batch['id']}{path}", headers=auth),
                     404, "not_found")
    assert get(farm, other, "/v1/batches")["items"] == []
