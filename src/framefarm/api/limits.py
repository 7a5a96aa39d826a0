"""Request body limits, enforced while the body arrives (a pure ASGI middleware).

Every limit is counted on the bytes as they come in, so a chunked body (no
``Content-Length``) is bounded exactly like one that declares its length; a declared
length over the limit is refused before anything is read. The rules:

- **An asset upload** (``POST /v1/projects/{id}/assets``, multipart): each part (each
  file) at most ``max_upload_bytes``, counted per part while the multipart body streams;
  the whole body at most ``max_upload_bytes * max_upload_files`` plus 1 MiB for the form
  fields and the multipart framing.
- **A node's output** (``PUT /internal/tasks/{id}/output``): at most
  ``protocol.MAX_OUTPUT_BYTES``.
- **A batch's CSV upload** (``POST /v1/templates/{id}/batches``, ``text/csv``): at most
  ``max_batch_bytes``, streamed to the route.
- **Every other request**: at most ``JSON_BYTES`` (10 MiB), read here in full before the
  app sees it; a JSON body (``application/json``, ``application/*+json``, or no content
  type) nested deeper than ``JSON_DEPTH`` is refused with 422 ``too_deep`` before anything
  parses it.

A refused body is answered 413 ``too_large`` (with ``Connection: close``, so the server
stops reading it) as soon as it passes its limit, in the one error shape.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framefarm import protocol
from framefarm.api import errors

log = logging.getLogger("framefarm.api")

JSON_BYTES = 10 * 1024**2  # a request that is not an upload
JSON_DEPTH = 64  # arrays and objects inside each other
FORM_OVERHEAD = 1024**2  # an upload's form fields and multipart framing

_ASSETS = re.compile(r"^/v1/projects/[^/]+/(assets|archive)/?$")
_OUTPUT = re.compile(r"^/internal/tasks/[^/]+/output/?$")
_BATCHES = re.compile(r"^/v1/templates/[^/]+/batches/?$")
# A JSON string (skipped: brackets inside it do not count) or a bracket.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPENING = frozenset(b"[{")


def too_deep(body: bytes, limit: int = JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than ``limit``, found by
    scanning the bytes (no parsing, no recursion). Text that is not JSON may be judged
    either way; the parser refuses it next."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(body):
        first = body[match.start()]
        if first == 0x22:  # a string
            continue
        if first in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _answer(send: Send, status: int, code: str, message: str,
                  details: object = None) -> None:
    payload = json.dumps(errors.body(code, message, details)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


async def _too_large(send: Send, limit: int, what: str = "request body") -> None:
    await _answer(send, 413, "too_large", f"{what} over {limit} bytes", {"limit": limit})


class _PartSizes:
    """Feeds a multipart body through an incremental parser and says when one part (file)
    has passed ``limit`` bytes. A body that does not parse is left to the app."""

    def __init__(self, content_type: str, limit: int) -> None:
        self.limit, self.size, self.over = limit, 0, False
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        self.parser: MultipartParser | None = None
        if boundary:
            self.parser = MultipartParser(boundary, {"on_part_begin": self._begin,
                                                     "on_part_data": self._data})

    def _begin(self) -> None:
        self.size = 0

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        if self.size > self.limit:
            self.over = True

    def feed(self, chunk: bytes) -> bool:
        """Whether a part is over the limit after ``chunk``."""
        if self.parser is not None and chunk:
            try:
                self.parser.write(chunk)
            except Exception:  # malformed: the app's own parser answers it
                self.parser = None
        return self.over


@dataclass(frozen=True)
class _Streamed:
    limit: int
    part_limit: int | None = None  # multipart: per part


class BodyLimit:
    """The ASGI middleware: see the module's docstring for the rules."""

    def __init__(self, app: ASGIApp, *, max_upload_bytes: int, max_upload_files: int,
                 json_bytes: int = JSON_BYTES, json_depth: int = JSON_DEPTH,
                 max_batch_bytes: int = JSON_BYTES) -> None:
        self.app = app
        self.upload = _Streamed(max_upload_bytes * max_upload_files + FORM_OVERHEAD,
                                max_upload_bytes)
        self.output = _Streamed(protocol.MAX_OUTPUT_BYTES)
        self.batch_csv = _Streamed(max_batch_bytes)
        self.json_bytes, self.json_depth = json_bytes, json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        content_type = _header(scope, b"content-type")
        if method == "POST" and _ASSETS.match(path) and content_type and \
                content_type.lower().startswith("multipart/"):
            rule: _Streamed | None = self.upload
        elif method == "PUT" and _OUTPUT.match(path):
            rule = self.output
        elif method == "POST" and _BATCHES.match(path) and content_type and \
                content_type.split(";")[0].strip().lower() == "text/csv":
            rule = self.batch_csv
        else:
            rule = None
        limit = rule.limit if rule else self.json_bytes
        length = _header(scope, b"content-length")
        if length and length.strip().isdigit() and int(length) > limit:
            await _too_large(send, limit)
            return
        if rule is None:
            await self._buffered(scope, receive, send, content_type)
        else:
            await self._streamed(scope, receive, send, rule, content_type)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send,
                        content_type: str | None) -> None:
        """Read the whole body (up to the limit), check its nesting, then hand it on."""
        chunks: list[bytes] = []
        size = 0
        ended: Message | None = None  # a disconnect that came instead of the body's end
        while True:
            message = await receive()
            if message["type"] != "http.request":
                ended = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.json_bytes:
                await _too_large(send, self.json_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if ended is None and body and _is_json(content_type) and \
                too_deep(body, self.json_depth):
            await _answer(send, 422, "too_deep",
                          f"JSON nested deeper than {self.json_depth} levels",
                          {"max_depth": self.json_depth})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if ended is None:
                    return {"type": "http.request", "body": body, "more_body": False}
                if body:
                    return {"type": "http.request", "body": body, "more_body": True}
                return ended
            if ended is not None and body:
                return ended
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, rule: _Streamed,
                        content_type: str | None) -> None:
        """Hand the body on as it arrives, counting; past a limit the app is told the
        client went away, whatever it answers is dropped, and the answer is 413."""
        size = 0
        parts = (_PartSizes(content_type, rule.part_limit)
                 if rule.part_limit is not None and content_type else None)
        refused: tuple[int, str] | None = None
        started = False

        async def counted() -> Message:
            nonlocal size, refused
            if refused is not None:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > rule.limit:
                    refused = (rule.limit, "request body")
                elif parts is not None and parts.feed(chunk):
                    refused = (parts.limit, "an uploaded file")
                if refused is not None:
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused is not None and not started:
                return  # the app's answer to a body it did not get in full
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if refused is None or started:
                raise
            log.debug("request refused while streaming; the app stopped with", exc_info=True)
        if refused is not None and not started:
            await _too_large(send, *refused)
