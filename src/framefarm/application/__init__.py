"""The application layer: every use case of the service, orchestrated in one place.

Routes (``framefarm.api``) parse, authorise and call one method here; nothing here
imports FastAPI. Its :mod:`~framefarm.application.queue` makes every job and task
transition; below it: the state machine (``framefarm.queue``), the repositories
(``framefarm.repos``), storage and the engine.

- :class:`~framefarm.application.accounts.Accounts` — tenants and API keys
- :class:`~framefarm.application.projects.Projects` — projects, assets, templates
- :class:`~framefarm.application.renders.Renders` — submit, snapshots, progress, cancel
- :class:`~framefarm.application.batches.Batches` — one template, many rows of data
- :class:`~framefarm.application.farm.Farm` — the node protocol and the admin's nodes
- :class:`~framefarm.application.exports.Exports` — exports and signed links
- :class:`~framefarm.application.webhooks.Webhooks` — subscriptions and the outbox sender
- :class:`~framefarm.application.usage.Usage` — usage, plans, credits and the ledger
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framefarm.application import views
from framefarm.application.accounts import Accounts
from framefarm.application.batches import Batches
from framefarm.application.context import Context
from framefarm.application.exports import Exports
from framefarm.application.farm import Farm
from framefarm.application.metrics import Counters
from framefarm.application.projects import Projects
from framefarm.application.queue import Queue, QueueSettings
from framefarm.application.renders import Renders
from framefarm.application.usage import Usage
from framefarm.application.webhooks import Webhooks
from framefarm.clock import Clock
from framefarm.db import migrate
from framefarm.db.database import Subscriber, open_database
from framefarm.settings import Settings
from framefarm.storage.local import LocalStorage, Storage
from framefarm.storage.s3 import S3Storage

log = logging.getLogger("framefarm.api")


def stored_secret(settings_value: str | None, path: Path) -> str:
    """A secret from the settings, else one generated once and kept in the data dir."""
    if settings_value:
        return settings_value
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def queue_settings(settings: Settings) -> QueueSettings:
    return QueueSettings(
        lease_seconds=settings.lease_seconds, max_attempts=settings.max_attempts,
        retry_backoff_seconds=settings.retry_backoff_seconds,
        node_block_failures=settings.node_block_failures,
        max_concurrent_jobs=settings.max_concurrent_jobs,
        node_offline_seconds=max(30.0, settings.heartbeat_seconds * 6))


def build_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        return S3Storage(
            settings.s3_bucket, cache_dir=settings.data_dir.resolve() / "s3-cache",
            endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key, prefix=settings.s3_prefix,
            public_endpoint_url=settings.s3_public_endpoint_url,
            part_size=settings.s3_part_mb * 1024**2,
            create_bucket=True)
    return LocalStorage(settings.storage_dir)


@dataclasses.dataclass
class Application:
    ctx: Context
    accounts: Accounts
    projects: Projects
    renders: Renders
    farm: Farm
    exports: Exports
    webhooks: Webhooks
    batches: Batches
    usage: Usage

    @classmethod
    def build(cls, ctx: Context) -> Application:
        projects = Projects(ctx)
        renders, exports = Renders(ctx, projects), Exports(ctx)
        return cls(ctx, Accounts(ctx.db), projects, renders, Farm(ctx), exports,
                   Webhooks(ctx), Batches(ctx, projects, renders, exports), Usage(ctx.db))

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def counters(self) -> Counters:
        return self.ctx.counters

    def webhook_payload(self, job_id: str) -> dict[str, Any]:
        """The body of a webhook call, built when it is sent so its link is fresh."""
        job = views.job(self.renders.get(None, job_id), self.settings.public_url)
        payload: dict[str, Any] = {"job": job}
        if job["export"]:
            url, expires = self.exports.signed_url(job["export"]["id"])
            payload.update(download_url=url, download_expires_at=expires)
        return payload

    def upkeep(self, *, sweep: bool) -> None:
        """One round of the server's housekeeping: requeue tasks whose lease expired, fail
        the jobs no live node may take any more (every one is blocked from them), send
        the webhooks that are due, and (when ``sweep``) delete expired exports."""
        self.counters.requeued.inc(self.ctx.queue.requeue_expired())
        stranded = self.ctx.queue.fail_stranded()
        if stranded:
            log.warning("failed %d job(s) that no live render node may take", stranded)
        self.webhooks.deliver_due(self.webhook_payload)
        if sweep:
            self.exports.sweep()
        self.exports.sweeper.start_if_due()  # unreferenced storage objects, in the background

    def on_job_change(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` (on a background thread) with the id of each job whose
        state or progress changes, or None when changes may have been missed; returns
        the function that stops it. Live events wait on this instead of polling."""
        return self.ctx.db.subscribe(subscriber)

    def readiness(self) -> dict[str, str]:
        """What ``/readyz`` reports: the database answers and is at the newest schema
        (``framefarm migrate`` has run), and storage takes writes. "ok" or why not."""
        def migrated() -> None:
            with self.ctx.db.read() as conn:
                found = migrate.current_revision(conn)
            if found != self._schema_head:
                raise LookupError(f"at revision {found}, needs {self._schema_head}: run "
                                  "framefarm migrate")

        checks: dict[str, str] = {}
        for name, check in (("database", self.ctx.db.ping), ("migrations", migrated),
                            ("storage", self.ctx.storage.check_writable)):
            try:
                check()
                checks[name] = "ok"
            except LookupError as exc:
                checks[name] = f"failing: {exc}"
            except Exception as exc:  # the class only: details may name hosts or paths
                checks[name] = f"failing: {type(exc).__name__}"
        return checks

    @functools.cached_property
    def _schema_head(self) -> str:
        return migrate.head()

    def close(self) -> None:
        """Stop sending, let the background work in flight finish (each holds a database
        connection: closed under it, the connection would be left to the garbage
        collector), then close the database."""
        self.webhooks.close()
        self.webhooks.wait_idle(10)
        self.exports.sweeper.wait(10)
        self.ctx.db.close()


def build(settings: Settings, clock: Clock | None = None) -> Application:
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.db_url, clock)
    ctx = Context(
        settings=settings, db=db, queue=Queue(db, queue_settings(settings)),
        storage=build_storage(settings),
        secret_key=stored_secret(settings.secret_key, data / "secret.key").encode(),
        enrolment_token=stored_secret(settings.enrolment_token, data / "enrolment.token"),
        counters=Counters())
    return Application.build(ctx)
