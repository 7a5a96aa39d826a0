"""The HTTP API's edge: JSON nesting, body limits enforced while the body streams, the
``Allow`` header on 405, what ``/openapi.json`` documents, and ``/metrics`` protection.

The streaming tests run the in-process app under a real uvicorn on a loopback port (so a
chunked body really arrives in pieces) and count, on both sides, how much of a refused
body was sent and read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from support.api import assert_error, bearer
from support.farm import Farm, clear_framefarm_env
from support.polling import wait_for
from support.server import free_port

MiB = 1024**2
JSON_LIMIT = 10 * MiB  # the API's bound on a request body that is not an upload
CHUNK = 64 * 1024


def nested(depth: int) -> str:
    """JSON text nested ``depth`` levels (objects and arrays in turn), made without
    recursion (the client's own encoder would hit the recursion limit)."""
    opens = "".join('{"a": ' if i % 2 == 0 else "[" for i in range(depth))
    closes = "".join("}" if i % 2 == 0 else "]" for i in reversed(range(depth)))
    return f"{opens}1{closes}"


# -- 1. JSON nesting -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [500, 990])
def test_deeply_nested_json_is_refused_with_the_error_shape(farm: Farm, depth: int) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    project = c.post("/v1/projects", json={"name": "p"}, headers=auth).json()["id"]
    deep = nested(depth)
    json_auth = {**auth, "content-type": "application/json"}
    for method, url, body in (
            ("POST", "/v1/renders", f'{{"document": {{"output": {{}}, "scenes": [{deep}]}}}}'),
            ("POST", "/v1/renders", f'{{"template_id": "tpl_x", "data": {{"x": {deep}}}}}'),
            ("PUT", f"/v1/projects/{project}/document", f'{{"scenes": [{deep}]}}'),
            ("POST", "/v1/templates", f'{{"name": "t", "document": {{"scenes": [{deep}]}}}}'),
            ("POST", "/v1/snapshots", f'{{"document": {deep}}}'),
            ("POST", "/v1/webhooks", f'{{"url": {deep}}}'),
            ("POST", "/v1/projects", deep)):
        response = c.request(method, url, content=body, headers=json_auth)
        error = assert_error(response, 422, "too_deep")
        assert "nested" in error["message"], error
    # A node's bodies too (refused before any credential is looked at).
    response = c.post("/internal/nodes/register", content=f'{{"token": {deep}, "name": "n"}}',
                      headers={"content-type": "application/json"})
    assert_error(response, 422, "too_deep")
    assert c.get(f"/v1/projects/{project}", headers=auth).json()["document"] is None


def test_ordinary_nesting_is_accepted(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    document = {"output": {"size": "360p"}, "scenes": [{"duration": 1, "layers": []}],
                "meta": json.loads(nested(30))}
    response = c.put(f"/v1/projects/{project}/document", json=document, headers=bearer(key))
    # Refused (or not) by the document's own rules, never by the nesting bound.
    assert response.status_code != 500
    if response.status_code >= 400:
        assert response.json()["error"]["code"] != "too_deep"


# -- 2. limits while streaming ---------------------------------------------------------------


class Counted:
    """An ASGI wrapper noting how many body bytes the app read, and how many it had read
    when it started its answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0
        self.read_at_answer: int | None = None
        self.status: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.read, self.read_at_answer, self.status = 0, None, None

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
            return message

        async def noting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.read_at_answer, self.status = self.read, message["status"]
            await send(message)

        await self.app(scope, counting_receive, noting_send)


class Live:
    """The farm's app under uvicorn on a loopback port (its lifespan already runs in the
    farm's TestClient)."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.counted = Counted(farm.app)
        self.port = free_port()
        config = uvicorn.Config(self.counted, host="127.0.0.1", port=self.port,
                                lifespan="off", log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Live:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, interval=0.02, what="uvicorn")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Live]]:
    """A SQLite farm with these settings, served by uvicorn on loopback."""
    clear_framefarm_env(monkeypatch)
    opened: list[tuple[Farm, Live]] = []

    def make(**settings: Any) -> Live:
        farm = Farm.open("sqlite", tmp_path / f"farm{len(opened)}",
                         public_url="http://testserver", **settings)
        live = Live(farm).__enter__()
        opened.append((farm, live))
        return live

    try:
        yield make
    finally:
        for farm, live in opened:
            live.__exit__()
            farm.close()


