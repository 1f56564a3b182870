"""Secrets at rest and the API's sharp edges (issue 14, items 5 and 6).

* ``phone_numbers.trunk_password`` and ``agents.sip_password`` become
  ``text``: they now hold ``enc:v1:<Fernet token>`` (server/adapters/secrets.py),
  longer than the 256-character password. Existing plaintext values are NOT
  rewritten here (a migration cannot rely on seeing BATCHCALLS_SECRETS_KEY):
  a value without the ``enc:v1:`` marker is read as plaintext and encrypted
  the next time it is written (docs/design.md §7).
* ``api_keys.expire_at``: optional expiry of a key (UNAUTHENTICATED after).
* ``credit_top_ups``: the request ids of TopUpCredits (idempotency).
* ``attempts.contact_id`` loses its ON DELETE CASCADE foreign key: deleting
  a batch deletes its contacts but keeps the call records (attempts) that
  billing and the frequency cap read.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("phone_numbers", "trunk_password", type_=sa.Text(), existing_nullable=False)
    op.alter_column("agents", "sip_password", type_=sa.Text(), existing_nullable=False)
    op.add_column("api_keys", sa.Column("expire_at", sa.DateTime(timezone=True)))
    op.create_table(
        "credit_top_ups",
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id", ondelete="CASCADE",
                                                          name="fk_credit_top_ups_org_id_organizations"),
                  nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("org_id", "request_id", name="pk_credit_top_ups"),
    )
    op.drop_constraint("fk_attempts_contact_id_contacts", "attempts", type_="foreignkey")


def downgrade() -> None:
    op.execute("DELETE FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = a.contact_id)")
    op.create_foreign_key("fk_attempts_contact_id_contacts", "attempts", "contacts", ["contact_id"], ["id"],
                          ondelete="CASCADE")
    op.drop_table("credit_top_ups")
    op.drop_column("api_keys", "expire_at")
    op.alter_column("agents", "sip_password", type_=sa.String(256), existing_nullable=False)
    op.alter_column("phone_numbers", "trunk_password", type_=sa.String(256), existing_nullable=False)
