"""Hardening of the service: a WebSocket implementation is installed and the key travels
in the socket's first message rather than the URL; concurrent submits with one
idempotency key; API keys can be listed and revoked (admin API and CLI)."""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from framefarm.api import events
from framefarm.application.accounts import Accounts
from framefarm.db.database import open_database
from support.api import assert_error, bearer
from support.documents import simple_doc
from support.farm import Farm
from support.server import Server

# -- the WebSocket ---------------------------------------------------------------------------


def test_uvicorn_has_a_websocket_implementation() -> None:
    """Without one uvicorn answers every WebSocket handshake with 404 ("No supported
    WebSocket library detected"): the package must depend on one."""
    import uvicorn

    config = uvicorn.Config(FastAPI())
    config.load()
    assert config.ws_protocol_class is not None


def test_a_real_server_streams_events_over_a_websocket(servers: Callable[..., Server],
                                                       tmp_path: Path) -> None:
    """``framefarm serve`` on a socket, a real WebSocket client: the key goes in the first
    message, and the job's first event comes back."""
    from websockets.sync.client import connect

    server = servers(tmp_path / "data").start()
    job_id = server.submit(simple_doc(1.0))
    url = server.url.replace("http://", "ws://") + f"/v1/renders/{job_id}/ws"
    with connect(url, open_timeout=20) as ws:
        ws.send(json.dumps({"token": server.key}))
        event = json.loads(ws.recv(timeout=20))
    assert (event["event"], event["state"]) == ("state", "queued"), event


def first_event(farm: Farm, path: str, *, send: Any = None,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    with farm.client.websocket_connect(path, headers=headers or {}) as ws:
        if send is not None:
            ws.send_json(send)
        event = dict(ws.receive_json())
    return {k: event[k] for k in ("event", "state")}


def closed_with(farm: Farm, path: str, *, send: Any = None) -> int:
    with pytest.raises(WebSocketDisconnect) as closed, \
            farm.client.websocket_connect(path) as ws:
        if send is not None:
            if isinstance(send, str):
                ws.send_text(send)
            else:
                ws.send_json(send)
        ws.receive_json()
    return int(closed.value.code)


def test_the_websocket_takes_the_key_in_its_first_message(
        farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "AUTH_SECONDS", 0.5)
    key, other = farm.tenant("acme"), farm.tenant("other")
    job_id = farm.submit(key, {"document": simple_doc(1.0)})["id"]  # no nodes: it waits
    path = f"/v1/renders/{job_id}/ws"
    queued = {"event": "state", "state": "queued"}

    assert first_event(farm, path, send={"token": key}) == queued
    assert first_event(farm, path, headers=bearer(key)) == queued  # non-browser clients
    assert closed_with(farm, path) == 4401  # nothing sent within AUTH_SECONDS
    assert closed_with(farm, path, send={"token": "ff_wrong"}) == 4401
    assert closed_with(farm, path, send="not json") == 4401
    assert closed_with(farm, path, send={"key": key}) == 4401
    assert closed_with(farm, path, send={"token": other}) == 4404
    assert closed_with(farm, "/v1/renders/job_nope/ws", send={"token": key}) == 4404


# -- idempotency keys under concurrency --------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])
def test_concurrent_submits_with_one_idempotency_key_get_one_job(farm: Farm) -> None:
    """40 submits at once with the same key: one creates the job, every other one gets it
    (200), none a 500 from the unique index."""
    key = farm.tenant("acme")
    body = {"document": simple_doc(1.0), "idempotency_key": "order-42"}
    start = threading.Barrier(40)

    def submit(_: int) -> tuple[int, str]:
        start.wait(timeout=30)
        response = farm.client.post("/v1/renders", json=body, headers=bearer(key))
        return response.status_code, response.json().get("id", response.text)

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(submit, range(40)))
    statuses = sorted(status for status, _ in answers)
    assert set(statuses) <= {200, 202}, answers
    assert statuses.count(202) == 1, statuses
    assert len({job_id for _, job_id in answers}) == 1, answers
    listed = farm.client.get("/v1/renders", headers=bearer(key)).json()["items"]
    assert [job["id"] for job in listed] == [answers[0][1]]


# -- API keys: list and revoke ---------------------------------------------------------------


