"""Postgres schema (SQLAlchemy Core). Postgres is the source of truth.

Batch counters live on the batch row and are changed in the same
transaction as every contact change, so reads never count contacts. Status
words are the lowercase names of the domain enums.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

TS = DateTime(timezone=True)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("concurrency_limit", Integer, nullable=False, server_default="10"),
    Column("credit_balance_micros", BigInteger, nullable=False, server_default="0"),
    Column("credits_enforced", Boolean, nullable=False, server_default=text("true")),
    # Default calling window ("HH:MM"), null = none.
    Column("window_start", String(5)),
    Column("window_end", String(5)),
    Column("window_weekdays", ARRAY(SmallInteger)),
    Column("frequency_cap_per_24h", Integer, nullable=False, server_default="0"),
    Column("circuit_breaker_window", Integer, nullable=False, server_default="20"),
    Column("circuit_breaker_threshold", Float, nullable=False, server_default="0.5"),
    # Organization-wide calls per second, 0 = no cap (migration 0004).
    Column("calls_per_second", Float, nullable=False, server_default="0"),
    CheckConstraint("calls_per_second >= 0 and calls_per_second <= 10000", name="calls_per_second"),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
    # Explicit "call at any time" (no organization window) and "CSV rows
    # need consent" (migration 0005, issue 16).
    Column("calling_any_time", Boolean, nullable=False, server_default=text("false")),
    Column("require_consent", Boolean, nullable=False, server_default=text("false")),
    # Epoch of the organization's Redis state, bumped by each rebuild of it
    # (migration 0009; docs/recovery.md, "Failover without loss").
    Column("redis_epoch", BigInteger, nullable=False, server_default="0"),
    # Slots kept free of batch calls (migration 0010, issue 13): Redis gets
    # concurrency_limit - reserved_concurrency as the organization's limit.
    Column("reserved_concurrency", Integer, nullable=False, server_default="0"),
    CheckConstraint("reserved_concurrency >= 0 and reserved_concurrency < concurrency_limit",
                    name="reserved_concurrency"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("role", String(10), nullable=False),
    Column("prefix", String(16), nullable=False),
    # sha256 of the secret; the secret itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
    Column("last_used_at", TS),
    Column("revoked_at", TS),
    # Optional expiry (migration 0008): UNAUTHENTICATED from this instant.
    Column("expire_at", TS),
    # reporter: ResultsService only (migration 0003).
    CheckConstraint("role in ('owner','admin','member','reporter')", name="role"),
)
Index("ix_api_keys_org", api_keys.c.org_id)

agents = Table(
    "agents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("architecture", String(10), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("recording_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("transcript_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
    Column("updated_at", TS, nullable=False, server_default=text("now()")),
    # SIP connection (migration 0003): normalized URI, "" = none; digest
    # credentials (the password is never returned by the public API); the
    # contact variables sent as X-BC-* headers.
    Column("sip_uri", String(512), nullable=False, server_default=""),
    Column("sip_username", String(128), nullable=False, server_default=""),
    # "enc:v1:<Fernet token>" (migration 0008; server/adapters/secrets.py);
    # a value without the marker is legacy plaintext, encrypted on next write.
    Column("sip_password", Text, nullable=False, server_default=""),
    Column("sip_header_fields", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    CheckConstraint("architecture in ('pipeline','realtime','text')", name="architecture"),
)
Index("ix_agents_org", agents.c.org_id, agents.c.created_at)

phone_numbers = Table(
    "phone_numbers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("e164", String(20), nullable=False),
    Column("display_name", String(200), nullable=False, server_default=""),
    # null = no outbound trunk.
    Column("trunk_kind", String(10)),
    Column("trunk_host", String(255), nullable=False, server_default=""),
    Column("trunk_port", Integer, nullable=False, server_default="0"),
    Column("trunk_transport", String(4), nullable=False, server_default="udp"),
    Column("trunk_username", String(128), nullable=False, server_default=""),
    # Never returned by the public API; encrypted like agents.sip_password.
    Column("trunk_password", Text, nullable=False, server_default=""),
    Column("caller_id_format", String(16), nullable=False, server_default="e164"),
    Column("simulation", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # The trunk's calls per second, 0.1-1000 (migration 0004; docs/pacing.md).
    Column("calls_per_second", Float, nullable=False, server_default="1.0"),
    CheckConstraint("calls_per_second >= 0.1 and calls_per_second <= 1000", name="calls_per_second"),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
    # Soft delete: batches keep pointing at the number they called from.
    Column("deleted_at", TS),
)
Index(
    "uq_phone_numbers_org_e164_live",
    phone_numbers.c.org_id,
    phone_numbers.c.e164,
    unique=True,
    postgresql_where=phone_numbers.c.deleted_at.is_(None),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("request_id", String(128)),
    Column("display_name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", String(10), nullable=False),
    Column("status_reason", Text, nullable=False, server_default=""),
    Column("agent_id", String(40), ForeignKey("agents.id"), nullable=False),
    Column("from_number_id", String(40), ForeignKey("phone_numbers.id"), nullable=False),
    Column("concurrency_limit", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("max_call_seconds", Integer, nullable=False, server_default="1800"),
    Column("scheduled_at", TS),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("default_region", String(2), nullable=False, server_default=""),
    Column("custom_columns", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("window_mode", String(10), nullable=False, server_default="org"),
    Column("window_start", String(5)),
    Column("window_end", String(5)),
    Column("window_weekdays", ARRAY(SmallInteger)),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
    Column("started_at", TS),
    Column("completed_at", TS),
    Column("updated_at", TS, nullable=False, server_default=text("now()")),
    Column("estimated_cost_micros", BigInteger, nullable=False, server_default="0"),
    Column("total_contacts", Integer, nullable=False, server_default="0"),
    # The circuit breaker judges attempts that ended after this instant
    # (set on resume: the operator looked at the failures).
    Column("breaker_reset_at", TS),
    # Own retry delays per outcome, {"busy": [300, 1800], ...}; an outcome
    # not listed uses the server's default. What a voicemail means:
    # "retry_later" | "done" (migration 0010, issue 13).
    Column("retry_delays", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("voicemail_action", String(12), nullable=False, server_default="retry_later"),
    CheckConstraint("voicemail_action in ('retry_later','done')", name="voicemail_action"),
    UniqueConstraint("org_id", "request_id", name="uq_batches_org_request"),
    CheckConstraint(
        "status in ('pending','scheduled','running','paused','completed','failed','cancelled')",
        name="status",
    ),
)
#: Counters of a batch, split over COUNTER_SHARDS rows so that concurrent
#: StartAttempt / FinishAttempt transactions of one batch do not queue on a
#: single row. A batch's figure is the sum over its shards (8 rows, never a
#: count of contacts); a shard may go negative, the sum cannot.
COUNTER_SHARDS = 8
batch_counters = Table(
    "batch_counters",
    metadata,
    Column("batch_id", String(40), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("n_pending", Integer, nullable=False, server_default="0"),
    Column("n_queued", Integer, nullable=False, server_default="0"),
    Column("n_dialing", Integer, nullable=False, server_default="0"),
    Column("n_connected", Integer, nullable=False, server_default="0"),
    Column("n_completed", Integer, nullable=False, server_default="0"),
    Column("n_failed", Integer, nullable=False, server_default="0"),
    Column("n_invalid_number", Integer, nullable=False, server_default="0"),
    Column("n_blocked", Integer, nullable=False, server_default="0"),
    Column("n_carrier_error", Integer, nullable=False, server_default="0"),
    Column("n_cancelled", Integer, nullable=False, server_default="0"),
    Column("n_suppressed", Integer, nullable=False, server_default="0"),
    Column("attempts_total", Integer, nullable=False, server_default="0"),
    Column("connected_calls", Integer, nullable=False, server_default="0"),
    Column("total_duration_seconds", Float, nullable=False, server_default="0"),
    Column("cost_micros", BigInteger, nullable=False, server_default="0"),
    # Latest StartAttempt grant: pause and cancel wait out its dial deadline.
    Column("last_grant_at", TS),
    # {"<attempts>": contacts} over final contacts.
    Column("attempt_histogram", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # {"<attempt number>:<outcome>": count} over closed attempts.
    Column("outcomes_by_attempt", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
SUMMED_COUNTERS = (
    "n_pending", "n_queued", "n_dialing", "n_connected", "n_completed", "n_failed", "n_invalid_number",
    "n_blocked", "n_carrier_error", "n_cancelled", "n_suppressed", "attempts_total", "connected_calls",
    "total_duration_seconds", "cost_micros",
)

Index("ix_batches_org_created", batches.c.org_id, batches.c.created_at.desc(), batches.c.id)
Index("ix_batches_status_scheduled", batches.c.status, batches.c.scheduled_at)

contacts = Table(
    "contacts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # No foreign key to batches (migration 0011): its per-row check was a
    # quarter of CreateBatch's COPY; CreateBatch inserts a batch's contacts
    # with it and delete_batch deletes them first, in one transaction each.
    Column("batch_id", String(40), nullable=False),
    Column("org_id", String(40), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("phone", String(20), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("email", String(320), nullable=False, server_default=""),
    Column("variables", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("last_outcome", String(16), nullable=False, server_default=""),
    Column("failure_reason", Text, nullable=False, server_default=""),
    Column("wait_reason", Text, nullable=False, server_default=""),
    Column("last_attempt_at", TS),
    Column("next_attempt_at", TS),
    Column("call_started_at", TS),
    Column("call_ended_at", TS),
    Column("duration_seconds", Float, nullable=False, server_default="0"),
    Column("recording_uri", Text, nullable=False, server_default=""),
    Column("transcript", Text, nullable=False, server_default=""),
    Column("cost_micros", BigInteger, nullable=False, server_default="0"),
    Column("timezones", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    Column("tz_fallback", Boolean, nullable=False, server_default=text("false")),
    # The open attempt while DIALING / CONNECTED.
    Column("current_attempt_id", String(40)),
    Column("updated_at", TS, nullable=False, server_default=text("now()")),
    # The attempt whose reported result is the contact's latest (0003).
    Column("result_attempt_id", String(40)),
    # Prior express consent from the CSV (migration 0005).
    Column("consent_at", TS),
    Column("consent_source", Text, nullable=False, server_default=""),
)
Index("ix_contacts_batch_id", contacts.c.batch_id, contacts.c.id)
Index("ix_contacts_batch_status", contacts.c.batch_id, contacts.c.status, contacts.c.id)
Index("ix_contacts_batch_attempts", contacts.c.batch_id, contacts.c.attempts, contacts.c.id)
Index("ix_contacts_batch_last_attempt", contacts.c.batch_id, contacts.c.last_attempt_at)

attempts = Table(
    "attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    # No foreign key (migration 0008): deleting a batch deletes its contacts
    # and keeps its attempts, the call records billing and the frequency cap read.
    Column("contact_id", BigInteger, nullable=False),
    Column("batch_id", String(40), nullable=False),
    Column("org_id", String(40), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("attempt_number", Integer, nullable=False),
    Column("fence_token", BigInteger, nullable=False),
    Column("lease_id", String(64), nullable=False),
    Column("dialer_id", String(128), nullable=False, server_default=""),
    Column("provider_call_id", String(128), nullable=False, server_default=""),
    Column("started_at", TS, nullable=False),
    Column("answered_at", TS),
    Column("ended_at", TS),
    Column("outcome", String(16), nullable=False, server_default=""),
    Column("duration_seconds", Float, nullable=False, server_default="0"),
    Column("sip_code", Integer, nullable=False, server_default="0"),
    Column("recording_uri", Text, nullable=False, server_default=""),
    Column("transcript", Text, nullable=False, server_default=""),
    Column("cost_micros", BigInteger, nullable=False, server_default="0"),
    Column("closed_by", String(160), nullable=False, server_default=""),
    # Order in which attempts were closed (sequence attempt_close_seq): the
    # circuit breaker's "last K attempts", exact even when end times tie.
    Column("closed_seq", BigInteger),
    Column("detail", Text, nullable=False, server_default=""),
    # What the agent reported (ResultsService, migration 0003); "" = nothing.
    Column("disposition", String(24), nullable=False, server_default=""),
    Column("answered_by", String(8), nullable=False, server_default=""),
    Column("callback_at", TS),
    Column("summary", Text, nullable=False, server_default=""),
    Column("result_transcript", Text, nullable=False, server_default=""),
    Column("result_recording_uri", Text, nullable=False, server_default=""),
    # [{"name": ..., "type": "string"|"number"|"bool", "value": ...}], in report order.
    Column("extracted_fields", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("result_at", TS),
    # The agent leg (migration 0006): ms from the callee's answer to the
    # agent's answer or failure (0 = no agent leg / unknown), and the final
    # status of the agent's INVITE (0 = none).
    Column("agent_answer_delay_ms", BigInteger, nullable=False, server_default="0"),
    Column("agent_sip_code", Integer, nullable=False, server_default="0"),
)
Index("ix_attempts_contact", attempts.c.contact_id, attempts.c.attempt_number)
Index("ix_attempts_open", attempts.c.org_id, postgresql_where=attempts.c.ended_at.is_(None))
Index("ix_attempts_org_phone_started", attempts.c.org_id, attempts.c.phone, attempts.c.started_at)
Index("ix_attempts_batch_closed", attempts.c.batch_id, attempts.c.closed_seq)
Index(
    "ix_attempts_org_provider_call",
    attempts.c.org_id,
    attempts.c.provider_call_id,
    postgresql_where=attempts.c.provider_call_id != "",
)

#: Request ids of TopUpCredits (migration 0008): one top-up per id.
credit_top_ups = Table(
    "credit_top_ups",
    metadata,
    Column("org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("amount_micros", BigInteger, nullable=False),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
)

do_not_call = Table(
    "do_not_call",
    metadata,
    Column("org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("phone", String(20), primary_key=True),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
)
