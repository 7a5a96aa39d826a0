"""Jobs keep the document limits they were validated with, so every node applies the
same ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from framefarm.db import schema

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("limits", schema.Json, nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "limits")
