"""The API's newer routes, on SQLite and PostgreSQL: who am I, renaming and deleting
projects, an asset's bytes, a project's renders and exports, templates changed and deleted,
pages that say whether there is more, and the JSON the response models give."""

from __future__ import annotations

import datetime as dt
import io
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from support.api import assert_error, bearer, wait_job
from support.documents import simple_doc
from support.farm import Farm

JOB_KEYS = {"id", "kind", "state", "step", "percent", "eta_seconds", "frames", "priority",
            "attempt", "retry_of", "project_id", "options", "error", "failed_step",
            "preview_url", "export", "created_at", "started_at", "finished_at", "credits"}
EXPORT_KEYS = {"id", "job_id", "size", "duration", "width", "height", "codec", "format",
               "created_at", "expires_at", "file_url"}


def png_bytes(colour: str = "#3050c0") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 18), colour).save(buffer, "PNG")
    return buffer.getvalue()


def new_project(farm: Farm, key: str, name: str = "p") -> dict[str, Any]:
    response = farm.client.post("/v1/projects", json={"name": name}, headers=bearer(key))
    assert response.status_code == 201, response.text
    return dict(response.json())


def upload(farm: Farm, key: str, project: str, name: str, content: bytes,
           folder: str | None = None) -> dict[str, Any]:
    response = farm.client.post(f"/v1/projects/{project}/assets", headers=bearer(key),
                                files={"files": (name, content, "application/octet-stream")},
                                data={"folder": folder} if folder else None)
    assert response.status_code == 201, response.text
    return dict(response.json()[0])


# -- who is calling ----------------------------------------------------------------------------


def test_me_names_the_tenant_and_whether_the_key_is_an_admin_key(farm: Farm) -> None:
    c = farm.client
    key = farm.tenant("acme")
    me = c.get("/v1/me", headers=bearer(key))
    assert me.status_code == 200, me.text
    body = me.json()
    assert set(body) == {"tenant_id", "tenant", "admin"}
    assert body["tenant"] == "acme" and body["admin"] is False
    assert body["tenant_id"].startswith("ten_")
    assert c.get("/v1/me", headers=farm.admin).json()["admin"] is True
    assert c.get("/v1/me", headers=farm.admin).json()["tenant"] == "admin"
    assert_error(c.get("/v1/me"), 401, "unauthorized")
    assert_error(c.get("/v1/me", headers=bearer("ff_nope")), 401, "unauthorized")


# -- projects ----------------------------------------------------------------------------------


