"""convert.contact_page_reader (ListContacts pages) makes the message
convert.contact_msg makes of the same row."""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime, timedelta, timezone

from server.api import convert

COLUMNS = ("page_total", "id", "batch_id", "row_number", "phone", "name", "email", "variables", "status", "attempts",
           "max_attempts", "last_outcome", "failure_reason", "wait_reason", "last_attempt_at", "next_attempt_at",
           "call_started_at", "call_ended_at", "duration_seconds", "recording_uri", "transcript", "cost_micros",
           "timezones", "tz_fallback", "consent_at", "consent_source")
Row = namedtuple("Row", COLUMNS)  # indexable like a SQLAlchemy Row, read by attribute by contact_msg


def _row(i: int, **kw) -> Row:  # type: ignore[no-untyped-def]
    values = dict(page_total=99, id=i, batch_id="batch_0123456789abcdef", row_number=i + 1, phone=f"+1415555{i:04d}",
                  name="", email="", variables=None, status="queued", attempts=0, max_attempts=3, last_outcome="",
                  failure_reason="", wait_reason="", last_attempt_at=None, next_attempt_at=None, call_started_at=None,
                  call_ended_at=None, duration_seconds=0.0, recording_uri="", transcript="", cost_micros=0,
                  timezones=[], tz_fallback=False, consent_at=None, consent_source="")
    values.update(kw)
    return Row(**values)


def test_the_same_messages_as_contact_msg() -> None:
    kolkata, lmt = timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(minutes=19, seconds=32))
    rows = [
        _row(1),
        _row(2, name="Ann", email="a@example.com", variables={"plan": "gold", "n": 3, "vip": True, "x": {"a": 1}},
             status="completed", attempts=2, last_outcome="completed", duration_seconds=12.5,
             recording_uri="s3://r/2", transcript="hello", cost_micros=1200, timezones=["America/New_York"],
             tz_fallback=True, consent_source="web form",
             last_attempt_at=datetime(2024, 3, 10, 9, 59, 59, 123456, tzinfo=timezone.utc),
             next_attempt_at=datetime(2024, 3, 10, 15, 29, 59, 999999, tzinfo=kolkata),
             call_started_at=datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=timezone.utc),
             call_ended_at=datetime(1, 1, 1, tzinfo=timezone.utc),
             consent_at=datetime(1890, 5, 1, 12, 0, 0, 1, tzinfo=lmt)),
        _row(3, status="no_such_status", last_outcome="no_such_outcome", failure_reason="permanently_failed",
             wait_reason="outside calling window", next_attempt_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        _row(4, variables={}, timezones=None),
    ]
    read = convert.contact_page_reader(COLUMNS)
    for r in rows:
        assert read(r) == convert.contact_msg(r), r
        assert read(r).SerializeToString(deterministic=True) == convert.contact_msg(r).SerializeToString(deterministic=True)


def test_optional_columns_may_be_missing() -> None:
    columns = tuple(c for c in COLUMNS if c not in ("consent_at", "consent_source"))
    Short = namedtuple("Short", columns)  # type: ignore[misc]
    full = _row(5, consent_source="", consent_at=None, status="failed")
    short = Short(**{c: getattr(full, c) for c in columns})
    assert convert.contact_page_reader(columns)(short) == convert.contact_msg(full)
