"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('organizations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('concurrency_limit', sa.Integer(), server_default='10', nullable=False),
    sa.Column('credit_balance_micros', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('credits_enforced', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('window_start', sa.String(length=5), nullable=True),
    sa.Column('window_end', sa.String(length=5), nullable=True),
    sa.Column('window_weekdays', postgresql.ARRAY(sa.SmallInteger()), nullable=True),
    sa.Column('frequency_cap_per_24h', sa.Integer(), server_default='0', nullable=False),
    sa.Column('circuit_breaker_window', sa.Integer(), server_default='20', nullable=False),
    sa.Column('circuit_breaker_threshold', sa.Float(), server_default='0.5', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations'))
    )
    op.create_table('agents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('architecture', sa.String(length=10), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('recording_enabled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('transcript_enabled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("architecture in ('pipeline','realtime','text')", name=op.f('ck_agents_architecture')),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_agents_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents'))
    )
    op.create_index('ix_agents_org', 'agents', ['org_id', 'created_at'], unique=False)
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role in ('owner','admin','member')", name=op.f('ck_api_keys_role')),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_api_keys_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_index('ix_api_keys_org', 'api_keys', ['org_id'], unique=False)
    op.create_table('do_not_call',
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_do_not_call_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'phone', name=op.f('pk_do_not_call'))
    )
    op.create_table('phone_numbers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('e164', sa.String(length=20), nullable=False),
    sa.Column('display_name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('trunk_kind', sa.String(length=10), nullable=True),
    sa.Column('trunk_host', sa.String(length=255), server_default='', nullable=False),
    sa.Column('trunk_port', sa.Integer(), server_default='0', nullable=False),
    sa.Column('trunk_transport', sa.String(length=4), server_default='udp', nullable=False),
    sa.Column('trunk_username', sa.String(length=128), server_default='', nullable=False),
    sa.Column('trunk_password', sa.String(length=256), server_default='', nullable=False),
    sa.Column('caller_id_format', sa.String(length=16), server_default='e164', nullable=False),
    sa.Column('simulation', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_phone_numbers_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_numbers'))
    )
    op.create_index('uq_phone_numbers_org_e164_live', 'phone_numbers', ['org_id', 'e164'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('batches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('agent_id', sa.String(length=40), nullable=False),
    sa.Column('from_number_id', sa.String(length=40), nullable=False),
    sa.Column('concurrency_limit', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('max_call_seconds', sa.Integer(), server_default='1800', nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('default_region', sa.String(length=2), server_default='', nullable=False),
    sa.Column('custom_columns', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('window_mode', sa.String(length=10), server_default='org', nullable=False),
    sa.Column('window_start', sa.String(length=5), nullable=True),
    sa.Column('window_end', sa.String(length=5), nullable=True),
    sa.Column('window_weekdays', postgresql.ARRAY(sa.SmallInteger()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_grant_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('estimated_cost_micros', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('cost_micros', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('total_contacts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_pending', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_queued', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_dialing', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_connected', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_completed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_invalid_number', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_blocked', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_carrier_error', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_cancelled', sa.Integer(), server_default='0', nullable=False),
    sa.Column('n_suppressed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('attempts_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('connected_calls', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_duration_seconds', sa.Float(), server_default='0', nullable=False),
    sa.Column('attempt_histogram', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('outcomes_by_attempt', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('recent_outcomes', postgresql.ARRAY(sa.String(length=16)), server_default=sa.text("'{}'"), nullable=False),
    sa.CheckConstraint("status in ('pending','scheduled','running','paused','completed','failed','cancelled')", name=op.f('ck_batches_status')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_batches_agent_id_agents')),
    sa.ForeignKeyConstraint(['from_number_id'], ['phone_numbers.id'], name=op.f('fk_batches_from_number_id_phone_numbers')),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_batches_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_batches')),
    sa.UniqueConstraint('org_id', 'request_id', name='uq_batches_org_request')
    )
    op.create_index('ix_batches_org_created', 'batches', ['org_id', sa.literal_column('created_at DESC'), 'id'], unique=False)
    op.create_index('ix_batches_status_scheduled', 'batches', ['status', 'scheduled_at'], unique=False)
    op.create_table('contacts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), server_default='', nullable=False),
    sa.Column('email', sa.String(length=320), server_default='', nullable=False),
    sa.Column('variables', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('last_outcome', sa.String(length=16), server_default='', nullable=False),
    sa.Column('failure_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('wait_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('call_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('call_ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Float(), server_default='0', nullable=False),
    sa.Column('recording_uri', sa.Text(), server_default='', nullable=False),
    sa.Column('transcript', sa.Text(), server_default='', nullable=False),
    sa.Column('cost_micros', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('timezones', postgresql.ARRAY(sa.String(length=64)), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('tz_fallback', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('current_attempt_id', sa.String(length=40), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_contacts_batch_id_batches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts'))
    )
    op.create_index('ix_contacts_batch_attempts', 'contacts', ['batch_id', 'attempts', 'id'], unique=False)
    op.create_index('ix_contacts_batch_id', 'contacts', ['batch_id', 'id'], unique=False)
    op.create_index('ix_contacts_batch_last_attempt', 'contacts', ['batch_id', 'last_attempt_at'], unique=False)
    op.create_index('ix_contacts_batch_status', 'contacts', ['batch_id', 'status', 'id'], unique=False)
    op.create_table('attempts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('contact_id', sa.BigInteger(), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('attempt_number', sa.Integer(), nullable=False),
    sa.Column('fence_token', sa.BigInteger(), nullable=False),
    sa.Column('lease_id', sa.String(length=64), nullable=False),
    sa.Column('dialer_id', sa.String(length=128), server_default='', nullable=False),
    sa.Column('provider_call_id', sa.String(length=128), server_default='', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), server_default='', nullable=False),
    sa.Column('duration_seconds', sa.Float(), server_default='0', nullable=False),
    sa.Column('sip_code', sa.Integer(), server_default='0', nullable=False),
    sa.Column('recording_uri', sa.Text(), server_default='', nullable=False),
    sa.Column('transcript', sa.Text(), server_default='', nullable=False),
    sa.Column('cost_micros', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('closed_by', sa.String(length=160), server_default='', nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_attempts_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts'))
    )
    op.create_index('ix_attempts_contact', 'attempts', ['contact_id', 'attempt_number'], unique=False)
    op.create_index('ix_attempts_open', 'attempts', ['org_id'], unique=False, postgresql_where=sa.text('ended_at IS NULL'))
    op.create_index('ix_attempts_org_phone_started', 'attempts', ['org_id', 'phone', 'started_at'], unique=False)



def downgrade() -> None:

    op.drop_index('ix_attempts_org_phone_started', table_name='attempts')
    op.drop_index('ix_attempts_open', table_name='attempts', postgresql_where=sa.text('ended_at IS NULL'))
    op.drop_index('ix_attempts_contact', table_name='attempts')
    op.drop_table('attempts')
    op.drop_index('ix_contacts_batch_status', table_name='contacts')
    op.drop_index('ix_contacts_batch_last_attempt', table_name='contacts')
    op.drop_index('ix_contacts_batch_id', table_name='contacts')
    op.drop_index('ix_contacts_batch_attempts', table_name='contacts')
    op.drop_table('contacts')
    op.drop_index('ix_batches_status_scheduled', table_name='batches')
    op.drop_index('ix_batches_org_created', table_name='batches')
    op.drop_table('batches')
    op.drop_index('uq_phone_numbers_org_e164_live', table_name='phone_numbers', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_table('phone_numbers')
    op.drop_table('do_not_call')
    op.drop_index('ix_api_keys_org', table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_index('ix_agents_org', table_name='agents')
    op.drop_table('agents')
    op.drop_table('organizations')

