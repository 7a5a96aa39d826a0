"""The claim finds each tenant's next task through an index, instead of sorting every
queued task: (tenant, state, priority descending, job age, chunk index). The old claim
index goes: nothing else reads it, and every task update paid for it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_tenant_claim", "tasks",
                    ["tenant_id", "state", sa.text("priority DESC"), "job_created_at", "idx"])
    op.drop_index("ix_tasks_claim", "tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_claim", "tasks", ["state", "priority", "job_created_at", "idx"])
    op.drop_index("ix_tasks_tenant_claim", "tasks")
