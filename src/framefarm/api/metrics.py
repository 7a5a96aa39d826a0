"""Prometheus metrics at ``/metrics``.

Counters count what this API process saw (claims, completions, failures, requeues, frames,
render seconds: ``application/metrics.py``); gauges (queue depth by state, nodes by
status) are read from the database at scrape time, so they are right whichever API
process answers.

They show every tenant's queue: with ``metrics_token`` set (``FRAMEFARM_METRICS_TOKEN``)
a scrape needs ``Authorization: Bearer <token>``; unset, ``/metrics`` is open and must be
kept off public networks (docs/deployment.md).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framefarm.api.errors import ApiError
from framefarm.application import Application
from framefarm.queue.states import TaskState


class _QueueCollector(Collector):
    def __init__(self, app: Application) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("framefarm_queue_tasks", "Tasks by state", labels=["state"])
        counts = self.app.farm.queue_overview()
        for state in TaskState:
            depth.add_metric([state.value], counts.get(state.value, 0))
        yield depth
        nodes = GaugeMetricFamily("framefarm_nodes", "Render nodes by status",
                                  labels=["status"])
        statuses = [self.app.farm.status(n) for n in self.app.farm.nodes()]
        for status in ("online", "busy", "draining", "offline"):
            nodes.add_metric([status], statuses.count(status))
        yield nodes


class _Observe:
    """Times every HTTP request by route and status. Plain ASGI: a BaseHTTPMiddleware
    would run every request through an extra task and stream, for each one of them."""

    def __init__(self, inner: ASGIApp, app: Application) -> None:
        self.inner = inner
        self.http = app.counters.http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before it answers

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, sent)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.http.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - started)


def install(api: FastAPI, app: Application) -> None:
    counters = app.counters
    counters.registry.register(_QueueCollector(app))

    api.add_middleware(_Observe, app=app)

    token = app.settings.metrics_token or None  # empty: unset

    @api.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.strip().encode(), token.encode()):
                raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <metrics "
                               "token>'")
        body = await run_in_threadpool(generate_latest, counters.registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
