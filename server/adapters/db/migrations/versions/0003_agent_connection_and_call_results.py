"""Agent SIP connection, reporter API keys, call results on attempts.

* ``agents``: the SIP URI the dialer brings in when a callee answers, digest
  credentials (the password is never returned by the public API, like a
  trunk password) and the contact variables sent as ``X-BC-*`` headers.
* ``api_keys.role`` may be ``reporter`` (ResultsService only).
* ``attempts``: what the agent reported for the call (ResultsService), and
  an index to find an attempt by its provider call id.
* ``contacts.result_attempt_id``: the attempt whose result is the contact's
  latest (GetContact, ListContacts and the export read it with one join).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("agents", sa.Column("sip_uri", sa.String(512), nullable=False, server_default=""))
    op.add_column("agents", sa.Column("sip_username", sa.String(128), nullable=False, server_default=""))
    op.add_column("agents", sa.Column("sip_password", sa.String(256), nullable=False, server_default=""))
    op.add_column(
        "agents",
        sa.Column("sip_header_fields", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
    )

    op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
    op.create_check_constraint("role", "api_keys", "role in ('owner','admin','member','reporter')")

    op.add_column("attempts", sa.Column("disposition", sa.String(24), nullable=False, server_default=""))
    op.add_column("attempts", sa.Column("answered_by", sa.String(8), nullable=False, server_default=""))
    op.add_column("attempts", sa.Column("callback_at", TS))
    op.add_column("attempts", sa.Column("summary", sa.Text(), nullable=False, server_default=""))
    op.add_column("attempts", sa.Column("result_transcript", sa.Text(), nullable=False, server_default=""))
    op.add_column("attempts", sa.Column("result_recording_uri", sa.Text(), nullable=False, server_default=""))
    op.add_column(
        "attempts",
        sa.Column("extracted_fields", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
    )
    op.add_column("attempts", sa.Column("result_at", TS))
    op.create_index(
        "ix_attempts_org_provider_call", "attempts", ["org_id", "provider_call_id"],
        postgresql_where=sa.text("provider_call_id <> ''"),
    )

    op.add_column("contacts", sa.Column("result_attempt_id", sa.String(40)))


def downgrade() -> None:
    op.drop_column("contacts", "result_attempt_id")
    op.drop_index("ix_attempts_org_provider_call", table_name="attempts")
    for column in ("result_at", "extracted_fields", "result_recording_uri", "result_transcript", "summary",
                   "callback_at", "answered_by", "disposition"):
        op.drop_column("attempts", column)
    op.execute("DELETE FROM api_keys WHERE role = 'reporter'")
    op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
    op.create_check_constraint("role", "api_keys", "role in ('owner','admin','member')")
    for column in ("sip_header_fields", "sip_password", "sip_username", "sip_uri"):
        op.drop_column("agents", column)
