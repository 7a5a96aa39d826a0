"""The API's hot reads: a render read from the event loop (its key with the job, then its
tasks, on the driver) answers exactly what the service's own read and the route's model
say; keys are checked on every request, never trusted from a cache; list pages take the
same number of statements whatever their length."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from framefarm.api import models
from framefarm.application import views
from support.api import assert_error, bearer, wait_job
from support.documents import simple_doc
from support.farm import Farm


@contextmanager
def counting(farm: Farm) -> Iterator[list[str]]:
    """The statements the service's engine runs inside the block."""
    found: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        found.append(statement)

    sa.event.listen(farm.svc.ctx.db.engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        sa.event.remove(farm.svc.ctx.db.engine, "before_cursor_execute", record)


def tenant_of(farm: Farm, key: str) -> str:
    caller = farm.svc.accounts.authenticate(key)
    assert caller is not None
    return caller.tenant_id


def test_a_render_reads_the_same_from_the_event_loop_as_through_the_service(
        farm: Farm) -> None:
    key = farm.tenant("acme")
    tenant_id = tenant_of(farm, key)
    queued = farm.submit(key, {"document": simple_doc(0.5)})
    farm.start_nodes(1)
    done = wait_job(farm.client, key, queued["id"])
    assert done["state"] == "succeeded" and done["export"] is not None
    assert done["credits"] is not None and done["frames"]["done"] == done["frames"]["total"]
    farm.stop_nodes()  # the next render stays queued while it is read three ways

    for job_id in (queued["id"], farm.submit(key, {"document": simple_doc()})["id"]):
        answer = farm.client.get(f"/v1/renders/{job_id}", headers=bearer(key))
        assert answer.status_code == 200 and answer.headers["content-type"] == \
            "application/json"
        body = answer.json()
        # The service's read (SQLAlchemy's rows) and the route's model agree with the
        # event loop's (the driver's rows, processed once): times, JSON, floats, credits.
        slow = views.job(farm.svc.renders.get(tenant_id, job_id), farm.settings.public_url)
        assert body == slow
        assert models.Job.model_validate(body).model_dump(mode="json") == body
        progress = farm.client.get(f"/v1/renders/{job_id}/progress", headers=bearer(key))
        assert progress.status_code == 200
        assert progress.json() == {k: body[k] for k in ("id", "state", "step", "percent",
                                                        "eta_seconds", "frames")}
        assert models.JobProgress.model_validate(progress.json()).model_dump(
            mode="json") == progress.json()
    assert body["state"] == "queued"

    # The submit's answer is its model's too, and an idempotent repeat answers 200.
    body_in = {"document": simple_doc(), "idempotency_key": "once"}
    first = farm.client.post("/v1/renders", json=body_in, headers=bearer(key))
    again = farm.client.post("/v1/renders", json=body_in, headers=bearer(key))
    assert (first.status_code, again.status_code) == (202, 200)
    assert models.Job.model_validate(first.json()).model_dump(mode="json") == first.json()
    assert again.json()["id"] == first.json()["id"]


def test_the_hot_reads_refuse_what_the_other_routes_refuse(farm: Farm) -> None:
    key, other = farm.tenant("acme"), farm.tenant("globex")
    job_id = farm.submit(key, {"document": simple_doc()})["id"]
    for path in (f"/v1/renders/{job_id}", f"/v1/renders/{job_id}/progress"):
        assert farm.client.get(path, headers=bearer(key)).status_code == 200
        assert_error(farm.client.get(path, headers=bearer(other)), 404, "not_found")
        assert_error(farm.client.get(path), 401, "unauthorized")
        assert_error(farm.client.get(path, headers={"Authorization": "Basic x"}), 401)
        assert_error(farm.client.get(path, headers=bearer("ff_unknown")), 401,
                     "unauthorized")
    assert_error(farm.client.get("/v1/renders/job_nope", headers=bearer(key)), 404)


def test_a_revoked_key_is_refused_from_the_next_request_on(farm: Farm) -> None:
    made = farm.client.post("/v1/admin/tenants", json={"name": "acme"},
                            headers=farm.admin).json()
    key, key_id = made["api_key"], made["api_key_id"]
    job_id = farm.submit(key, {"document": simple_doc()})["id"]
    paths = (f"/v1/renders/{job_id}", f"/v1/renders/{job_id}/progress", "/v1/renders",
             "/v1/projects", "/v1/me")
    for path in paths:  # each one took the key a moment ago
        assert farm.client.get(path, headers=bearer(key)).status_code == 200, path
    revoked = farm.client.post(f"/v1/admin/keys/{key_id}/revoke", headers=farm.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    for path in paths:
        assert_error(farm.client.get(path, headers=bearer(key)), 401, "unauthorized")
    refused = farm.client.post("/v1/renders", json={"document": simple_doc()},
                               headers=bearer(key))
    assert_error(refused, 401, "unauthorized")


def _lists(farm: Farm, key: str, project_id: str, batch_id: str) -> dict[str, str]:
    return {
        "renders": "/v1/renders?limit=200",
        "renders, small page": "/v1/renders?limit=2",
        "renders queued": "/v1/renders?state=queued",
        "renders of a project": f"/v1/projects/{project_id}/renders",
        "projects": "/v1/projects",
        "templates": "/v1/templates",
        "batches": "/v1/batches",
        "a batch's jobs": f"/v1/batches/{batch_id}/jobs",
        "exports": "/v1/exports",
        "webhooks": "/v1/webhooks",
    }


_ADMIN_LISTS = {"nodes": "/v1/admin/nodes", "tenants": "/v1/admin/tenants"}


def _counts(farm: Farm, key: str, paths: dict[str, str]) -> dict[str, int]:
    """The statements each path's request runs. The service's upkeep (leases, webhooks)
    runs on the same engine every second or two and can land inside a request's count:
    it only ever adds, so the fewest of three tries is the request's own."""
    counts = {}
    for name, path in paths.items():
        tries = []
        for _ in range(3):
            with counting(farm) as found:
                answer = farm.client.get(path, headers=bearer(key))
            assert answer.status_code == 200, (path, answer.text)
            tries.append(len(found))
        counts[name] = min(tries)
    return counts


def _more(farm: Farm, key: str, project_id: str, template_id: str, n: int) -> str:
    """n more of everything the lists show; returns the last batch's id."""
    batch_id = ""
    for i in range(n):
        farm.submit(key, {"document": simple_doc()})
        farm.submit(key, {"project_id": project_id, "template_id": template_id,
                          "data": {"name": f"p{i}"}})
        made = farm.client.post("/v1/projects", json={"name": f"more {n} {i}"},
                                headers=bearer(key))
        assert made.status_code == 201
        template = farm.client.post("/v1/templates", headers=bearer(key), json={
            "name": f"t{n}-{i}", "document": _TEMPLATE, "project_id": project_id})
        assert template.status_code == 201
        rows = "name\n" + "".join(f"row{i}-{r}\n" for r in range(n + 1))
        batch = farm.client.post(f"/v1/templates/{template_id}/batches", content=rows,
                                 headers={**bearer(key), "Content-Type": "text/csv"})
        assert batch.status_code in (201, 202), batch.text
        batch_id = str(batch.json()["id"])
        hook = farm.client.post("/v1/webhooks", json={"url": f"https://example.com/{n}/{i}"},
                                headers=bearer(key))
        assert hook.status_code == 201, hook.text
        registered = farm.client.post("/internal/nodes/register", json={
            "token": farm.svc.ctx.enrolment_token, "name": f"n{n}-{i}"})
        assert registered.status_code in (200, 201), registered.text
        farm.svc.accounts.create_tenant(f"tenant {n} {i}")
    return batch_id


_TEMPLATE: dict[str, Any] = {
    "output": {"size": "360p", "fps": 24, "quality": "draft"},
    "variables": {"name": {"type": "text", "required": True}},
    "scenes": [{"duration": 1, "layers": [{"type": "text", "text": "{{name}}"}]}],
}


def test_list_pages_take_the_same_statements_whatever_their_length(make_farm: Any) -> None:
    farm = make_farm(webhook_allow_private=True)
    key = farm.tenant("acme")
    project_id = farm.client.post("/v1/projects", json={"name": "p"},
                                  headers=bearer(key)).json()["id"]
    template_id = farm.client.post("/v1/templates", headers=bearer(key), json={
        "name": "t", "document": _TEMPLATE, "project_id": project_id}).json()["id"]

    batch_id = _more(farm, key, project_id, template_id, 1)
    paths = _lists(farm, key, project_id, batch_id)
    _counts(farm, key, paths)  # a first read may make what is made once (webhooks' secret)
    few = _counts(farm, key, paths)
    few_admin = _counts(farm, farm.admin_key, _ADMIN_LISTS)

    batch_id = _more(farm, key, project_id, template_id, 6)
    paths = _lists(farm, key, project_id, batch_id)
    many = _counts(farm, key, paths)
    many_admin = _counts(farm, farm.admin_key, _ADMIN_LISTS)
    listed = farm.client.get("/v1/renders?limit=200", headers=bearer(key)).json()["items"]
    # Each round's i: a render, a template's render and a batch of n + 1 rows.
    assert len(listed) == (2 + 2) + 6 * (2 + 7)

    assert many == few, {k: (few[k], many[k]) for k in few if few[k] != many[k]}
    assert many_admin == few_admin
