"""The agent leg's answer on every attempt (issue 12, item 3).

* ``attempts.agent_answer_delay_ms``: milliseconds from the callee's answer
  to the agent's answer (or to the agent leg's failure), 0 = no agent leg or
  unknown. Operators watch it as abandonment: an answered callee waits this
  long in silence.
* ``attempts.agent_sip_code``: final status of the agent's INVITE (0 = none).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attempts", sa.Column("agent_answer_delay_ms", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("attempts", sa.Column("agent_sip_code", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("attempts", "agent_sip_code")
    op.drop_column("attempts", "agent_answer_delay_ms")
