"""Per-organization Redis epoch (issue 15, item 3: failover without loss).

``organizations.redis_epoch``: bumped by the reconciler each time it rebuilds
the organization's Redis state (queues and leases) from Postgres; the
rebuild writes ``bc:{org}:marker = "<epoch>:<replication id>"`` last, and
claims on a Redis Cluster need that marker (docs/recovery.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column("redis_epoch", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("organizations", "redis_epoch")
