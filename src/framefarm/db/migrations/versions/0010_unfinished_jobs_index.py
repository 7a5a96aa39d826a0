"""The index a submit counts the tenant's unfinished jobs by, covering: (tenant_id, state,
batch_id) in place of (tenant_id, state), so the count under the tenant's lock reads the
index alone (at 6,000 queued jobs 2.5x faster on SQLite, 5x on PostgreSQL, on a busy
machine). Queries by (tenant_id, state) use its prefix as they used the old index.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_tenant_state_batch", "jobs", ["tenant_id", "state", "batch_id"])
    op.drop_index("ix_jobs_tenant_state", "jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_tenant_state", "jobs", ["tenant_id", "state"])
    op.drop_index("ix_jobs_tenant_state_batch", "jobs")
