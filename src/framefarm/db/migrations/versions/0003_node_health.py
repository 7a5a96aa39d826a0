"""Node health: heartbeat samples (load, memory, current frame) and crash reports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from framefarm.db import schema

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = schema.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "node_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(32), nullable=False),
        sa.Column("at", Time(), nullable=False),
        sa.Column("load", sa.Float, nullable=True),
        sa.Column("memory_used", sa.BigInteger, nullable=True),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("frames_done", sa.Integer, nullable=True),
    )
    op.create_index("ix_node_samples_node_at", "node_samples", ["node_id", "at"])
    op.create_table(
        "node_crashes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(32), nullable=False),
        sa.Column("at", Time(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_node_crashes_node_id", "node_crashes", ["node_id"])


def downgrade() -> None:
    op.drop_table("node_crashes")
    op.drop_table("node_samples")
