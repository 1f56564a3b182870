"""Voicemail, retries by outcome, reserved capacity (issue 13, items 3–5).

* ``batches.retry_delays``: the batch's own delays per retryable outcome,
  ``{"busy": [300, 1800], "voicemail": [3600]}``; an outcome not listed uses
  the server's default (``{}`` = every default).
* ``batches.voicemail_action``: ``retry_later`` (default) or ``done``.
* ``organizations.reserved_concurrency``: slots kept free of batch calls;
  the organization limit in Redis is ``concurrency_limit - reserved``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("retry_delays", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")))
    op.add_column("batches", sa.Column("voicemail_action", sa.String(12), nullable=False, server_default="retry_later"))
    op.create_check_constraint("voicemail_action", "batches", "voicemail_action in ('retry_later','done')")
    op.add_column("organizations", sa.Column("reserved_concurrency", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint(
        "reserved_concurrency", "organizations",
        "reserved_concurrency >= 0 and reserved_concurrency < concurrency_limit",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_organizations_reserved_concurrency"), "organizations", type_="check")
    op.drop_column("organizations", "reserved_concurrency")
    op.drop_constraint(op.f("ck_batches_voicemail_action"), "batches", type_="check")
    op.drop_column("batches", "voicemail_action")
    op.drop_column("batches", "retry_delays")
