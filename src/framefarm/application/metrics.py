"""What this API process counts (Prometheus counters). The application layer updates them
as things happen; ``api/metrics.py`` serves them with the gauges read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Counters:
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