class Stream:
    """A request body from a generator (so httpx sends it chunked, with no
    Content-Length), counting what it yielded."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = pieces
        self.yielded = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            yield piece
            self.yielded += len(piece)


def filled(head: bytes, filler: bytes, total: int, tail: bytes = b"") -> Stream:
    """``head``, ``filler`` until ``total`` bytes, ``tail``."""

    def pieces() -> Iterator[bytes]:
        yield head
        for _ in range(total // len(filler)):
            yield filler
        yield tail

    return Stream(pieces())


def send_chunked(live: Live, method: str, path: str, body: Stream,
                 headers: dict[str, str]) -> tuple[int | None, int]:
    """Send; the status the client got (None: the server closed the connection before the
    client could read its answer) and how many bytes the body had yielded by then."""
    with httpx.Client(base_url=live.url, timeout=60) as client:
        try:
            response = client.request(method, path, content=iter(body), headers=headers)
        except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError):
            return None, body.yielded
        if response.status_code == 413:
            assert_error(response, 413, "too_large")
        return response.status_code, body.yielded


def assert_refused_early(live: Live, got: tuple[int | None, int], limit: int) -> None:
    status, yielded = got
    assert status in (413, None), got
    assert live.counted.status == 413, (live.counted.status, live.counted.read)
    assert live.counted.read_at_answer is not None
    # Within one read of the limit (the server hands the app what it has buffered).
    assert live.counted.read_at_answer <= limit + MiB, live.counted.read_at_answer
    assert live.counted.read < 2 * limit, live.counted.read
    assert yielded < 2 * limit, f"the client sent {yielded} bytes of a refused body"


def test_chunked_json_bodies_are_refused_while_streaming(live_farm: Callable[..., Live]) -> None:
    live = live_farm()
    key = live.farm.tenant("acme")
    headers = {**bearer(key), "content-type": "application/json"}
    project = live.farm.client.post("/v1/projects", json={"name": "p"},
                                    headers=bearer(key)).json()["id"]
    big = 50 * MiB
    got = send_chunked(live, "POST", "/v1/renders",
                       filled(b'{"document": {"x": "', b"a" * CHUNK, big, b'"}}'), headers)
    assert_refused_early(live, got, JSON_LIMIT)
    got = send_chunked(live, "PUT", f"/v1/projects/{project}/document",
                       filled(b'{"x": "', b"a" * CHUNK, big, b'"}'), headers)
    assert_refused_early(live, got, JSON_LIMIT)
    assert live.farm.client.get(f"/v1/projects/{project}",
                                headers=bearer(key)).json()["document"] is None
    # A chunked body within the limit is read as usual.
    small = Stream([b'{"name": ', b'"chunked"}'])
    status, _ = send_chunked(live, "POST", "/v1/projects", small, headers)
    assert status == 201


def multipart(boundary: str, name: str) -> tuple[bytes, bytes]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def test_chunked_asset_uploads_are_refused_while_streaming(
        live_farm: Callable[..., Live]) -> None:
    per_file = 8 * MiB  # well above what socket buffers hold, so "early" is measurable
    live = live_farm(max_upload_bytes=per_file, max_upload_files=3)
    key = live.farm.tenant("acme")
    project = live.farm.client.post("/v1/projects", json={"name": "p"},
                                    headers=bearer(key)).json()["id"]
    url = f"/v1/projects/{project}/assets"
    boundary = "framefarmtestboundary"
    headers = {**bearer(key), "content-type": f"multipart/form-data; boundary={boundary}"}
    work = live.farm.svc.ctx.work_dir

    # One file over the per-file limit: refused once that file's bytes pass it.
    head, tail = multipart(boundary, "huge.bin")
    got = send_chunked(live, "POST", url, filled(head, b"x" * CHUNK, 100 * MiB, tail), headers)
    assert_refused_early(live, got, per_file)

    # Many files, each within the limit, past the request's bound (3 files' worth).
    part, end = multipart(boundary, "f.bin")
    body = b"".join(part + b"y" * (per_file - CHUNK) + b"\r\n" for _ in range(5)) + end
    many = Stream(body[i:i + CHUNK] for i in range(0, len(body), CHUNK))
    got = send_chunked(live, "POST", url, many, headers)
    request_bound = 3 * per_file + MiB
    assert_refused_early(live, got, request_bound)

    # Nothing was stored, and a chunked upload within the limits is stored.
    assert live.farm.client.get(url, headers=bearer(key)).json() == []
    head, tail = multipart(boundary, "ok.bin")
    status, _ = send_chunked(live, "POST", url, Stream([head, b"z" * 1000, tail]), headers)
    assert status == 201
    assert [a["name"] for a in live.farm.client.get(url, headers=bearer(key)).json()] == [
        "ok.bin"]
    assert not work.exists() or not [p for p in work.rglob("*") if p.is_file()]


# -- 3. 405 ------------------------------------------------------------------------------------


def test_method_not_allowed_names_the_allowed_methods(farm: Farm) -> None:
    key = farm.tenant("acme")
    response = farm.client.patch("/v1/renders", headers=bearer(key))
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {
        "GET", "POST"}
    response = farm.client.put("/v1/exports/exp_1/file", headers=bearer(key))
    assert_error(response, 405)
    assert "GET" in response.headers["allow"]


# -- 4. the OpenAPI description ------------------------------------------------------------


def test_openapi_documents_errors_security_and_the_websocket(farm: Farm) -> None:
    spec = farm.client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http"}
    assert {s["scheme"] for s in schemes.values()} == {"bearer"}
    assert len(schemes) == 2
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]

    def ref(response: dict[str, Any]) -> str:
        return str(response["content"]["application/json"]["schema"]["$ref"])

    paths = spec["paths"]
    submit = paths["/v1/renders"]["post"]
    for code in ("400", "401", "413", "422", "429"):
        assert ref(submit["responses"][code]).endswith("/ErrorBody"), code
    assert submit["security"] and list(submit["security"][0]) != []
    tenant_scheme = next(iter(submit["security"][0]))
    claim = paths["/internal/tasks/claim"]["post"]
    node_scheme = next(iter(claim["security"][0]))
    assert {tenant_scheme, node_scheme} == set(schemes)
    for code in ("401", "409"):
        assert ref(claim["responses"][code]).endswith("/ErrorBody"), code
    admin = paths["/v1/admin/nodes"]["get"]
    assert ref(admin["responses"]["403"]).endswith("/ErrorBody")
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            assert "422" not in operation["responses"] or ref(
                operation["responses"]["422"]).endswith("/ErrorBody"), (path, method)
    ws = paths["/v1/renders/{job_id}/ws"]
    assert "websocket" in str(ws).lower()
    assert "token" in str(ws)


# -- 6. /metrics ---------------------------------------------------------------------------


def test_metrics_are_open_without_a_token(farm: Farm) -> None:
    response = farm.client.get("/metrics")
    assert response.status_code == 200 and "framefarm_queue_tasks" in response.text


def test_metrics_need_the_token_when_one_is_set(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm(metrics_token="scrape-me")
    c = farm.client
    assert_error(c.get("/metrics"), 401, "unauthorized")
    assert_error(c.get("/metrics", headers=bearer("wrong")), 401, "unauthorized")
    # A tenant's API key (even an admin's) is not the metrics token.
    assert_error(c.get("/metrics", headers=farm.admin), 401, "unauthorized")
    response = c.get("/metrics", headers=bearer("scrape-me"))
    assert response.status_code == 200 and "framefarm_nodes" in response.text
