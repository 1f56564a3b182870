"""Calls-per-second pacing (issue 13).

* ``phone_numbers.calls_per_second``: the outbound trunk's CPS, default 1.0
  (the common default of SIP trunks and API carriers; docs/pacing.md).
* ``organizations.calls_per_second``: an organization-wide CPS cap on top of
  each trunk's, 0 = none.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("phone_numbers", sa.Column("calls_per_second", sa.Float(), nullable=False, server_default="1.0"))
    op.create_check_constraint("calls_per_second", "phone_numbers",
                               "calls_per_second >= 0.1 and calls_per_second <= 1000")
    op.add_column("organizations", sa.Column("calls_per_second", sa.Float(), nullable=False, server_default="0"))
    op.create_check_constraint("calls_per_second", "organizations",
                               "calls_per_second >= 0 and calls_per_second <= 10000")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_organizations_calls_per_second"), "organizations", type_="check")
    op.drop_column("organizations", "calls_per_second")
    op.drop_constraint(op.f("ck_phone_numbers_calls_per_second"), "phone_numbers", type_="check")
    op.drop_column("phone_numbers", "calls_per_second")