def test_a_project_is_renamed_with_the_answer_of_its_creation(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    created = new_project(farm, key, "first")
    renamed = c.patch(f"/v1/projects/{created['id']}", json={"name": "second"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**created, "name": "second"}
    assert c.get(f"/v1/projects/{created['id']}", headers=auth).json()["name"] == "second"
    assert [p["name"] for p in c.get("/v1/projects", headers=auth).json()] == ["second"]
    for body in ({}, {"name": ""}, {"name": 1}, {"name": "x", "document": {}}, ["x"]):
        assert_error(c.patch(f"/v1/projects/{created['id']}", json=body, headers=auth), 422,
                     "invalid_request")
    assert_error(c.patch("/v1/projects/prj_nope", json={"name": "x"}, headers=auth), 404,
                 "not_found")


def test_deleting_a_project_waits_for_its_renders_then_releases_its_assets(
        farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    project = new_project(farm, key)["id"]
    kept = new_project(farm, key, "kept")["id"]
    only_here = upload(farm, key, project, "only.png", png_bytes("#ff0000"))
    shared = upload(farm, key, project, "shared.png", png_bytes("#00ff00"))
    assert upload(farm, key, kept, "shared.png", png_bytes("#00ff00")) == shared
    template = c.post("/v1/templates", headers=auth, json={
        "name": "t", "document": simple_doc(), "project_id": project}).json()["id"]
    loose_template = c.post("/v1/templates", headers=auth, json={
        "name": "loose", "document": simple_doc()}).json()["id"]
    job = farm.submit(key, {"document": simple_doc(), "project_id": project})  # no node: queued

    refused = assert_error(c.delete(f"/v1/projects/{project}", headers=auth), 409, "conflict")
    assert "queued or running" in refused["message"] and project in refused["message"]
    assert c.get(f"/v1/projects/{project}", headers=auth).status_code == 200

    assert c.post(f"/v1/renders/{job['id']}/cancel", headers=auth).status_code == 200
    deleted = c.delete(f"/v1/projects/{project}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    for path in (f"/v1/projects/{project}", f"/v1/projects/{project}/assets",
                 f"/v1/projects/{project}/assets/only.png", f"/v1/projects/{project}/renders",
                 f"/v1/projects/{project}/exports", f"/v1/templates/{template}"):
        assert_error(c.get(path, headers=auth), 404, "not_found")
    assert_error(c.delete(f"/v1/projects/{project}", headers=auth), 404, "not_found")
    # Its finished render stays (the tenant's history); other projects and loose templates
    # are untouched.
    assert c.get(f"/v1/renders/{job['id']}", headers=auth).json()["state"] == "cancelled"
    assert [p["id"] for p in c.get("/v1/projects", headers=auth).json()] == [kept]
    assert [t["id"] for t in c.get("/v1/templates", headers=auth).json()] == [loose_template]

    # The contents only it used are no longer referenced: the sweeper (its age guard passed)
    # deletes those, and keeps the one another project still names.
    storage = farm.svc.ctx.storage
    later = farm.svc.ctx.now() + dt.timedelta(days=1)
    swept = farm.svc.exports.sweeper.sweep(now=later)
    assert swept["assets"] == 1, swept
    assert not storage.exists(f"assets/{only_here['sha256']}")
    assert storage.exists(f"assets/{shared['sha256']}")
    shown = c.get(f"/v1/projects/{kept}/assets/shared.png", headers=auth)
    assert shown.status_code == 200 and shown.content == png_bytes("#00ff00")


def test_a_running_render_also_blocks_deleting_its_project(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    project = new_project(farm, key)["id"]
    job = farm.submit(key, {"document": simple_doc(), "project_id": project})
    node = farm.agent("manual")
    claimed = c.post("/internal/tasks/claim", headers=node._headers())
    assert claimed.status_code == 200, claimed.text
    assert c.get(f"/v1/renders/{job['id']}", headers=bearer(key)).json()["state"] == "running"
    error = assert_error(c.delete(f"/v1/projects/{project}", headers=bearer(key)), 409)
    assert "1 render queued or running" in error["message"], error


# -- assets ------------------------------------------------------------------------------------


def test_an_asset_is_served_with_its_bytes_and_content_type(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    project = new_project(farm, key)["id"]
    image = png_bytes()
    upload(farm, key, project, "logo.png", image, folder="images")
    upload(farm, key, project, "notes.unknownsuffix", b"\x00\x01 some bytes")
    response = c.get(f"/v1/projects/{project}/assets/images/logo.png", headers=auth)
    assert response.status_code == 200, response.text
    assert response.content == image
    assert response.headers["content-type"] == "image/png"
    assert 'filename="logo.png"' in response.headers["content-disposition"]
    other = c.get(f"/v1/projects/{project}/assets/notes.unknownsuffix", headers=auth)
    assert other.content == b"\x00\x01 some bytes"
    assert other.headers["content-type"] == "application/octet-stream"
    assert_error(c.get(f"/v1/projects/{project}/assets/images/none.png", headers=auth), 404,
                 "not_found")
    assert_error(c.get(f"/v1/projects/{project}/assets/logo.png", headers=auth), 404)
    # A deleted asset is gone from the route too.
    assert c.delete(f"/v1/projects/{project}/assets/images/logo.png",
                    headers=auth).status_code == 204
    assert_error(c.get(f"/v1/projects/{project}/assets/images/logo.png", headers=auth), 404)


# -- a project's renders and exports; pages ----------------------------------------------------


def test_pages_say_whether_there_is_more(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    project = new_project(farm, key)["id"]
    in_project = [farm.submit(key, {"document": simple_doc(0.2), "project_id": project})["id"]
                  for _ in range(3)]
    outside = farm.submit(key, {"document": simple_doc(0.2)})["id"]
    newest_first = [outside, *reversed(in_project)]

    def page(path: str, **params: Any) -> dict[str, Any]:
        response = c.get(path, params=params, headers=auth)
        assert response.status_code == 200, response.text
        body = dict(response.json())
        assert set(body) == {"items", "next", "has_more"}
        return body

    everything = page("/v1/renders")
    assert [j["id"] for j in everything["items"]] == newest_first
    assert (everything["next"], everything["has_more"]) == (None, False)
    # Exactly a page's worth: nothing more, so no next.
    exact = page("/v1/renders", limit=4)
    assert (len(exact["items"]), exact["next"], exact["has_more"]) == (4, None, False)
    first = page("/v1/renders", limit=3)
    assert [j["id"] for j in first["items"]] == newest_first[:3]
    assert first["has_more"] is True and first["next"] == newest_first[2]
    rest = page("/v1/renders", limit=3, before=first["next"])
    assert [j["id"] for j in rest["items"]] == newest_first[3:]
    assert (rest["next"], rest["has_more"]) == (None, False)

    mine = page(f"/v1/projects/{project}/renders")
    assert [j["id"] for j in mine["items"]] == list(reversed(in_project))
    assert all(set(j) == JOB_KEYS and j["project_id"] == project for j in mine["items"])
    assert mine["items"] == [j for j in everything["items"] if j["id"] in in_project]
    two = page(f"/v1/projects/{project}/renders", limit=2)
    assert (two["has_more"], two["next"]) == (True, in_project[1])
    last = page(f"/v1/projects/{project}/renders", limit=2, before=two["next"])
    assert ([j["id"] for j in last["items"]], last["has_more"]) == ([in_project[0]], False)
    assert page(f"/v1/projects/{project}/renders", state="running")["items"] == []
    assert_error(c.get(f"/v1/projects/{project}/renders?state=bogus", headers=auth), 422)
    assert_error(c.get(f"/v1/projects/{project}/renders?limit=0", headers=auth), 422)


def test_listing_a_projects_renders_runs_a_fixed_number_of_queries(farm: Farm) -> None:
    """The same SQL for 2 jobs as for 14: counted on this thread only, so the server's
    upkeep and event threads sharing the engine do not count."""
    key = farm.tenant("lister")
    project = new_project(farm, key)["id"]
    caller = farm.svc.accounts.authenticate(key)
    assert caller is not None
    here = threading.get_ident()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == here:
            statements.append(statement)

    def cost(expected: int) -> int:
        engine = farm.svc.ctx.db.engine
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            found = farm.svc.renders.page(caller.tenant_id, limit=50, project_id=project)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert len(found.items) == expected and not found.has_more
        return len(statements)

    for _ in range(2):
        farm.submit(key, {"document": simple_doc(0.2), "project_id": project})
    few = cost(2)
    for _ in range(12):
        farm.submit(key, {"document": simple_doc(0.2), "project_id": project})
    assert cost(14) == few
    # project, jobs, tasks, exports, credits (+ transaction)
    assert few <= 7, f"{few} statements"
    listed = farm.client.get(f"/v1/projects/{project}/renders", headers=bearer(key)).json()
    assert len(listed["items"]) == 14


@pytest.mark.ffmpeg
def test_a_projects_renders_and_exports(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    project = new_project(farm, key)["id"]
    farm.start_nodes(1)
    mine = farm.submit(key, {"document": simple_doc(0.5), "project_id": project})
    theirs = farm.submit(key, {"document": simple_doc(0.5, text="elsewhere")})
    for job in (mine, theirs):
        assert wait_job(c, key, job["id"])["state"] == "succeeded"
    exports = c.get(f"/v1/projects/{project}/exports", headers=auth)
    assert exports.status_code == 200, exports.text
    listed = exports.json()
    assert [e["job_id"] for e in listed] == [mine["id"]]
    assert set(listed[0]) == EXPORT_KEYS
    assert listed == [e for e in c.get("/v1/exports", headers=auth).json()
                      if e["job_id"] == mine["id"]]
    renders = c.get(f"/v1/projects/{project}/renders", headers=auth).json()["items"]
    assert [j["id"] for j in renders] == [mine["id"]]
    assert renders[0]["export"] == listed[0]
    assert set(renders[0]["export"]) == EXPORT_KEYS


# -- templates ---------------------------------------------------------------------------------


def test_a_template_is_changed_and_deleted(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    document = {**simple_doc(text="{{title}}"), "variables": {"title": {"default": "x"}}}
    created = c.post("/v1/templates", json={"name": "t", "document": document}, headers=auth)
    template = created.json()["id"]
    url = f"/v1/templates/{template}"

    renamed = c.put(url, json={"name": "renamed"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**c.get(url, headers=auth).json(), "name": "renamed"}
    assert renamed.json()["document"] == document

    changed = {**simple_doc(text="{{a}} {{b}}"),
               "variables": {"a": {"default": "1"}, "b": {"type": "number", "default": 2}},
               "scenes": [simple_doc()["scenes"][0]] * 3}
    put = c.put(url, json={"document": changed}, headers=auth)
    assert put.status_code == 200, put.text
    shown = put.json()
    assert (shown["name"], shown["scenes"], sorted(shown["variables"])) == \
        ("renamed", 3, ["a", "b"])
    assert c.get(url, headers=auth).json() == shown
    both = c.put(url, json={"name": "both", "document": document}, headers=auth).json()
    assert (both["name"], both["document"]) == ("both", document)

    # Variables are checked as at create; nothing changes when they are refused.
    bad = {**simple_doc(), "variables": {"x": {"type": "nonsense"}}}
    assert_error(c.put(url, json={"document": bad}, headers=auth), 422, "invalid_document")
    assert c.put(url, json={}, headers=auth).json() == both  # nothing to change
    assert c.put(url, json={"name": None, "document": None}, headers=auth).json() == both
    assert_error(c.put(url, json={"name": ""}, headers=auth), 422, "invalid_request")
    assert_error(c.put(url, json={"name": "x", "project_id": None}, headers=auth), 422)
    assert c.get(url, headers=auth).json() == both

    assert c.delete(url, headers=auth).status_code == 204
    assert_error(c.get(url, headers=auth), 404, "not_found")
    assert_error(c.put(url, json={"name": "x"}, headers=auth), 404, "not_found")
    assert_error(c.delete(url, headers=auth), 404, "not_found")
    assert c.get("/v1/templates", headers=auth).json() == []


# -- tell_me_when_done is gone -----------------------------------------------------------------


def test_tell_me_when_done_is_an_unknown_field(farm: Farm) -> None:
    key = farm.tenant("acme")
    error = assert_error(farm.client.post(
        "/v1/renders", json={"document": simple_doc(), "tell_me_when_done": True},
        headers=bearer(key)), 422, "invalid_request")
    assert error["details"][0]["path"].endswith("tell_me_when_done"), error


# -- tenants -----------------------------------------------------------------------------------


def test_another_tenants_ids_answer_404_on_the_new_routes(farm: Farm) -> None:
    c = farm.client
    key_a, key_b = farm.tenant("a"), farm.tenant("b")
    a, b = bearer(key_a), bearer(key_b)
    project = new_project(farm, key_a)["id"]
    upload(farm, key_a, project, "x.png", png_bytes())
    template = c.post("/v1/templates", headers=a, json={
        "name": "t", "document": simple_doc(), "project_id": project}).json()["id"]
    job = farm.submit(key_a, {"document": simple_doc(), "project_id": project})
    for method, url, body in [
        ("PATCH", f"/v1/projects/{project}", {"name": "mine now"}),
        ("DELETE", f"/v1/projects/{project}", None),
        ("GET", f"/v1/projects/{project}/assets/x.png", None),
        ("GET", f"/v1/projects/{project}/renders", None),
        ("GET", f"/v1/projects/{project}/exports", None),
        ("PUT", f"/v1/templates/{template}", {"name": "mine now"}),
        ("DELETE", f"/v1/templates/{template}", None),
        ("GET", f"/v1/renders?before={job['id']}", None),
    ]:
        assert_error(c.request(method, url, json=body, headers=b), 404, "not_found")
    assert c.get("/v1/renders", headers=b).json() == {"items": [], "next": None,
                                                     "has_more": False}
    # Nothing of A's changed.
    assert c.get(f"/v1/projects/{project}", headers=a).json()["name"] == "p"
    assert c.get(f"/v1/templates/{template}", headers=a).json()["name"] == "t"
    assert c.get(f"/v1/projects/{project}/assets/x.png", headers=a).content == png_bytes()


# -- answers keep their JSON -------------------------------------------------------------------


def test_the_answers_keep_their_keys_and_formats(farm: Farm) -> None:
    """The response models write exactly what the routes build: every key, timestamps as
    ``isoformat()`` gives them (``+00:00``, not ``Z``)."""
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    project = new_project(farm, key)
    assert set(project) == {"id", "name", "created_at"}
    assert project["created_at"].endswith("+00:00")
    assert dt.datetime.fromisoformat(project["created_at"]).tzinfo is not None
    detail = c.get(f"/v1/projects/{project['id']}", headers=auth).json()
    assert set(detail) == {"id", "name", "document", "assets", "updated_at"}
    assert detail["document"] is None and detail["assets"] == []
    stored = upload(farm, key, project["id"], "x.png", png_bytes())
    assert set(stored) == {"name", "sha256", "size"}
    (asset,) = c.get(f"/v1/projects/{project['id']}/assets", headers=auth).json()
    assert set(asset) == {"name", "sha256", "size", "created_at"}
    job = farm.submit(key, {"document": simple_doc(), "project_id": project["id"]})
    assert set(job) == JOB_KEYS
    assert (job["export"], job["started_at"], job["eta_seconds"]) == (None, None, None)
    assert job["created_at"].endswith("+00:00") and isinstance(job["percent"], float)
    progress = c.get(f"/v1/renders/{job['id']}/progress", headers=auth).json()
    assert progress == {k: job[k] for k in ("id", "state", "step", "percent", "eta_seconds",
                                            "frames")}
    logs = c.get(f"/v1/renders/{job['id']}/logs", headers=auth).json()
    assert logs and set(logs[0]) == {"at", "level", "message", "task_id", "node_id"}
    assert logs[0]["at"].endswith("+00:00")


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_asset_on_s3_is_a_redirect_to_a_presigned_url(
        make_farm: Callable[..., Farm], s3_endpoint: str, tmp_path: Path) -> None:
    farm = make_farm(storage_backend="s3", s3_endpoint_url=s3_endpoint,
                     s3_bucket=f"farm-{secrets.token_hex(6)}", s3_access_key_id="test",
                     s3_secret_access_key="test")
    key = farm.tenant("acme")
    project = new_project(farm, key)["id"]
    upload(farm, key, project, "logo.png", png_bytes(), folder="images")
    response = farm.client.get(f"/v1/projects/{project}/assets/images/logo.png",
                               headers=bearer(key), follow_redirects=False)
    assert response.status_code == 307, response.text
    fetched = httpx.get(response.headers["location"], timeout=30)
    assert fetched.status_code == 200 and fetched.content == png_bytes()
    assert fetched.headers["content-type"] == "image/png"