def test_admins_list_and_revoke_keys_and_a_revoked_key_is_refused_at_once(farm: Farm) -> None:
    c, admin = farm.client, farm.admin
    made = c.post("/v1/admin/tenants", json={"name": "acme"}, headers=admin)
    assert made.status_code == 201, made.text
    tenant_id, first_key, first_id = (made.json()[k] for k in ("id", "api_key", "api_key_id"))
    second = c.post(f"/v1/admin/tenants/{tenant_id}/keys", headers=admin)
    assert second.status_code == 201, second.text
    second_key, second_id = second.json()["api_key"], second.json()["api_key_id"]
    assert second.json()["tenant_id"] == tenant_id and first_id != second_id

    listed = c.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=admin)
    assert listed.status_code == 200, listed.text
    assert [k["id"] for k in listed.json()] == [first_id, second_id]
    for row in listed.json():
        assert set(row) == {"id", "tenant_id", "admin", "created_at", "revoked_at"}, row
        assert row["admin"] is False and row["revoked_at"] is None
    assert first_key not in listed.text and second_key not in listed.text

    assert c.get("/v1/projects", headers=bearer(first_key)).status_code == 200
    revoked = c.post(f"/v1/admin/keys/{first_id}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == first_id and revoked.json()["revoked_at"] is not None
    assert_error(c.get("/v1/projects", headers=bearer(first_key)), 401, "unauthorized")
    assert c.get("/v1/projects", headers=bearer(second_key)).status_code == 200
    assert closed_with(farm, "/v1/renders/job_nope/ws", send={"token": first_key}) == 4401

    listed = c.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=admin).json()
    assert [k["revoked_at"] is not None for k in listed] == [True, False]
    assert_error(c.post(f"/v1/admin/keys/{first_id}/revoke", headers=admin), 409)
    assert_error(c.post("/v1/admin/keys/key_nope/revoke", headers=admin), 404)
    assert_error(c.get("/v1/admin/tenants/ten_nope/keys", headers=admin), 404)
    # Tenants' own keys are not admin keys.
    assert_error(c.get(f"/v1/admin/tenants/{tenant_id}/keys", headers=bearer(second_key)), 403)
    assert_error(c.post(f"/v1/admin/keys/{second_id}/revoke", headers=bearer(second_key)),
                 403)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_cli_lists_and_revokes_keys(farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    from framefarm.cli import app

    monkeypatch.setenv("FRAMEFARM_DATABASE_URL", farm.settings.db_url)
    runner = CliRunner()
    made = runner.invoke(app, ["admin", "create-tenant", "acme"])
    assert made.exit_code == 0, made.output
    printed = {label: line.removeprefix(label).strip()
               for line in made.output.strip().splitlines()
               for label in ("tenant", "api key", "key id") if line.startswith(label + " ")}
    tenant_id, key, key_id = printed["tenant"], printed["api key"], printed["key id"]
    assert farm.svc.accounts.authenticate(key) is not None
    assert farm.client.get("/v1/renders", headers=bearer(key)).status_code == 200
    assert farm.client.get("/v1/renders/job_nope", headers=bearer(key)).status_code == 404
    more = runner.invoke(app, ["admin", "create-key", tenant_id, "--admin"])
    assert more.exit_code == 0 and "key id key_" in more.output, more.output

    listed = runner.invoke(app, ["admin", "list-keys", tenant_id])
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.output.strip().splitlines()]
    assert rows[0][0] == key_id and rows[0][1] == "active" and len(rows) == 2, listed.output
    assert key not in listed.output

    revoked = runner.invoke(app, ["admin", "revoke-key", key_id])
    assert revoked.exit_code == 0 and f"revoked {key_id}" in revoked.output, revoked.output
    # Another process (the CLI) revoked it: every process refuses it at once, the running
    # API too, which took it a moment ago (keys are never trusted from a cache), on its
    # thread-pool routes and on those read from the event loop alike.
    other = open_database(farm.settings.db_url)
    assert Accounts(other).authenticate(key) is None
    other.close()
    assert_error(farm.client.get("/v1/projects", headers=bearer(key)), 401)
    assert_error(farm.client.get("/v1/renders", headers=bearer(key)), 401)
    assert_error(farm.client.get("/v1/renders/job_nope", headers=bearer(key)), 401)
    listed = runner.invoke(app, ["admin", "list-keys", tenant_id])
    assert listed.output.strip().splitlines()[0].split()[1] == "revoked", listed.output
    again = runner.invoke(app, ["admin", "revoke-key", key_id])
    assert again.exit_code == 1 and "already revoked" in again.output, again.output
    unknown = runner.invoke(app, ["admin", "list-keys", "ten_nope"])
    assert unknown.exit_code == 1, unknown.output
