"""Prometheus metrics at ``/metrics``.

Counters count what this API process saw (claims, completions, failures, requeues, frames,
render seconds); gauges (queue depth by state, nodes by status) are read from the database
at scrape time, so they are right whichever API process answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from framefarm.api.service import Service
from framefarm.queue.states import TaskState


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.claimed = Counter("framefarm_tasks_claimed", "Tasks handed to nodes", ["kind"],
                               registry=r)
        self.completed = Counter("framefarm_tasks_completed", "Tasks finished by nodes",
                                 ["kind"], registry=r)
        self.failed = Counter("framefarm_tasks_failed", "Task failures reported by nodes",
                              ["kind"], registry=r)
        self.requeued = Counter("framefarm_tasks_requeued", "Tasks requeued after their lease "
                                "expired", registry=r)
        self.frames = Counter("framefarm_frames_rendered", "Frames rendered by finished "
                              "chunks", registry=r)
        self.render_seconds = Histogram(
            "framefarm_task_seconds", "Wall time of finished tasks", ["kind"], registry=r,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
        self.http = Histogram(
            "framefarm_http_request_seconds", "HTTP request latency", ["method", "route",
                                                                       "status"],
            registry=r, buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))


class _StoreCollector(Collector):
    def __init__(self, svc: Service) -> None:
        self.svc = svc

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("framefarm_queue_tasks", "Tasks by state", labels=["state"])
        counts = self.svc.store.queue_overview()
        for state in TaskState:
            depth.add_metric([state.value], counts.get(state.value, 0))
        yield depth
        nodes = GaugeMetricFamily("framefarm_nodes", "Render nodes by status",
                                  labels=["status"])
        statuses = [self.svc.store.node_status(n) for n in self.svc.store.list_nodes()]
        for status in ("online", "busy", "draining", "offline"):
            nodes.add_metric([status], statuses.count(status))
        yield nodes


def install(app: FastAPI, svc: Service) -> Metrics:
    metrics = Metrics()
    metrics.registry.register(_StoreCollector(svc))

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.http.labels(request.method, path, str(response.status_code)).observe(
            time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        body = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return metrics
