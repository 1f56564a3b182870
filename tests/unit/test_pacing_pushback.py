"""Pure parts of CPS pacing (dialer/cps.py): which carrier answers are
push-back, Retry-After parsing, the config's bounds, the key layout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.crc import key_slot

from contract import keys
from dialer.cps import PaceConfig, PushbackKind, classify_response, parse_retry_after

T = PushbackKind.THROTTLE
N = PushbackKind.NONE


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        # 503 always, whatever the reason says.
        (503, "Service Unavailable", T),
        (503, None, T),
        (503, "", T),
        (503, "Maintenance", T),
        # HTTP API carriers' CPS answer.
        (429, "Too Many Requests", T),
        # 403 / 480 only with the reasons carriers use for channel/CPS limits.
        (403, "Channel Limit", T),
        (403, "Channel limit reached", T),
        (480, "Channels Exceeded", T),
        (403, "Too Many Calls", T),
        (480, "Too many concurrent calls", T),
        (403, "CPS limit exceeded", T),
        (403, "CPS Exceeded", T),
        (480, "Calls per second exceeded", T),
        (403, "Rate limit", T),
        (403, "Rate-Limited", T),
        (403, "ratelimit exceeded", T),
        (480, "Call limit reached", T),
        (480, "Concurrent call limit", T),
        (403, "Concurrency limit", T),
        (480, "No circuit available", T),
        (480, "Temporarily Unavailable; Q.850;cause=34;text=\"No circuit/channel available\"", T),
        (480, "Q.850;cause=42", T),
        (480, "Congestion", T),
        # Ordinary outcomes of 403 / 480.
        (403, "Forbidden", N),
        (403, None, N),
        (403, "Caller ID not authorized", N),
        (403, "Daily spend limit exceeded", N),  # not throttling: would retry forever
        (480, "Temporarily Unavailable", N),
        (480, "Q.850;cause=18", N),
        (480, None, N),
        # Other statuses never, even with a limit-like reason.
        (486, "Busy Here", N),
        (486, "Too Many Calls", N),
        (404, "Not Found", N),
        (408, "Request Timeout", N),
        (500, "Server Internal Error", N),
        (603, "Decline", N),
        (200, "OK", N),
        (180, "Ringing", N),
    ],
)
def test_classify_response(status, reason, kind):
    assert classify_response(status, reason) is kind


NOW_MS = int(datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("120;duration=3600", 120.0),  # SIP
        ("18000 (in a meeting)", 18000.0),  # SIP comment
        ("Mon, 30 Nov 2026 12:00:05 GMT", 5.0),  # HTTP-date
        ("Monday, 30-Nov-26 12:01:00 GMT", 60.0),  # obsolete RFC 850 form, still valid HTTP
        ("Mon, 30 Nov 2026 11:59:00 GMT", 0.0),  # in the past
        ("Mon, 30 Nov 2026 12:00:05 +0000", 5.0),
        ("-5", None),
        ("soon", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("5 s", None),
    ],
)
def test_parse_retry_after(value, seconds):
    got = parse_retry_after(value, NOW_MS)
    if seconds is None:
        assert got is None
    else:
        assert got == pytest.approx(seconds)


def test_http_date_needs_a_clock():
    assert parse_retry_after("Mon, 30 Nov 2026 12:00:05 GMT") is None
    assert parse_retry_after("7") == 7.0


@pytest.mark.parametrize(
    "bad",
    [
        {"trunk_burst": 0},
        {"org_burst": 0},
        {"decrease_factor": 1.0},
        {"decrease_factor": 0.0},
        {"floor_cps": 0},
        {"increase_fraction": 0},
        {"backoff_base_ms": 0},
        {"backoff_base_ms": 2000, "backoff_cap_ms": 1000},
        {"idle_periods": 0},
        {"memory_ms": -1},
    ],
)
def test_config_bounds(bad):
    with pytest.raises(ValueError):
        PaceConfig(**bad)


def test_defaults():
    c = PaceConfig()
    assert (c.trunk_burst, c.org_burst, c.decrease_factor, c.floor_cps) == (1, 1, 0.5, 0.1)
    assert (c.backoff_base_ms, c.backoff_cap_ms) == (1000, 60_000)


def test_trunk_and_org_pace_keys_share_the_org_slot():
    """pace.lua touches both keys: they must hash to one cluster slot."""
    trunk, org = keys.trunk_pace("org_1", "trunk_9"), keys.org_pace("org_1")
    assert trunk == "bc:{org_1}:trunk:trunk_9:pace" and org == "bc:{org_1}:pace"
    assert key_slot(trunk.encode()) == key_slot(org.encode()) == key_slot(keys.org_leases("org_1").encode())
