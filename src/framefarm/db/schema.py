"""The service's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Alembic migrations in ``db/migrations`` create exactly this; a test compares them.
Times are timezone-aware UTC, always taken from the injected clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on both databases (SQLite stores them naive, as UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = sa.MetaData()
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = UtcDateTime()

tenants = sa.Table(
    "tenants", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("max_concurrent_jobs", sa.Integer, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("webhook_secret", sa.String(64), nullable=True),  # signs notify_url calls
    # The tenant's plan (limits and pricing, application/usage.py:Plan); None: no plan.
    sa.Column("plan", Json, nullable=True),
    # Credits left; None: renders are not metered in credits. Always the sum of its ledger.
    sa.Column("credit_balance", sa.BigInteger, nullable=True),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("revoked_at", Time, nullable=True),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("document", Json, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

assets = sa.Table(
    "assets", metadata,
    sa.Column("project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

templates = sa.Table(
    "templates", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="SET NULL"),
              nullable=True),
    sa.Column("document", Json, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

batches = sa.Table(
    "batches", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("template_id", sa.String(32), nullable=False),
    sa.Column("project_id", sa.String(32), nullable=True),
    sa.Column("mode", sa.String(16), nullable=False),  # skip | refuse: what bad rows do
    sa.Column("options", Json, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("rows_total", sa.Integer, nullable=False),  # every row given, good or bad
    sa.Column("skipped", Json, nullable=False),  # [{row, field, message}] of the bad rows
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("notify_url", sa.String(2000), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("cancelled_at", Time, nullable=True),
    sa.Column("finished_at", Time, nullable=True),  # when its last row job finished
    sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_batches_idempotency"),
)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # render | snapshot
    # What renders it: "framefarm" (JSON documents) or a code-template engine (remotion).
    sa.Column("engine", sa.String(16), nullable=False, default="framefarm",
              server_default="framefarm"),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("project_id", sa.String(32), nullable=True, index=True),
    sa.Column("batch_id", sa.String(32), nullable=True),  # one row of a batch, or None
    sa.Column("batch_row", sa.Integer, nullable=True),  # its row number (1 = first data row)
    sa.Column("document", Json, nullable=False),  # template already filled
    sa.Column("options", Json, nullable=False),
    sa.Column("assets", Json, nullable=False),  # name -> sha256 of every input file
    sa.Column("limits", Json, nullable=True),  # the Limits it was validated with
    sa.Column("frames_total", sa.Integer, nullable=False),
    sa.Column("fps", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("retry_of", sa.String(32), nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("notify_url", sa.String(2000), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("failed_step", sa.String(16), nullable=True),
    sa.Column("preview_key", sa.String(300), nullable=True),
    sa.Column("result_key", sa.String(300), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("started_at", Time, nullable=True),
    sa.Column("finished_at", Time, nullable=True),
    sa.Column("updated_at", Time, nullable=False),
    sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_idempotency"),
    # Covers a submit's count of the tenant's unfinished jobs (repos/jobs.py), read from
    # the index alone: it runs under the tenant's lock.
    sa.Index("ix_jobs_tenant_state_batch", "tenant_id", "state", "batch_id"),
    sa.Index("ix_jobs_batch", "batch_id", "batch_row"),
)

tasks = sa.Table(
    "tasks", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("tenant_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # render | audio | assemble | snapshot
    sa.Column("engine", sa.String(16), nullable=False, default="framefarm",
              server_default="framefarm"),  # its job's: only nodes that have it claim it
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("frame_start", sa.Integer, nullable=False),
    sa.Column("frame_end", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("job_created_at", Time, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("requeues", sa.Integer, nullable=False, default=0),
    sa.Column("not_before", Time, nullable=False),
    sa.Column("node_id", sa.String(32), nullable=True),
    sa.Column("last_failed_node", sa.String(32), nullable=True),
    sa.Column("lease_token", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", Time, nullable=True),
    sa.Column("frames_done", sa.Integer, nullable=False, default=0),
    sa.Column("output_key", sa.String(300), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", Time, nullable=True),
    sa.Column("finished_at", Time, nullable=True),
    # A batch's frames shared by every row: the part's content key (batch/shared.py).
    sa.Column("shared_key", sa.String(64), nullable=True),
    # Running tasks are found by lease expiry.
    sa.Index("ix_tasks_lease", "state", "lease_expires_at"),
    sa.Index("ix_tasks_shared", "tenant_id", "shared_key", "state"),
)
# The claim takes each tenant's next queued task in this order (repos/claims.py).
sa.Index("ix_tasks_tenant_claim", tasks.c.tenant_id, tasks.c.state, tasks.c.priority.desc(),
         tasks.c.job_created_at, tasks.c.idx)

node_blocks = sa.Table(
    "node_blocks", metadata,
    sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("node_id", sa.String(32), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("blocked", sa.Boolean, nullable=False, default=False),
)

nodes = sa.Table(
    "nodes", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("capabilities", Json, nullable=False),
    sa.Column("draining", sa.Boolean, nullable=False, default=False),
    sa.Column("last_heartbeat", Time, nullable=True),
    sa.Column("current_task_id", sa.String(32), nullable=True),
    sa.Column("tasks_done", sa.Integer, nullable=False, default=0),
    sa.Column("tasks_failed", sa.Integer, nullable=False, default=0),
    sa.Column("crashes", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Time, nullable=False),
)

job_logs = sa.Table(
    "job_logs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("at", Time, nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("task_id", sa.String(32), nullable=True),
    sa.Column("node_id", sa.String(32), nullable=True),
)

exports = sa.Table(
    "exports", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("job_id", sa.String(32), nullable=False, unique=True),
    sa.Column("storage_key", sa.String(300), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("codec", sa.String(32), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False, index=True),
)

webhooks = sa.Table(
    "webhooks", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(64), nullable=False),
    sa.Column("events", Json, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("job_id", sa.String(32), nullable=False, index=True),
    sa.Column("webhook_id", sa.String(32), nullable=True),  # None: the job's notify_url
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", Time, nullable=False),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("delivered_at", Time, nullable=True),
    sa.UniqueConstraint("job_id", "url", "event", name="uq_delivery_once"),
    sa.Index("ix_deliveries_due", "state", "next_attempt_at"),
)

node_samples = sa.Table(
    "node_samples", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node_id", sa.String(32), nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("load", sa.Float, nullable=True),  # 1-minute load average
    sa.Column("memory_used", sa.BigInteger, nullable=True),  # bytes in use on the machine
    sa.Column("task_id", sa.String(32), nullable=True),
    sa.Column("frames_done", sa.Integer, nullable=True),
    sa.Index("ix_node_samples_node_at", "node_id", "at"),
)

node_crashes = sa.Table(
    "node_crashes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node_id", sa.String(32), nullable=False, index=True),
    sa.Column("at", Time, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # failure | lease_expired
    sa.Column("task_id", sa.String(32), nullable=True),
    sa.Column("job_id", sa.String(32), nullable=True),
    sa.Column("error", sa.Text, nullable=True),  # the tail of the error
)

ledger = sa.Table(
    "ledger", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # signed: + to the balance, - from it
    sa.Column("kind", sa.String(16), nullable=False),  # grant|reserve|settle|refund|adjust
    sa.Column("job_id", sa.String(32), nullable=True),
    sa.Column("batch_id", sa.String(32), nullable=True),
    sa.Column("balance_after", sa.BigInteger, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index("ix_ledger_tenant", "tenant_id", "id"),
)

# One row per job, written with the job: what it was estimated at, reserved, rendered,
# used and charged. Daily usage is a GROUP BY over (tenant_id, day), read by its index.
job_usage = sa.Table(
    "job_usage", metadata,
    sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("tenant_id", sa.String(32), nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the UTC day the job was submitted
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("fps", sa.Integer, nullable=False),
    sa.Column("frames_estimated", sa.Integer, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False),  # rendered and billed, set at the end
    sa.Column("output_seconds", sa.Float, nullable=False),  # frames / fps
    sa.Column("cpu_render", sa.Float, nullable=False),  # node CPU-seconds by step
    sa.Column("cpu_audio", sa.Float, nullable=False),
    sa.Column("cpu_assemble", sa.Float, nullable=False),
    sa.Column("cpu_snapshot", sa.Float, nullable=False),
    sa.Column("bytes_stored", sa.BigInteger, nullable=False),  # the export's size
    sa.Column("credits_per_second", sa.Float, nullable=False),  # the rate it was priced at
    sa.Column("credits_reserved", sa.BigInteger, nullable=False),
    sa.Column("credits_charged", sa.BigInteger, nullable=False),
    sa.Column("credits_refunded", sa.BigInteger, nullable=False),
    sa.Column("settled_at", Time, nullable=True),  # None while the job is unfinished
    sa.Index("ix_job_usage_tenant_day", "tenant_id", "day"),
)
