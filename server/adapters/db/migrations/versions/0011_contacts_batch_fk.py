"""``contacts.batch_id`` loses its foreign key to ``batches`` (issue 17, ingest).

A CreateBatch of 10,000 contacts spent about 30 ms of its ~110 ms in the
foreign key's per-row check (a lookup of the batch row for every COPY row;
measured on copies of the table: heap and primary key ~15 ms, the four
other indexes ~30 ms, the check ~30 ms). Integrity is kept by the code that
owns both tables, as for ``attempts`` since 0008:

* contacts are only ever inserted by CreateBatch, in the transaction that
  inserts their batch (``server/service/batches.py``), so a contact never
  names a batch that does not exist;
* the one delete of a batch (``lifecycle.delete_batch``) deletes its
  contacts first, in the same transaction;
* nothing deletes organizations (their batches would cascade, not their
  contacts). tests/integration/test_api_edges.py checks that DeleteBatch
  leaves no contact of the batch behind.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("fk_contacts_batch_id_batches", "contacts", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key("fk_contacts_batch_id_batches", "contacts", "batches", ["batch_id"], ["id"],
                          ondelete="CASCADE")
