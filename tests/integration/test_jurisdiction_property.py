"""Issue 16 as a property, checked at the callee's side (sibling of
test_compliance_property.py, same machinery: the real Dialer in process, the
real server, a real ``python -m simcarrier`` process, one FakeClock).

The server applies the jurisdiction rules to the simulated trunk
(``jurisdiction_on_simulated``, as to a real one). For random starts
(weekdays, Sundays, holidays, both DST changes over 2024–2026), random batch
windows (none / organization / custom), random subsets of numbers of states
with narrower hours, Sunday and holiday bans and per-subject caps, two
concurrent batches of one organization with retries, every call in the
carrier's record is joined to its grant instant (attempts.started_at) and
checked against an **independent oracle** written here from the statutes'
summary (not the rule table):

* never outside 08:00–21:00 callee local; never outside the state's own
  hours (FL, OK, MD 08–20; TX 09–21 Mon–Sat, 12–21 Sunday; AL 08–20; RI
  09–18 Mon–Fri, 10–17 Saturday); never on a Sunday in UT, AL, RI; never on
  a UT, AL or RI holiday (``holidays`` package, public + government);
* never outside the batch window, in the callee's zone;
* never a fourth call within a rolling 24 h to a FL, OK or MD number across
  both batches (the organization's own cap is 0 or above 3).
"""

from __future__ import annotations

import random
from datetime import datetime, time as dtime, timedelta, timezone
from typing import Any

import holidays
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings, strategies as st

from batchcalls.v1 import resources_pb2 as res
from server.domain.calling_window import CallingWindow, is_open, zones_for_number
from server.domain.clock import FakeClock
from tests.integration.test_compliance_property import (  # noqa: F401  (fixtures by name)
    MAX_STEPS,
    carrier,
    carrier_calls,
    dialer,
    max_in_rolling_24h,
    new_caller_number,
    wait_quiet,
    window_text,
)
from tests.support.clocked_stack import clocked_stack, create_batch, query, update_org, utc

NUMBERS = {
    "+13055550123": "FL",
    "+14055550123": "OK",
    "+14105550123": "MD",
    "+12145550123": "TX",
    "+18015550123": "UT",
    "+12055550123": "AL",
    "+14015550123": "RI",
    "+12125550143": "NY",
    "+13105550199": "CA",
    "+442079460123": "",  # GB: the window alone
}
CAPPED = {"FL", "OK", "MD"}
HORIZON = timedelta(days=4)
_ALL = range(1, 8)
#: state -> list of (iso weekdays, start hour, end hour); federal 8–21 added for every US state.
HOURS: dict[str, list[tuple[range | tuple[int, ...], int, int]]] = {
    "FL": [(_ALL, 8, 20)], "OK": [(_ALL, 8, 20)], "MD": [(_ALL, 8, 20)], "AL": [(_ALL, 8, 20)],
    "TX": [(range(1, 7), 9, 21), ((7,), 12, 21)],
    "RI": [(range(1, 6), 9, 18), ((6,), 10, 17)],
}
NO_SUNDAY = {"UT", "AL", "RI"}
NO_HOLIDAY = {"UT", "AL", "RI"}
TOTALS: dict[str, int] = {"examples": 0, "calls": 0, "capped_numbers_hit_3": 0}


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(utc(2025, 1, 1, 0))


@pytest.fixture(scope="module")
def cs(embedded, clock):  # type: ignore[no-untyped-def]
    with clocked_stack(embedded, clock, jurisdiction_on_simulated=True) as s:
        yield s


def _holiday(state: str, d: Any) -> bool:
    return d in holidays.country_holidays("US", subdiv=state, years=d.year, categories=("public", "government"))


def oracle_violation(phone: str, at: datetime) -> str:
    """Why a call to ``phone`` at ``at`` breaks a statute (independent of the rule table); "" if none."""
    state = NUMBERS[phone]
    if not state:
        return ""
    for zone in zones_for_number(phone, "UTC").zones:
        local = at.astimezone(__import__("zoneinfo").ZoneInfo(zone))
        t, wd, d = local.time(), local.isoweekday(), local.date()
        if not dtime(8) <= t < dtime(21):
            return f"federal 8–21 ({local:%a %H:%M} {zone})"
        for days, lo, hi in HOURS.get(state, []):
            if wd in days and not dtime(lo) <= t < dtime(hi):
                return f"{state} {lo}–{hi} ({local:%a %H:%M} {zone})"
        if state in NO_SUNDAY and wd == 7:
            return f"{state} Sunday ({local:%Y-%m-%d})"
        if state in NO_HOLIDAY and _holiday(state, d):
            return f"{state} holiday ({local:%Y-%m-%d})"
    return ""


# Starts chosen to cover the edges: DST changes, holidays, Sundays, plus random instants.
EDGES = [
    datetime(2025, 3, 8, 12), datetime(2025, 11, 1, 12), datetime(2025, 7, 3, 20),  # DST, DST, July 4th
    datetime(2025, 7, 23, 18), datetime(2025, 12, 24, 12), datetime(2026, 1, 18, 12),  # Pioneer Day, Christmas, MLK
    datetime(2025, 3, 15, 23),  # Saturday evening into Sunday
]


