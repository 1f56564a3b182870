"""Batch counters split over shard rows; breaker reset instant; close order.

Concurrent attempts of one batch queued on the batch row (every StartAttempt
and FinishAttempt moved its counters). Counters now live in
``batch_counters`` (8 rows a batch, summed on read), and the batch row is
only share-locked by attempts, exclusively by status changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COUNTERS = (
    "n_pending", "n_queued", "n_dialing", "n_connected", "n_completed", "n_failed", "n_invalid_number",
    "n_blocked", "n_carrier_error", "n_cancelled", "n_suppressed", "attempts_total", "connected_calls",
)
MOVED = COUNTERS + ("total_duration_seconds", "cost_micros", "last_grant_at", "attempt_histogram", "outcomes_by_attempt")

JSONB_ADD = """
CREATE OR REPLACE FUNCTION bc_jsonb_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_object_agg(k, s), '{}'::jsonb) FROM (
    SELECT k, sum(v) AS s FROM (
      SELECT key AS k, value::numeric AS v FROM jsonb_each_text(coalesce(a, '{}'::jsonb))
      UNION ALL
      SELECT key, value::numeric FROM jsonb_each_text(coalesce(b, '{}'::jsonb))
    ) x GROUP BY k
  ) y
$$;
"""
JSONB_SUM = "CREATE AGGREGATE bc_jsonb_sum(jsonb) (SFUNC = bc_jsonb_add, STYPE = jsonb, INITCOND = '{}');"


def upgrade() -> None:
    op.execute(JSONB_ADD)
    op.execute(JSONB_SUM)
    cols = [
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
    ]
    cols += [sa.Column(c, sa.Integer(), server_default="0", nullable=False) for c in COUNTERS]
    cols += [
        sa.Column("total_duration_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_grant_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt_histogram", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("outcomes_by_attempt", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_batch_counters_batch_id_batches"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_id", "shard", name=op.f("pk_batch_counters")),
    ]
    op.create_table("batch_counters", *cols)
    moved = ", ".join(MOVED)
    op.execute(f"INSERT INTO batch_counters (batch_id, shard, {moved}) SELECT id, 0, {moved} FROM batches")
    op.execute(
        "INSERT INTO batch_counters (batch_id, shard) SELECT b.id, s FROM batches b, generate_series(1, 7) s"
    )
    for c in MOVED + ("recent_outcomes",):
        op.drop_column("batches", c)
    op.add_column("batches", sa.Column("breaker_reset_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("CREATE SEQUENCE attempt_close_seq")
    op.add_column("attempts", sa.Column("closed_seq", sa.BigInteger(), nullable=True))
    op.create_index("ix_attempts_batch_closed", "attempts", ["batch_id", "closed_seq"])


def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: restore from a backup")
