"""Usage, plans and credits: a plan and a credit balance per tenant, the ledger of every
change of a balance, and one usage row per job (estimate, reservation, frames rendered,
node CPU-seconds by step, bytes stored, credits charged and refunded).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from framefarm.db import schema

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CPU_STEPS = ("render", "audio", "assemble", "snapshot")


def upgrade() -> None:
    # Plain ADD COLUMN, both nullable: no table rebuild on SQLite.
    op.add_column("tenants", sa.Column("plan", schema.Json, nullable=True))
    op.add_column("tenants", sa.Column("credit_balance", sa.BigInteger, nullable=True))
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(32),
                  sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", schema.Time, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("batch_id", sa.String(32), nullable=True),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_ledger_tenant", "ledger", ["tenant_id", "id"])
    op.create_table(
        "job_usage",
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("fps", sa.Integer, nullable=False),
        sa.Column("frames_estimated", sa.Integer, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("output_seconds", sa.Float, nullable=False),
        *(sa.Column(f"cpu_{step}", sa.Float, nullable=False) for step in _CPU_STEPS),
        sa.Column("bytes_stored", sa.BigInteger, nullable=False),
        sa.Column("credits_per_second", sa.Float, nullable=False),
        sa.Column("credits_reserved", sa.BigInteger, nullable=False),
        sa.Column("credits_charged", sa.BigInteger, nullable=False),
        sa.Column("credits_refunded", sa.BigInteger, nullable=False),
        sa.Column("settled_at", schema.Time, nullable=True),
    )
    op.create_index("ix_job_usage_tenant_day", "job_usage", ["tenant_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_job_usage_tenant_day", "job_usage")
    op.drop_table("job_usage")
    op.drop_index("ix_ledger_tenant", "ledger")
    op.drop_table("ledger")
    with op.batch_alter_table("tenants") as tenants:
        tenants.drop_column("credit_balance")
        tenants.drop_column("plan")
