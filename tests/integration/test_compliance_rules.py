"""Issue 6, rule by rule, through the real gRPC API on the embedded
PostgreSQL and Redis, with the server's time injected (a FakeClock shared by
a second server thread, tests/support/clocked_stack.py).

Attempts are driven through the internal DialerService the way a dialer
drives them (StartAttempt with the service token, then FinishAttempt), so
each test can set the clock to an exact instant — 03:00 in New York, the
second before a window opens, the second a rolling 24 h ends — and read the
decision.

Expected instants are written out by hand from the zones' UTC offsets (not
computed with server.domain.calling_window), so a bug in that module cannot
hide behind its own arithmetic. Callee numbers come from several zones:

===========  ====================  =========================================
name         number                zones (phonenumbers.timezone)
===========  ====================  =========================================
NY           +1 212 555 0143       America/New_York
NY2          +1 212 736 3100       America/New_York
LA           +1 310 555 0199       America/Los_Angeles
UK           +44 20 7946 0123      Europe/London
IN           +91 98123 45678       Asia/Calcutta
JP           +81 3 1234 5678       Asia/Tokyo
AU_MOBILE    +61 412 345 678       8 zones, Cocos (+6:30) .. Sydney (+11)
AU_WEST      +61 8 9123 4567       Australia/Adelaide, Australia/Perth
TOLL_FREE    +1 800 555 0199       none (service number): batch timezone
===========  ====================  =========================================
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from batchcalls.v1 import (
    batch_service_pb2 as bpb,
    batch_service_pb2_grpc as bgrpc,
    dialer_service_pb2 as dpb,
    organization_service_pb2 as opb,
    organization_service_pb2_grpc as ogrpc,
    resources_pb2 as res,
)
from contract import keys
from server.domain.clock import FakeClock
from tests.support.api import violations
from tests.support.clocked_stack import (
    add_dnc,
    call_once,
    clocked_stack,
    contacts_by_phone,
    create_batch,
    finish_attempt,
    get_batch,
    get_contact,
    get_org,
    list_dnc,
    local,
    query,
    remove_dnc,
    start_attempt,
    ts_dt,
    update_org,
    utc,
)

NY = "+12125550143"
NY2 = "+12127363100"
LA = "+13105550199"
UK = "+442079460123"
IN = "+919812345678"
JP = "+81312345678"
AU_MOBILE = "+61412345678"
AU_WEST = "+61891234567"
TOLL_FREE = "+18005550199"
AU_MOBILE_ZONES = [
    "Australia/Adelaide", "Australia/Brisbane", "Australia/Eucla", "Australia/Lord_Howe",
    "Australia/Perth", "Australia/Sydney", "Indian/Christmas", "Indian/Cocos",
]

GRANTED = dpb.START_ATTEMPT_DECISION_GRANTED
DEFERRED = dpb.START_ATTEMPT_DECISION_DEFERRED
SUPPRESSED = dpb.START_ATTEMPT_DECISION_SUPPRESSED
STALE = dpb.START_ATTEMPT_DECISION_STALE
NOT_RUNNING = dpb.START_ATTEMPT_DECISION_BATCH_NOT_RUNNING
OUTSIDE = "outside calling window"
CAPPED = "frequency cap"


def decision(resp: dpb.StartAttemptResponse) -> str:
    return dpb.StartAttemptDecision.Name(resp.decision).removeprefix("START_ATTEMPT_DECISION_")


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(utc(2025, 3, 12, 12))


@pytest.fixture(scope="module")
def cs(embedded, clock):  # type: ignore[no-untyped-def]
    with clocked_stack(embedded, clock) as s:
        yield s


@pytest.fixture()
def corg(cs):  # type: ignore[no-untyped-def]
    return cs.new_org()


def batch_of(cs, corg, numbers, **kw):  # type: ignore[no-untyped-def]
    """CreateBatch; returns (batch, contacts by phone)."""
    b = create_batch(cs, corg, numbers, **kw).batch
    assert b.status == res.BATCH_STATUS_RUNNING, res.BatchStatus.Name(b.status)
    return b, contacts_by_phone(cs, corg, b.batch_id)


def attempt_rows(cs, batch_id):  # type: ignore[no-untyped-def]
    return query(cs, "SELECT phone, attempt_number, started_at FROM attempts WHERE batch_id = :b ORDER BY started_at",
                 b=batch_id)


def ready_score(cs, org_id, batch_id, contact_id):  # type: ignore[no-untyped-def]
    async def q():  # type: ignore[no-untyped-def]
        return await cs.ctx.redis_state.redis.zscore(keys.batch_ready(org_id, batch_id), contact_id)

    return cs.run(q())


# =============================================================================
# 1. Calling window: batch window, organization default, or none
# =============================================================================


def test_owner_sets_org_default_window_and_each_batch_says_which_window_applies(cs, corg):
    o = get_org(cs, corg)
    assert not o.HasField("default_calling_window")
    assert (o.frequency_cap_per_24h, o.circuit_breaker_window, o.circuit_breaker_threshold) == (0, 20, 0.5)

    for role in ("admin", "member"):
        with pytest.raises(grpc.RpcError) as err:
            update_org(cs, corg, role=role, default_calling_window=("08:00", "21:00", []))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        update_org(cs, corg, default_calling_window=("22:00", "06:00", []))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "organization.default_calling_window" in violations(err.value)

    o = update_org(cs, corg, default_calling_window=("08:00", "21:00", []))
    w = o.default_calling_window
    assert (w.start_local_time, w.end_local_time) == ("08:00", "21:00")
    assert get_org(cs, corg).default_calling_window.start_local_time == "08:00"

    inherited, _ = batch_of(cs, corg, [NY], mode=res.CALLING_WINDOW_MODE_UNSPECIFIED)
    assert inherited.calling_window_mode == res.CALLING_WINDOW_MODE_UNSPECIFIED
    assert (inherited.calling_window.start_local_time, inherited.calling_window.end_local_time) == ("08:00", "21:00")

    free, _ = batch_of(cs, corg, [NY], mode=res.CALLING_WINDOW_MODE_NONE)
    assert free.calling_window_mode == res.CALLING_WINDOW_MODE_NONE
    assert not free.HasField("calling_window")

    own, _ = batch_of(cs, corg, [NY], window=("09:00", "17:30", [1, 2, 3, 4, 5]))
    assert own.calling_window_mode == res.CALLING_WINDOW_MODE_CUSTOM
    assert (own.calling_window.start_local_time, own.calling_window.end_local_time) == ("09:00", "17:30")
    assert list(own.calling_window.weekdays) == [1, 2, 3, 4, 5]

    with pytest.raises(grpc.RpcError) as err:
        create_batch(cs, corg, [NY], mode=res.CALLING_WINDOW_MODE_CUSTOM)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "calling_window" in violations(err.value)

    # The owner removes the default: the safe default 08:00–21:00 applies
    # (issue 16); "any time" is an explicit choice of its own.
    o = update_org(cs, corg, default_calling_window=None)
    assert (o.default_calling_window.start_local_time, o.default_calling_window.end_local_time) == ("08:00", "21:00")
    assert not o.calling_any_time
    again = get_batch(cs, corg, inherited.batch_id)
    assert again.calling_window.start_local_time == "08:00"
    o = update_org(cs, corg, calling_any_time=True)
    assert o.calling_any_time and not o.HasField("default_calling_window")
    again = get_batch(cs, corg, inherited.batch_id)
    assert again.calling_window_mode == res.CALLING_WINDOW_MODE_UNSPECIFIED
    assert not again.HasField("calling_window")


def test_org_default_window_applies_and_no_window_calls_at_any_hour(cs, corg, clock):
    update_org(cs, corg, default_calling_window=("08:00", "21:00", []))
    clock.set(local(2025, 3, 12, 3, 0, "America/New_York"))
    inherited, c1 = batch_of(cs, corg, [NY], mode=res.CALLING_WINDOW_MODE_UNSPECIFIED)
    free, c2 = batch_of(cs, corg, [NY2], mode=res.CALLING_WINDOW_MODE_NONE)
    assert decision(start_attempt(cs, corg, inherited.batch_id, c1[NY].contact_id)[0]) == "DEFERRED"
    # No window: 03:00 in New York is fine, as the product specification says.
    assert decision(call_once(cs, corg, free.batch_id, c2[NY2].contact_id)) == "GRANTED"


def test_contact_outside_its_window_waits_queued_until_the_opening_without_spending_an_attempt(cs, corg, clock):
    update_org(cs, corg, default_calling_window=("08:00", "21:00", []))
    night = local(2025, 3, 12, 3, 0, "America/New_York")  # EDT since 9 March: 07:00 UTC
    opening = local(2025, 3, 12, 8, 0, "America/New_York")
    assert opening == utc(2025, 3, 12, 12, 0)
    clock.set(night)
    b, cs_ = batch_of(cs, corg, [NY], mode=res.CALLING_WINDOW_MODE_UNSPECIFIED)
    c = cs_[NY]

    resp, _ = start_attempt(cs, corg, b.batch_id, c.contact_id)
    assert decision(resp) == "DEFERRED"
    assert resp.reason == OUTSIDE
    assert ts_dt(resp.next_attempt_time) == opening
    assert not resp.attempt_id

    c = get_contact(cs, corg, c)
    assert c.status == res.CONTACT_STATUS_QUEUED
    assert c.attempts == 0 and not c.attempt_details
    assert c.wait_reason == OUTSIDE
    assert ts_dt(c.next_attempt_time) == opening
    assert list(c.timezones) == ["America/New_York"] and not c.timezone_fallback
    assert attempt_rows(cs, b.batch_id) == []
    # The ready queue in Redis holds it for the same instant (same clock).
    assert ready_score(cs, corg.org_id, b.batch_id, c.contact_id) == opening.timestamp() * 1000

    stats = get_batch(cs, corg, b.batch_id).stats
    assert (stats.queued, stats.waiting_for_window, stats.attempts_total, stats.retries_pending) == (1, 1, 0, 0)
    assert ts_dt(stats.estimated_completion_time) >= opening

    clock.set(opening - timedelta(seconds=1))
    assert start_attempt(cs, corg, b.batch_id, c.contact_id)[0].decision != GRANTED
    assert get_contact(cs, corg, c).attempts == 0

    clock.set(opening)
    resp, token = start_attempt(cs, corg, b.batch_id, c.contact_id)
    assert decision(resp) == "GRANTED"
    assert resp.attempt_number == 1
    assert ts_dt(resp.start_time) == opening
    finish_attempt(cs, resp, token, "completed")
    assert [(r.phone, r.attempt_number, r.started_at) for r in attempt_rows(cs, b.batch_id)] == [(NY, 1, opening)]
    c = get_contact(cs, corg, c)
    assert c.status == res.CONTACT_STATUS_COMPLETED and c.wait_reason == ""
    assert get_batch(cs, corg, b.batch_id).status == res.BATCH_STATUS_COMPLETED


def test_every_callee_is_called_only_in_its_own_local_hours(cs, corg, clock):
    """09:00–17:00 every day, batch timezone Europe/Berlin, Wednesday
    2025-03-12 14:00 UTC. Offsets that day: New York -4 (EDT), Los Angeles
    -7 (PDT), London 0, India +5:30, Tokyo +9, Berlin +1; Australia (mobile)
    from Cocos +6:30 to Sydney / Lord Howe +11, so all eight zones are in
    09:00–17:00 only from 02:30 to 06:00 UTC; Perth +8 with Adelaide +10:30
    from 01:00 to 06:30 UTC."""
    clock.set(utc(2025, 3, 12, 14, 0))
    numbers = [NY, LA, UK, IN, JP, AU_MOBILE, AU_WEST, TOLL_FREE]
    b, contacts = batch_of(cs, corg, numbers, window=("09:00", "17:00", []), timezone_name="Europe/Berlin")
    expected = {
        NY: None,  # 10:00 EDT: open
        LA: utc(2025, 3, 12, 16, 0),  # 07:00 PDT -> 09:00 PDT
        UK: None,  # 14:00 GMT
        IN: utc(2025, 3, 13, 3, 30),  # 19:30 IST -> 09:00 IST tomorrow
        JP: utc(2025, 3, 13, 0, 0),  # 23:00 JST -> 09:00 JST tomorrow
        AU_MOBILE: utc(2025, 3, 13, 2, 30),
        AU_WEST: utc(2025, 3, 13, 1, 0),
        TOLL_FREE: None,  # unknown zone: Berlin, 15:00 CET
    }
    for phone in numbers:
        resp = call_once(cs, corg, b.batch_id, contacts[phone].contact_id)
        if expected[phone] is None:
            assert decision(resp) == "GRANTED", phone
        else:
            assert (decision(resp), resp.reason, ts_dt(resp.next_attempt_time)) == ("DEFERRED", OUTSIDE, expected[phone]), phone

    after = contacts_by_phone(cs, corg, b.batch_id)
    assert list(after[NY].timezones) == ["America/New_York"]
    assert list(after[IN].timezones) == ["Asia/Calcutta"]
    assert sorted(after[AU_MOBILE].timezones) == AU_MOBILE_ZONES and not after[AU_MOBILE].timezone_fallback
    assert sorted(after[AU_WEST].timezones) == ["Australia/Adelaide", "Australia/Perth"]
    assert list(after[TOLL_FREE].timezones) == ["Europe/Berlin"] and after[TOLL_FREE].timezone_fallback
    assert get_batch(cs, corg, b.batch_id).stats.waiting_for_window == 5

    # Walk the openings in order: one second before, nobody new is called;
    # at the opening, exactly the expected contact is.
    waiting = {p: t for p, t in expected.items() if t is not None}
    for phone, opening in sorted(waiting.items(), key=lambda kv: kv[1]):
        clock.set(opening - timedelta(seconds=1))
        for other in waiting:
            assert call_once(cs, corg, b.batch_id, contacts[other].contact_id).decision != GRANTED, (phone, other)
        clock.set(opening)
        assert decision(call_once(cs, corg, b.batch_id, contacts[phone].contact_id)) == "GRANTED", phone
        del waiting[phone]
        for other in waiting:
            assert call_once(cs, corg, b.batch_id, contacts[other].contact_id).decision != GRANTED, (phone, other)
    starts = {r.phone: r.started_at for r in attempt_rows(cs, b.batch_id)}
    assert starts == {p: (t or utc(2025, 3, 12, 14, 0)) for p, t in expected.items()}
    assert get_batch(cs, corg, b.batch_id).status == res.BATCH_STATUS_COMPLETED


def test_window_edges_in_all_zones_of_a_multi_zone_number(cs, corg, clock):
    """Fresh (never deferred) contacts: the decision rests on the window alone.
    AU mobile under 09:00–17:00: open [02:30, 06:00) UTC; the end is exclusive."""
    cases = [
        (utc(2025, 3, 13, 2, 29, 59), utc(2025, 3, 13, 2, 30)),
        (utc(2025, 3, 13, 2, 30), None),
        (utc(2025, 3, 13, 5, 59, 59), None),
        (utc(2025, 3, 13, 6, 0), utc(2025, 3, 14, 2, 30)),
    ]
    for at, deferred_to in cases:
        clock.set(at)
        b, contacts = batch_of(cs, corg, [AU_MOBILE], window=("09:00", "17:00", []))
        resp = call_once(cs, corg, b.batch_id, contacts[AU_MOBILE].contact_id)
        if deferred_to is None:
            assert decision(resp) == "GRANTED", at
        else:
            assert (decision(resp), ts_dt(resp.next_attempt_time)) == ("DEFERRED", deferred_to), at


def test_number_whose_zones_never_share_the_window_uses_the_batch_timezone(cs, corg, clock):
    """09:00–10:00: Perth's hour is 01:00–02:00 UTC, Adelaide's (+10:30)
    22:30–23:30 UTC; no common instant, so the batch timezone (Tokyo) rules,
    as for a toll-free number, and the contact says so."""
    clock.set(utc(2025, 3, 12, 0, 30))  # 09:30 in Tokyo, 08:30 in Perth
    b, contacts = batch_of(cs, corg, [AU_WEST, TOLL_FREE], window=("09:00", "10:00", []), timezone_name="Asia/Tokyo")
    for phone in (AU_WEST, TOLL_FREE):
        assert decision(call_once(cs, corg, b.batch_id, contacts[phone].contact_id)) == "GRANTED", phone
    after = contacts_by_phone(cs, corg, b.batch_id)
    for phone in (AU_WEST, TOLL_FREE):
        assert list(after[phone].timezones) == ["Asia/Tokyo"] and after[phone].timezone_fallback, phone

    clock.set(utc(2025, 3, 12, 1, 30))  # 10:30 in Tokyo, 09:30 in Perth
    b2, c2 = batch_of(cs, corg, [AU_WEST], window=("09:00", "10:00", []), timezone_name="Asia/Tokyo")
    resp = call_once(cs, corg, b2.batch_id, c2[AU_WEST].contact_id)
    assert (decision(resp), ts_dt(resp.next_attempt_time)) == ("DEFERRED", utc(2025, 3, 13, 0, 0))


def test_window_weekdays_are_the_callees_local_weekdays(cs, corg, clock):
    # Saturday 2025-03-15 12:00 in New York; window Monday to Friday.
    clock.set(local(2025, 3, 15, 12, 0, "America/New_York"))
    b, contacts = batch_of(cs, corg, [NY, JP], window=("09:00", "17:00", [1, 2, 3, 4, 5]))
    resp = call_once(cs, corg, b.batch_id, contacts[NY].contact_id)
    assert (decision(resp), ts_dt(resp.next_attempt_time)) == ("DEFERRED", local(2025, 3, 17, 9, 0, "America/New_York"))
    # Same instant, Sunday 01:00 in Tokyo: also Monday 09:00, Tokyo's Monday.
    resp = call_once(cs, corg, b.batch_id, contacts[JP].contact_id)
    assert (decision(resp), ts_dt(resp.next_attempt_time)) == ("DEFERRED", local(2025, 3, 17, 9, 0, "Asia/Tokyo"))
    # Friday 16:59 New York is Saturday 05:59 in Tokyo: NY open, Tokyo not.
    clock.set(local(2025, 3, 21, 16, 59, "America/New_York"))
    b2, c2 = batch_of(cs, corg, [NY, JP], window=("09:00", "17:00", [1, 2, 3, 4, 5]))
    assert decision(call_once(cs, corg, b2.batch_id, c2[NY].contact_id)) == "GRANTED"
    resp = call_once(cs, corg, b2.batch_id, c2[JP].contact_id)
    assert ts_dt(resp.next_attempt_time) == local(2025, 3, 24, 9, 0, "Asia/Tokyo")


def test_retry_falling_outside_the_window_waits_for_the_next_opening(cs, corg, clock):
    clock.set(local(2025, 3, 12, 20, 58, "America/New_York"))
    b, contacts = batch_of(cs, corg, [NY], window=("08:00", "21:00", []), max_attempts=3)
    c = contacts[NY]
    resp, token = start_attempt(cs, corg, b.batch_id, c.contact_id)
    assert decision(resp) == "GRANTED"
    fin = finish_attempt(cs, resp, token, "no_answer")
    retry_at = local(2025, 3, 12, 21, 3, "America/New_York")  # 5 min retry delay
    assert fin.contact_status == res.CONTACT_STATUS_QUEUED and ts_dt(fin.next_attempt_time) == retry_at

    clock.set(retry_at)
    resp = call_once(cs, corg, b.batch_id, c.contact_id)
    tomorrow = local(2025, 3, 13, 8, 0, "America/New_York")
    assert (decision(resp), ts_dt(resp.next_attempt_time)) == ("DEFERRED", tomorrow)
    c = get_contact(cs, corg, c)
    assert (c.status, c.attempts, c.wait_reason) == (res.CONTACT_STATUS_QUEUED, 1, OUTSIDE)
    stats = get_batch(cs, corg, b.batch_id).stats
    assert (stats.waiting_for_window, stats.retries_pending, stats.attempts_total) == (1, 1, 1)

    clock.set(tomorrow)
    resp = call_once(cs, corg, b.batch_id, c.contact_id)
    assert decision(resp) == "GRANTED" and resp.attempt_number == 2


def test_batch_whose_contacts_all_wait_for_their_window_says_so(cs, corg, clock):
    # 05:00 UTC Wednesday: 01:00 New York, 22:00 (Tue) Los Angeles, 14:00 Tokyo.
    clock.set(utc(2025, 3, 12, 5, 0))
    b, contacts = batch_of(cs, corg, [NY, LA, JP], window=("09:00", "12:00", []))
    openings = []
    for phone in (NY, LA, JP):
        resp = call_once(cs, corg, b.batch_id, contacts[phone].contact_id)
        assert decision(resp) == "DEFERRED"
        openings.append(ts_dt(resp.next_attempt_time))
    assert openings == [utc(2025, 3, 12, 13), utc(2025, 3, 12, 16), utc(2025, 3, 13, 0)]
    batch = get_batch(cs, corg, b.batch_id)
    assert batch.status == res.BATCH_STATUS_RUNNING
    assert batch.stats.waiting_for_window == batch.stats.processing == 3
    assert batch.stats.retries_pending == 0
    # The estimate cannot end before the last contact's window opens.
    assert ts_dt(batch.stats.estimated_completion_time) >= max(openings)


# =============================================================================
# 2. Do-not-call list
# =============================================================================


def test_dnc_add_list_remove_and_import_through_the_api(cs, corg):
    added = add_dnc(cs, corg, [NY, "+1 (310) 555-0199", UK])
    assert (added.added_count, added.already_listed_count) == (3, 0)
    again = add_dnc(cs, corg, [NY], role="admin")
    assert (again.added_count, again.already_listed_count) == (0, 1)
    with pytest.raises(grpc.RpcError) as err:
        add_dnc(cs, corg, [JP], role="member")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        add_dnc(cs, corg, [JP, "not a number"])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "phone_numbers[1]" in violations(err.value)

    entries = list_dnc(cs, corg, page_size=2)  # pages of 2
    assert sorted(e.phone_number for e in entries) == sorted([NY, LA, UK])
    assert all(e.reason == "asked not to be called" and e.HasField("create_time") for e in entries)
    assert [e.phone_number for e in list_dnc(cs, corg, search="310555")] == [LA]

    removed = remove_dnc(cs, corg, [LA, JP])
    assert removed.removed_count == 1
    assert sorted(e.phone_number for e in list_dnc(cs, corg)) == sorted([NY, UK])

    with cs.channel() as ch:
        orgs = ogrpc.OrganizationServiceStub(ch)
        resp = orgs.ImportDoNotCallNumbers(
            opb.ImportDoNotCallNumbersRequest(
                csv_content=f"phone,name\n{JP},a\n(212) 736-3100,b\nnot a number,c\n{NY},d\n".encode(),
                filename="dnc.csv", default_region="US", reason="imported",
            ),
            metadata=corg.md(),
        )
        assert (resp.added_count, resp.already_listed_count) == (2, 1)
        assert resp.report.invalid_count == 1
        headerless = orgs.ImportDoNotCallNumbers(
            opb.ImportDoNotCallNumbersRequest(csv_content=f"{IN}\n{AU_MOBILE}\n".encode(), filename="dnc.csv"),
            metadata=corg.md(),
        )
        assert headerless.added_count == 2
        with pytest.raises(grpc.RpcError) as err:
            orgs.ImportDoNotCallNumbers(opb.ImportDoNotCallNumbersRequest(csv_content=f"{LA}\n".encode()),
                                        metadata=corg.md("member"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert sorted(e.phone_number for e in list_dnc(cs, corg)) == sorted([NY, UK, JP, NY2, IN, AU_MOBILE])

    # Per organization: another organization's list is its own.
    other = cs.new_org()
    assert list_dnc(cs, other) == []
    b, contacts = batch_of(cs, other, [NY])
    assert contacts[NY].status == res.CONTACT_STATUS_PENDING


def test_numbers_on_the_list_are_suppressed_at_creation_and_never_dialed(cs, corg):
    add_dnc(cs, corg, [NY, JP])
    numbers = [NY, LA, JP, UK]
    csv_text = "phone,name\n" + "".join(f"{n},P{i}\n" for i, n in enumerate(numbers))
    with cs.channel() as ch:
        v = bgrpc.BatchServiceStub(ch).ValidateContacts(
            bpb.ValidateContactsRequest(csv_content=csv_text.encode(), filename="c.csv"), metadata=corg.md()
        )
    assert v.report.suppressed_count == 2
    assert sorted((r.row_number, r.phone_number) for r in v.report.suppressed_rows) == [(2, NY), (4, JP)]
    assert v.cost_estimate.contacts == 2

    b, contacts = batch_of(cs, corg, numbers)
    assert (b.stats.total_contacts, b.stats.suppressed, b.stats.pending) == (4, 2, 2)
    for phone in (NY, JP):
        assert contacts[phone].status == res.CONTACT_STATUS_SUPPRESSED
        assert contacts[phone].failure_reason == "on do-not-call list"
        assert decision(start_attempt(cs, corg, b.batch_id, contacts[phone].contact_id)[0]) == "STALE"
    for phone in (LA, UK):
        assert decision(call_once(cs, corg, b.batch_id, contacts[phone].contact_id)) == "GRANTED"
    assert sorted(r.phone for r in attempt_rows(cs, b.batch_id)) == sorted([LA, UK])
    assert get_batch(cs, corg, b.batch_id).status == res.BATCH_STATUS_COMPLETED


def test_create_batch_report_lists_the_suppressed_rows(cs, corg):
    add_dnc(cs, corg, [NY])
    resp = create_batch(cs, corg, [NY, LA])
    assert resp.report.suppressed_count == 1
    assert [(r.row_number, r.phone_number) for r in resp.report.suppressed_rows] == [(2, NY)]


def test_number_added_to_the_list_while_the_batch_runs_is_never_called(cs, corg, clock):
    clock.set(utc(2025, 3, 12, 15, 0))
    b, contacts = batch_of(cs, corg, [NY, LA, UK], max_attempts=3)
    resp, token = start_attempt(cs, corg, b.batch_id, contacts[NY].contact_id)
    assert decision(resp) == "GRANTED"
    assert finish_attempt(cs, resp, token, "no_answer").contact_status == res.CONTACT_STATUS_QUEUED

    add_dnc(cs, corg, [NY, LA])  # NY waits for its retry, LA was never tried
    clock.advance(3600)
    for phone in (NY, LA):
        resp, _ = start_attempt(cs, corg, b.batch_id, contacts[phone].contact_id)
        assert decision(resp) == "SUPPRESSED", phone
        c = get_contact(cs, corg, contacts[phone])
        assert (c.status, c.failure_reason) == (res.CONTACT_STATUS_SUPPRESSED, "on do-not-call list")
    assert decision(call_once(cs, corg, b.batch_id, contacts[UK].contact_id)) == "GRANTED"
    assert sorted((r.phone, r.attempt_number) for r in attempt_rows(cs, b.batch_id)) == sorted([(UK, 1), (NY, 1)])
    batch = get_batch(cs, corg, b.batch_id)
    assert (batch.status, batch.stats.suppressed) == (res.BATCH_STATUS_COMPLETED, 2)

    # Taken off the list, the number can be called again by a new batch.
    remove_dnc(cs, corg, [NY])
    b2, c2 = batch_of(cs, corg, [NY])
    assert decision(call_once(cs, corg, b2.batch_id, c2[NY].contact_id)) == "GRANTED"


# =============================================================================
# 3. Frequency cap per number, rolling 24 h, across batches
# =============================================================================


def test_frequency_cap_is_off_by_default(cs, corg, clock):
    clock.set(utc(2025, 3, 12, 15, 0))
    for _ in range(3):
        b, contacts = batch_of(cs, corg, [UK])
        assert decision(call_once(cs, corg, b.batch_id, contacts[UK].contact_id)) == "GRANTED"


def test_capped_number_is_deferred_across_batches_until_its_rolling_24h_clears(cs, corg, clock):
    for role in ("admin", "member"):
        with pytest.raises(grpc.RpcError) as err:
            update_org(cs, corg, role=role, frequency_cap_per_24h=1)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        update_org(cs, corg, frequency_cap_per_24h=101)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert update_org(cs, corg, frequency_cap_per_24h=1).frequency_cap_per_24h == 1

    t0 = utc(2025, 3, 12, 15, 0)
    clock.set(t0)
    a, ca = batch_of(cs, corg, [UK, JP])
    assert decision(call_once(cs, corg, a.batch_id, ca[UK].contact_id, "completed")) == "GRANTED"

    clock.set(t0 + timedelta(hours=1))
    b, cb = batch_of(cs, corg, [UK, LA])
    resp = call_once(cs, corg, b.batch_id, cb[UK].contact_id)
    assert (decision(resp), resp.reason, ts_dt(resp.next_attempt_time)) == ("DEFERRED", CAPPED, t0 + timedelta(hours=24))
    c = get_contact(cs, corg, cb[UK])
    assert (c.status, c.attempts, c.wait_reason) == (res.CONTACT_STATUS_QUEUED, 0, CAPPED)
    # Another number is not affected; the cap is not the window.
    assert decision(call_once(cs, corg, b.batch_id, cb[LA].contact_id)) == "GRANTED"
    stats = get_batch(cs, corg, b.batch_id).stats
    assert (stats.queued, stats.waiting_for_window, stats.failed_total) == (1, 0, 0)

    # One second before the 24 h are over a fresh contact is still capped …
    clock.set(t0 + timedelta(hours=24) - timedelta(seconds=1))
    c3, cc = batch_of(cs, corg, [UK])
    resp = call_once(cs, corg, c3.batch_id, cc[UK].contact_id)
    assert (decision(resp), ts_dt(resp.next_attempt_time)) == ("DEFERRED", t0 + timedelta(hours=24))
    # … at the instant, one of the two waiting contacts gets the call and the
    # other one waits another 24 h.
    clock.set(t0 + timedelta(hours=24))
    assert decision(call_once(cs, corg, b.batch_id, cb[UK].contact_id)) == "GRANTED"
    resp = call_once(cs, corg, c3.batch_id, cc[UK].contact_id)
    assert (decision(resp), ts_dt(resp.next_attempt_time)) == ("DEFERRED", t0 + timedelta(hours=48))
    starts = query(cs, "SELECT started_at FROM attempts WHERE org_id = :o AND phone = :p ORDER BY started_at",
                   o=corg.org_id, p=UK)
    assert [r.started_at for r in starts] == [t0, t0 + timedelta(hours=24)]


def test_cap_counts_retries_of_the_same_contact_and_defers_instead_of_failing(cs, corg, clock):
    update_org(cs, corg, frequency_cap_per_24h=2)
    t0 = utc(2025, 3, 12, 15, 0)
    clock.set(t0)
    b, contacts = batch_of(cs, corg, [IN], max_attempts=3)
    c = contacts[IN]
    for n, at in ((1, t0), (2, t0 + timedelta(minutes=5))):
        clock.set(at)
        resp, token = start_attempt(cs, corg, b.batch_id, c.contact_id)
        assert (decision(resp), resp.attempt_number) == ("GRANTED", n)
        finish_attempt(cs, resp, token, "no_answer")
    third_due = t0 + timedelta(minutes=5 + 30)
    clock.set(third_due)
    resp = call_once(cs, corg, b.batch_id, c.contact_id)
    assert (decision(resp), resp.reason, ts_dt(resp.next_attempt_time)) == ("DEFERRED", CAPPED, t0 + timedelta(hours=24))
    c = get_contact(cs, corg, c)
    assert (c.status, c.attempts, c.last_outcome) == (res.CONTACT_STATUS_QUEUED, 2, res.CALL_OUTCOME_NO_ANSWER)
    clock.set(t0 + timedelta(hours=24))
    resp = call_once(cs, corg, b.batch_id, c.contact_id)
    assert (decision(resp), resp.attempt_number) == ("GRANTED", 3)


def test_cap_and_window_together_defer_to_the_first_instant_both_allow(cs, corg, clock):
    """Cap 1; window 09:00–17:00 Monday–Friday in New York. Called Friday
    10:00; a second batch tries Friday 11:00 (window open, capped). The cap
    clears Saturday 10:00, when the window is shut: Monday 09:00."""
    update_org(cs, corg, frequency_cap_per_24h=1)
    weekdays = ("09:00", "17:00", [1, 2, 3, 4, 5])
    clock.set(local(2025, 3, 14, 10, 0, "America/New_York"))
    a, ca = batch_of(cs, corg, [NY], window=weekdays)
    assert decision(call_once(cs, corg, a.batch_id, ca[NY].contact_id)) == "GRANTED"
    clock.set(local(2025, 3, 14, 11, 0, "America/New_York"))
    b, cb = batch_of(cs, corg, [NY], window=weekdays)
    resp = call_once(cs, corg, b.batch_id, cb[NY].contact_id)
    assert (decision(resp), resp.reason) == ("DEFERRED", CAPPED)
    assert ts_dt(resp.next_attempt_time) == local(2025, 3, 17, 9, 0, "America/New_York")


# =============================================================================
# 4. Circuit breaker
# =============================================================================


def many(n: int, start: int = 100) -> list[str]:
    return [f"+1212555{start + i:04d}" for i in range(n)]


def run_outcomes(cs, corg, batch_id, contacts, outcomes):  # type: ignore[no-untyped-def]
    """One attempt per contact, in order, with the given outcomes."""
    statuses = []
    for c, outcome in zip(contacts, outcomes):
        resp, token = start_attempt(cs, corg, batch_id, c.contact_id)
        assert decision(resp) == "GRANTED", (c.phone_number, decision(resp), resp.reason)
        statuses.append(finish_attempt(cs, resp, token, outcome).batch_status)
    return statuses


def test_breaker_pauses_a_batch_when_more_than_half_of_the_last_20_attempts_fail(cs, corg, clock):
    clock.set(utc(2025, 3, 12, 15, 0))
    b, contacts = batch_of(cs, corg, many(25), max_attempts=1)
    ordered = sorted(contacts.values(), key=lambda c: c.row_number)
    # 10 completed then 10 carrier errors: exactly 50% of the last 20, no trip.
    statuses = run_outcomes(cs, corg, b.batch_id, ordered[:20], ["completed"] * 10 + ["carrier_error"] * 10)
    assert set(statuses) == {res.BATCH_STATUS_RUNNING}
    # A blocked call: 11 of the last 20 (the oldest completed one drops out).
    statuses = run_outcomes(cs, corg, b.batch_id, ordered[20:21], ["blocked"])
    assert statuses == [res.BATCH_STATUS_PAUSED]
    batch = get_batch(cs, corg, b.batch_id)
    assert batch.status == res.BATCH_STATUS_PAUSED
    assert batch.status_reason == (
        "paused automatically: 11 of the last 20 attempts failed with carrier_error, blocked or "
        "agent_error (threshold 50%)"
    )
    # No further call starts; the remaining contacts are kept, not failed.
    assert decision(start_attempt(cs, corg, b.batch_id, ordered[21].contact_id)[0]) == "BATCH_NOT_RUNNING"
    assert batch.stats.pending == 4


def test_breaker_settings_are_the_owners_and_only_hard_failures_count(cs, corg, clock):
    clock.set(utc(2025, 3, 12, 15, 0))
    with pytest.raises(grpc.RpcError) as err:
        update_org(cs, corg, role="admin", circuit_breaker_window=4)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for bad in ({"circuit_breaker_window": 0}, {"circuit_breaker_threshold": 0.0}, {"circuit_breaker_threshold": 1.5}):
        with pytest.raises(grpc.RpcError) as err:
            update_org(cs, corg, **bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    o = update_org(cs, corg, circuit_breaker_window=4, circuit_breaker_threshold=0.25)
    assert (o.circuit_breaker_window, o.circuit_breaker_threshold) == (4, 0.25)

    b, contacts = batch_of(cs, corg, many(12, 300), max_attempts=1)
    ordered = sorted(contacts.values(), key=lambda c: c.row_number)
    # no_answer, busy, timeout and invalid_number are normal campaign life.
    statuses = run_outcomes(cs, corg, b.batch_id, ordered[:6],
                            ["no_answer", "busy", "timeout", "invalid_number", "no_answer", "agent_error"])
    assert set(statuses) == {res.BATCH_STATUS_RUNNING}  # 1 of the last 4 = 25%: not more
    statuses = run_outcomes(cs, corg, b.batch_id, ordered[6:7], ["agent_error"])
    assert statuses == [res.BATCH_STATUS_PAUSED]
    assert get_batch(cs, corg, b.batch_id).status_reason == (
        "paused automatically: 2 of the last 4 attempts failed with carrier_error, blocked or "
        "agent_error (threshold 25%)"
    )


def test_resumed_batch_is_not_paused_again_by_the_old_failures(cs, corg, clock):
    clock.set(utc(2025, 3, 12, 15, 0))
    update_org(cs, corg, circuit_breaker_window=4, circuit_breaker_threshold=0.5)
    b, contacts = batch_of(cs, corg, many(8, 500), max_attempts=1)
    ordered = sorted(contacts.values(), key=lambda c: c.row_number)
    assert run_outcomes(cs, corg, b.batch_id, ordered[:4], ["carrier_error"] * 4)[-1] == res.BATCH_STATUS_PAUSED
    with cs.channel() as ch:
        bgrpc.BatchServiceStub(ch).ResumeBatch(bpb.ResumeBatchRequest(name=b.name), metadata=corg.md())
    assert run_outcomes(cs, corg, b.batch_id, ordered[4:5], ["completed"]) == [res.BATCH_STATUS_RUNNING]
