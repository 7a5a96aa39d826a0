"""Batches (one template, many rows of data: a job per row), and the engine each job and
task needs (``framefarm`` for JSON documents, ``remotion`` for code templates). Jobs get
an index on their project, which lists and project deletes read by.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from framefarm.db import schema

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(32),
                  sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("template_id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("options", schema.Json, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("rows_total", sa.Integer, nullable=False),
        sa.Column("skipped", schema.Json, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("notify_url", sa.String(2000), nullable=True),
        sa.Column("created_at", schema.Time, nullable=False),
        sa.Column("cancelled_at", schema.Time, nullable=True),
        sa.Column("finished_at", schema.Time, nullable=True),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_batches_idempotency"),
    )
    op.create_index("ix_batches_tenant_id", "batches", ["tenant_id"])
    # Plain ADD COLUMN (a default makes NOT NULL legal on SQLite too): no table rebuild.
    op.add_column("jobs", sa.Column("engine", sa.String(16), nullable=False,
                                    server_default="framefarm"))
    op.add_column("jobs", sa.Column("batch_id", sa.String(32), nullable=True))
    op.add_column("jobs", sa.Column("batch_row", sa.Integer, nullable=True))
    op.create_index("ix_jobs_batch", "jobs", ["batch_id", "batch_row"])
    op.create_index("ix_jobs_project_id", "jobs", ["project_id"])
    op.add_column("tasks", sa.Column("engine", sa.String(16), nullable=False,
                                     server_default="framefarm"))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as tasks:
        tasks.drop_column("engine")
    op.drop_index("ix_jobs_project_id", "jobs")
    op.drop_index("ix_jobs_batch", "jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("batch_row")
        jobs.drop_column("batch_id")
        jobs.drop_column("engine")
    op.drop_index("ix_batches_tenant_id", "batches")
    op.drop_table("batches")