@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    start=st.one_of(st.sampled_from(EDGES), st.datetimes(min_value=datetime(2024, 1, 1),
                                                          max_value=datetime(2026, 12, 31))),
    mode=st.sampled_from(["none", "none", "org", "custom"]),
    window=st.tuples(st.integers(0, 23 * 4 - 1).map(lambda q: q * 15), st.integers(8, 24 * 4).map(lambda q: q * 15),
                     st.sets(st.integers(1, 7), min_size=3)),
    batch_tz=st.sampled_from(["UTC", "America/New_York", "America/Los_Angeles"]),
    numbers_a=st.lists(st.sampled_from(sorted(NUMBERS)), min_size=2, max_size=6, unique=True),
    numbers_b=st.lists(st.sampled_from(sorted(NUMBERS)), min_size=2, max_size=6, unique=True),
    cap=st.sampled_from([0, 0, 5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_call_outside_any_statute_nor_a_fourth_within_24h_in_capped_states(
    cs, dialer, carrier, clock, start, mode, window, batch_tz, numbers_a, numbers_b, cap, seed,
):
    rnd = random.Random(seed)
    w_start, w_end = window_text(window[0], window[1])
    rule = CallingWindow.parse(w_start, w_end, sorted(window[2])) if mode != "none" else None
    t0 = start.replace(microsecond=0, tzinfo=timezone.utc)
    clock.set(t0)

    org = cs.new_org(concurrency_limit=5)  # explicit "any time": only the law and the batch window
    caller = new_caller_number(cs, org)
    changes: dict[str, Any] = {"frequency_cap_per_24h": cap}
    if mode == "org":
        changes["default_calling_window"] = (w_start, w_end, sorted(window[2]))
    update_org(cs, org, **changes)
    # Five attempts, retried after 5 and 30 minutes: without the per-subject
    # cap, a number in both batches would get up to ten calls a day.
    fields: dict[str, Any] = {"timezone_name": batch_tz, "max_attempts": 5, "from_number": caller,
                              "concurrency_limit": 3}
    if mode == "custom":
        fields["window"] = (w_start, w_end, sorted(window[2]))
    elif mode == "org":
        fields["mode"] = res.CALLING_WINDOW_MODE_UNSPECIFIED
    else:
        fields["mode"] = res.CALLING_WINDOW_MODE_NONE
    batches = [create_batch(cs, org, numbers, **fields).batch for numbers in (numbers_a, numbers_b)]

    steps = 0
    while True:
        now = clock.now()
        try:
            p = wait_quiet(cs, dialer, org.org_id, now)
        except AssertionError as exc:  # say which contacts were left, for the note
            rows = query(cs, "SELECT id, phone, status, attempts, next_attempt_at, wait_reason FROM contacts "
                             "WHERE org_id = :o AND status IN ('pending', 'queued')", o=org.org_id)
            raise AssertionError(f"{exc}; waiting contacts {rows}") from None
        if p.next_due is None or p.next_due > t0 + HORIZON:
            break
        steps += 1
        assert steps < MAX_STEPS, "too many clock steps"
        jitter = 0 if rnd.random() < 0.6 else rnd.randint(1, 90 * 60)
        clock.set(max(p.next_due, now) + timedelta(seconds=jitter))
    note(f"window {mode} {w_start}-{w_end} days {sorted(window[2])}; zone {batch_tz}; start {t0}; "
         f"{steps} steps; cap {cap}")

    attempts = {
        r.provider_call_id: r
        for r in query(cs, "SELECT provider_call_id, phone, started_at, batch_id FROM attempts WHERE org_id = :o",
                       o=org.org_id)
    }
    tz_of = {b.batch_id: b.timezone for b in batches}
    calls = [c for b in batches for c in carrier_calls(carrier.url, b.batch_id)]
    starts: dict[str, list[datetime]] = {}
    for call in calls:
        att = attempts.get(call["call_id"])
        assert att is not None, f"carrier call {call['call_id']} has no granted attempt"
        granted = att.started_at
        starts.setdefault(att.phone, []).append(granted)
        why = oracle_violation(att.phone, granted)
        assert not why, f"{att.phone} ({NUMBERS[att.phone] or 'GB'}) called at {granted.isoformat()}: breaks {why}"
        if rule is not None:
            found = zones_for_number(att.phone, tz_of[att.batch_id])
            assert is_open(rule, found.zones, granted) or is_open(rule, (tz_of[att.batch_id],), granted), (
                f"{att.phone} called at {granted.isoformat()} outside the batch window {rule}"
            )
    for phone, ss in starts.items():
        if NUMBERS[phone] in CAPPED:
            most = max_in_rolling_24h(ss)
            assert most <= 3, f"{phone} ({NUMBERS[phone]}): {sorted(ss)} has {most} calls in 24 h"
            TOTALS["capped_numbers_hit_3"] += most == 3
    TOTALS["examples"] += 1
    TOTALS["calls"] += len(calls)


def test_the_jurisdiction_property_run_was_not_vacuous() -> None:
    if TOTALS["examples"] == 0:
        pytest.skip("the property test did not run")
    assert TOTALS["calls"] > 0, TOTALS
    assert TOTALS["capped_numbers_hit_3"] > 0, TOTALS
