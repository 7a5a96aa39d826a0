"""Frames shared by a batch's rows: a render task may name the shared part it makes (the
first row's) or waits for (every other row's), by the part's content key.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("shared_key", sa.String(64), nullable=True))
    op.create_index("ix_tasks_shared", "tasks", ["tenant_id", "shared_key", "state"])


def downgrade() -> None:
    op.drop_index("ix_tasks_shared", "tasks")
    op.drop_column("tasks", "shared_key")
