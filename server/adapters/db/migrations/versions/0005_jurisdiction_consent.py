"""Compliance by jurisdiction (issue 16): explicit "any time", consent.

* ``organizations.calling_any_time``: the explicit owner choice "no
  organization window". Organizations that exist when this runs and have no
  default window called at any time until now: they keep that behaviour,
  now named (``calling_any_time = true``). Every other organization, and every
  organization created afterwards, dials under its window, 08:00–21:00 callee
  local time by default (``create_organization`` stores it).
* ``organizations.require_consent``: uploaded CSVs need a ``consent_at`` column.
* ``contacts.consent_at`` / ``consent_source``: the consent a row carried.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "organizations", sa.Column("calling_any_time", sa.Boolean(), nullable=False, server_default=sa.text("false"))
    )
    op.add_column(
        "organizations", sa.Column("require_consent", sa.Boolean(), nullable=False, server_default=sa.text("false"))
    )
    op.execute("UPDATE organizations SET calling_any_time = true WHERE window_start IS NULL")
    op.add_column("contacts", sa.Column("consent_at", TS, nullable=True))
    op.add_column("contacts", sa.Column("consent_source", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("contacts", "consent_source")
    op.drop_column("contacts", "consent_at")
    op.drop_column("organizations", "require_consent")
    op.drop_column("organizations", "calling_any_time")
